"""One set of counts: each item counted once, the same words in every output; the selection block's rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_autoglm.reporting.html_report import build_view
from pytest_autoglm.reporting.records import Counts, count_phrases, count_results, partial_phrase
from pytest_autoglm.reporting.selection import Narrowing, selection_of
from pytest_autoglm.reporting.terminal import plain_summary
from tests.reporting.sample import fact, known_document

_entries = st.lists(
    st.builds(
        lambda i, outcome, reason, severity, warned, xfailed, attempts: fact(
            "tcp",
            f"t{i % 3}",
            f"{i}/open",
            outcome,
            reason=reason,
            layer="tcp" if reason else None,
            severity=severity,
            attempts=attempts,
            **({"warned": True} if warned else {}),
            **({"xfailed": True} if xfailed else {}),
        ),
        st.integers(0, 10_000),
        st.sampled_from(["passed", "failed", "error", "skipped"]),
        st.sampled_from([None, "refused", "upstream"]),
        st.sampled_from(["critical", "warning"]),
        st.booleans(),
        st.booleans(),
        st.integers(0, 3),
    ),
    max_size=30,
    unique_by=lambda e: e["id"],
)


@given(_entries)
def test_every_item_is_counted_once_and_the_outputs_agree(entries):
    document = known_document(results=entries)
    counts = count_results(document["results"])
    assert counts.total == len(entries)
    assert (
        counts.failing + counts.errors + counts.warned + counts.xfailed + counts.passed + counts.skipped == counts.total
    )
    assert counts.failing == counts.root_causes + counts.blocked
    assert 0 <= counts.retried <= counts.passed
    summary = document["summary"]
    assert summary["passed"] + summary["failed"] + summary["skipped"] + summary["error"] == len(entries)
    for key in ("failing", "root_causes", "blocked", "errors", "warned", "xfailed", "retried"):
        assert summary[key] == getattr(counts, key), key
    phrases = count_phrases(counts)
    assert build_view(document)["counts"] == phrases  # the HTML's words ...
    assert plain_summary(document)[0].split(": ", 1)[1].startswith(", ".join(phrases))  # ... are the terminal's


def test_the_words():
    assert count_phrases(Counts()) == ["0 passed"]
    counts = Counts(
        total=12, failing=4, root_causes=3, blocked=1, errors=1, warned=2, xfailed=1, passed=3, retried=1, skipped=1
    )
    assert count_phrases(counts) == [
        "4 failing (3 root causes, 1 blocked)",
        "1 error",
        "2 warned",
        "1 xfailed",
        "3 passed (1 after retries)",
        "1 skipped",
    ]
    assert count_phrases(Counts(total=3, failing=1, root_causes=1, errors=2, passed=0)) == [
        "1 failing (1 root cause)",
        "2 errors",
        "0 passed",
    ]


def test_an_error_is_counted_once_not_also_as_failing():
    entries = [
        fact("tcp", "a", "1/open", "failed", layer="tcp", reason="refused"),
        fact("tls", "a", "1", "error", layer="tls", reason="setup"),
        fact("dns", "a", "A"),
    ]
    document = known_document(results=entries)
    assert plain_summary(document)[0] == "FAIL: 1 failing (1 root cause), 1 error, 1 passed in 6.50s"
    assert document["summary"]["failing"] == 1 and document["summary"]["errors"] == 1


def select(planned, selected, reported, reasons=(), words=(), stopped=False):
    return selection_of(
        planned=planned, selected=selected, reported=reported, narrowing=Narrowing(reasons, words), stopped=stopped
    )


def test_selection_rules():
    full = select(["a", "b"], {"a", "b", "x"}, {"a", "b"})
    assert (full["partial"], full["deselected"], full["not_run"], full["narrowed_by"]) == (False, 0, 0, [])
    unknown = select(["a", "b"], None, {"a", "b"})  # no collection seen: every planned check counts as selected
    assert (unknown["partial"], unknown["selected"]) == (False, 2)
    by_plugin = select(["a", "b"], {"a"}, {"a"})
    assert (by_plugin["partial"], by_plugin["deselected"], by_plugin["narrowed_by"]) == (True, 1, ["plugin"])
    stopped = select(["a", "b", "c"], {"a", "b", "c"}, {"a"}, stopped=True)
    assert (stopped["partial"], stopped["stopped_early"], stopped["not_run"]) == (True, True, 2)
    assert stopped["narrowed_by"] == ["stopped_early"]
    # -x whose failure was the last item: every selected check ran, so nothing is missing
    last = select(["a", "b"], {"a", "b"}, {"a", "b"}, stopped=True)
    assert (last["partial"], last["stopped_early"]) == (False, False)


def test_partial_phrase():
    assert partial_phrase(select(["a"], {"a"}, {"a"})) == ""
    assert partial_phrase(None) == ""
    both = select(["a", "b", "c"], {"a", "b"}, {"a"}, ("keyword",), ("-k 'a or b'",), stopped=True)
    assert partial_phrase(both) == (
        "partial run: 1 of 3 checks deselected (-k 'a or b'); stopped early (-x, --maxfail or an interrupt), 1 not run"
    )
