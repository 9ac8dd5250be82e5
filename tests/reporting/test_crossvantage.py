"""Cross-vantage diagnosis (issue 17): synthetic result sets, the JSON ``vantages`` object, the terminal lines
and the HTML matrix. The end-to-end test with real namespaces is the lead's (it calls the same functions)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoglm.reporting.crossvantage import (
    DIFFERS,
    FIREWALL_DROP,
    FIREWALL_REJECT,
    LOOPBACK_BIND,
    LOOPBACK_HINT,
    PATTERNS,
    SPLIT_HORIZON,
    diagnose,
    group_key,
    is_loopback,
    tcp_port,
    vantages_section,
)
from pytest_autoglm.reporting.html_report import render_html
from pytest_autoglm.reporting.json_report import build_document, encode_json
from pytest_autoglm.reporting.terminal import plain_summary, summary_lines
from tests.reporting.htmldom import Node, parse
from tests.reporting.sample import fact, known_document

_REASON_OF_STATE = {
    "open": "unexpected_open",
    "refused": "refused",
    "filtered": "filtered",
    "unreachable": "unreachable",
}


def tcp(vantage: str, state: str, address: str | None, *, expect: str = "open", target: str = "api", port: int = 8080):
    """A tcp result as plugin/outcomes.py makes it: the verdict follows from the expectation and the state."""
    passed = state == expect or (expect == "closed" and state in ("refused", "filtered"))
    return fact(
        "tcp",
        target,
        f"{port}/{expect}",
        "passed" if passed else "failed",
        id=f"tcp[prod:{target}:{port}/{expect}@{vantage}]",
        vantage=vantage,
        layer=None if passed else "tcp",
        reason=None if passed else _REASON_OF_STATE[state],
        address=address,
        message=f"{address} port {port}: {state}; expected {expect}",
        details={"state": state, "port": port},
    )


def dns(vantage: str, answer: list[str] | str, expected: list[str] | None = None, *, target: str = "api"):
    """A dns A result: ``answer`` the records the system resolver gave (or a code such as ``nxdomain``)."""
    passed = isinstance(answer, list) and (expected is None or sorted(answer) == sorted(expected))
    return fact(
        "dns",
        target,
        "A",
        "passed" if passed else "failed",
        id=f"dns[prod:{target}:A@{vantage}]",
        vantage=vantage,
        layer=None if passed else "dns",
        reason=None if passed else ("mismatch" if isinstance(answer, list) else answer),
        details={"name": f"{target}.example.test", "type": "A", "answers": {"system": answer}},
    )


def http(vantage: str, outcome: str = "passed", reason: str | None = None, **kw: Any):
    return fact(
        "http",
        "api",
        "GET http://api.example.test/health",
        outcome,
        id=f"http[prod:api:GET http://api.example.test/health@{vantage}]",
        vantage=vantage,
        layer=None if outcome == "passed" else "http",
        reason=reason,
        **kw,
    )


def only(results: list[dict[str, Any]]):
    (found,) = diagnose(results)
    return found


# ----------------------------------------------------------------------------- the patterns


def test_loopback_bind_names_the_bind_address_and_the_vantages():
    """The demo: on the server the API is reached on 127.0.0.1; from here, at the LAN address, it is refused."""
    found = only([tcp("local", "refused", "198.19.255.254"), tcp("server", "open", "127.0.0.1")])
    assert found.pattern == LOOPBACK_BIND
    assert found.affected == ("local",)
    assert (found.target, found.check, found.subject) == ("api", "tcp", "8080")
    assert LOOPBACK_HINT in found.message
    assert "open from server (127.0.0.1), refused from local (198.19.255.254)" in found.message
    entry = found.as_entry()
    assert entry["by_vantage"] == {
        "local": {
            "id": "tcp[prod:api:8080/open@local]",
            "outcome": "failed",
            "reason": "refused",
            "address": "198.19.255.254",
            "state": "refused",
        },
        "server": {
            "id": "tcp[prod:api:8080/open@server]",
            "outcome": "passed",
            "reason": None,
            "address": "127.0.0.1",
            "state": "open",
        },
    }


@pytest.mark.parametrize("loopback", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "localhost"])
def test_every_loopback_address_counts(loopback):
    assert only([tcp("local", "open", loopback), tcp("lan", "refused", "10.0.0.5")]).pattern == LOOPBACK_BIND


def test_firewall_drop_names_who_gets_no_answer():
    found = only([tcp("local", "open", "10.0.0.5"), tcp("internet", "filtered", "10.0.0.5")])
    assert found.pattern == FIREWALL_DROP
    assert found.affected == ("internet",)
    assert "a firewall between internet and api drops port 8080" in found.message


@pytest.mark.parametrize("state", ["refused", "unreachable"])
def test_firewall_reject_when_the_same_address_answers_one_vantage_only(state):
    found = only([tcp("local", "open", "10.0.0.5"), tcp("lan", state, "10.0.0.5")])
    assert found.pattern == FIREWALL_REJECT
    assert found.affected == ("lan",)
    assert f"{state} from lan (10.0.0.5)" in found.message
    assert "accepts some sources only" in found.message


def test_refused_at_another_address_without_loopback_only_differs():
    """Split-horizon DNS sent the vantages to different addresses: nothing says it is a firewall or a bind."""
    found = only([tcp("local", "open", "10.0.0.5"), tcp("internet", "refused", "203.0.113.5")])
    assert found.pattern == DIFFERS
    assert found.message == (
        "tcp api 8080 differs by vantage: passed from local at 10.0.0.5 (open); "
        "failed from internet at 203.0.113.5 (tcp/refused)"
    )


def test_a_same_address_opening_beats_loopback():
    """lan connected to 10.0.0.5 and got in: the service does listen there; dmz refused at it is rejected."""
    results = [tcp("local", "open", "127.0.0.1"), tcp("lan", "open", "10.0.0.5"), tcp("dmz", "refused", "10.0.0.5")]
    assert only(results).pattern == FIREWALL_REJECT


def test_three_vantages_give_one_diagnosis_per_pattern():
    results = [
        tcp("local", "open", "127.0.0.1"),
        tcp("lan", "refused", "10.0.0.5"),
        tcp("internet", "filtered", "10.0.0.5"),
    ]
    found = diagnose(results)
    assert [(d.pattern, d.affected) for d in found] == [(LOOPBACK_BIND, ("lan",)), (FIREWALL_DROP, ("internet",))]
    assert all(dict(d.by_vantage).keys() == {"local", "lan", "internet"} for d in found)


def test_tcp_is_compared_by_port_and_state_not_by_id():
    """A ``from:`` override expects 8080 filtered from internet: both pass, so nothing is wrong..."""
    expected = [tcp("local", "open", "10.0.0.5"), tcp("internet", "filtered", "10.0.0.5", expect="filtered")]
    assert diagnose(expected) == []
    # ... but when the override holds and the open side fails, the two are still compared
    broken = [tcp("local", "filtered", "10.0.0.5"), tcp("internet", "open", "10.0.0.5", expect="filtered")]
    found = only(broken)
    assert found.pattern == FIREWALL_DROP and found.subject == "8080"
    assert {facts["id"] for _, facts in found.by_vantage} == {
        "tcp[prod:api:8080/open@local]",
        "tcp[prod:api:8080/filtered@internet]",
    }


def test_split_horizon_says_who_sees_what():
    results = [
        dns("local", ["10.0.0.5"], ["10.0.0.5"]),
        dns("lan", ["10.0.0.5"], ["10.0.0.5"]),
        dns("internet", "nxdomain", ["10.0.0.5"]),
    ]
    found = only(results)
    assert found.pattern == SPLIT_HORIZON
    assert found.subject == "A" and found.affected == ("internet",)
    assert found.message == (
        "api.example.test A resolves differently: split-horizon DNS (local, lan see 10.0.0.5; internet sees NXDOMAIN)"
    )
    assert dict(found.by_vantage)["internet"]["answers"] == ["NXDOMAIN"]


def test_split_horizon_shows_a_few_records_and_counts_the_rest():
    many = [f"10.0.0.{i}" for i in range(1, 8)]
    found = only([dns("local", many), dns("lan", ["192.0.2.1"], ["10.0.0.1"])])
    assert "(+3 more)" in found.message and "10.0.0.7" not in found.message


def test_anything_else_differs_with_each_sides_reason():
    found = only([http("local"), http("lan", "failed", "status", address="10.0.0.5"), http("dmz", "failed", "status")])
    assert found.pattern == DIFFERS
    assert found.check == "http" and found.subject == "GET http://api.example.test/health"
    assert found.affected == ("lan", "dmz")
    assert found.message == (
        "http api GET http://api.example.test/health differs by vantage: passed from local; "
        "failed from lan at 10.0.0.5, dmz (http/status)"
    )


# ----------------------------------------------------------------------------- what is not a diagnosis


@pytest.mark.parametrize(
    "results",
    [
        pytest.param([tcp("local", "refused", "10.0.0.5"), tcp("lan", "refused", "10.0.0.5")], id="fails-alike"),
        pytest.param([tcp("local", "open", "10.0.0.5"), tcp("lan", "open", "10.0.0.5")], id="passes-alike"),
        pytest.param([dns("local", ["10.0.0.5"]), dns("lan", ["192.0.2.5"])], id="dns-differs-but-passes"),
        pytest.param([tcp("local", "refused", "10.0.0.5")], id="one-vantage"),
        pytest.param(
            [tcp("local", "open", "10.0.0.5"), {**tcp("lan", "refused", "10.0.0.5"), "outcome": "error"}],
            id="error-judges-nothing",
        ),
        pytest.param(
            [
                tcp("local", "open", "127.0.0.1"),
                {**http("lan", "error", "vantage_unreachable"), "check": "tcp", "subject": "8080/open", "details": {}},
            ],
            id="vantage-unreachable",
        ),
        pytest.param(
            [http("local"), http("lan", "failed", "upstream", details={"upstream": "tcp[prod:api:80/open@lan]"})],
            id="blocked-by-a-lower-layer",
        ),
        pytest.param([http("local"), http("lan", "skipped")], id="skipped"),
    ],
)
def test_no_diagnosis(results):
    assert diagnose(results) == []


def test_results_without_vantages_have_no_vantages_section():
    results = known_document()["results"]
    assert diagnose(results) == [] and vantages_section(results) is None


def test_the_same_check_of_two_targets_is_not_compared():
    assert (
        diagnose([tcp("local", "open", "127.0.0.1", target="a"), tcp("lan", "refused", "10.0.0.5", target="b")]) == []
    )


def test_group_key_and_port():
    assert group_key(tcp("lan", "open", None)) == ("api", "tcp", "8080")
    no_details = {**tcp("lan", "open", None, port=443), "details": "not a mapping"}
    assert tcp_port(no_details) == "443" and group_key(no_details) == ("api", "tcp", "443")
    assert group_key(dns("lan", ["10.0.0.5"])) == ("api", "dns", "dns[prod:api:A]")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
        ("127.0.0.1:8080", True), ("LOCALHOST", True), ("10.0.0.5", False), ("::", False), ("0.0.0.0", False),
        ("fe80::1%lo", False), ("not an address", False), ("", False), (None, False), (127, False),
    ],
)  # fmt: skip
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


# ----------------------------------------------------------------------------- any mix never crashes

VANTAGES = ("local", "lan", "internet")
ADDRESSES = ("127.0.0.1", "::1", "10.0.0.5", "10.0.0.6", None)
STATES = ("open", "refused", "filtered", "unreachable")


@st.composite
def tcp_results(draw: st.DrawFn) -> list[dict[str, Any]]:
    results = []
    for vantage in draw(st.lists(st.sampled_from(VANTAGES), unique=True, max_size=3)):
        state, address = draw(st.sampled_from(STATES)), draw(st.sampled_from(ADDRESSES))
        entry = tcp(vantage, state, address, expect=draw(st.sampled_from(("open", "filtered", "closed"))))
        entry["outcome"] = draw(st.sampled_from((entry["outcome"],) * 3 + ("error", "skipped")))
        results.append(entry)
    return results


@settings(max_examples=300, deadline=None)
@given(tcp_results())
def test_any_mix_of_states_gives_only_real_differences(results):
    found = diagnose(results)
    comparable = [r for r in results if r["outcome"] in ("passed", "failed")]
    if len({(r["details"]["state"], r["outcome"]) for r in comparable}) <= 1 or all(
        r["outcome"] == "passed" for r in comparable
    ):
        assert found == []  # a pattern needs a real difference and something wrong
    for diagnosis in found:
        sides = dict(diagnosis.by_vantage)
        assert diagnosis.pattern in PATTERNS and len(sides) >= 2
        assert diagnosis.affected and set(diagnosis.affected) <= sides.keys()
        assert any(facts["outcome"] == "failed" for facts in sides.values())
        affected = [sides[v] for v in diagnosis.affected]
        if diagnosis.pattern == LOOPBACK_BIND:
            assert any(f["state"] == "open" and is_loopback(f["address"]) for f in sides.values())
            assert all(f["state"] == "refused" and not is_loopback(f["address"]) for f in affected)
        if diagnosis.pattern == FIREWALL_DROP:
            assert all(f["state"] == "filtered" for f in affected)
        if diagnosis.pattern == FIREWALL_REJECT:
            opened = {f["address"] for f in sides.values() if f["state"] == "open"}
            assert all(f["address"] in opened for f in affected)
        json.dumps(diagnosis.as_entry())  # builtin types only


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"vantage": st.sampled_from((*VANTAGES, "")) | _ANY_JSON, "target": st.just("api") | _ANY_JSON},
            optional={
                key: st.sampled_from(values) | _ANY_JSON
                for key, values in {
                    "check": ("tcp", "dns", "http"),
                    "outcome": ("passed", "failed", "error"),
                    "subject": ("8080/open", "A", "x"),
                    "address": ADDRESSES,
                    "reason": ("refused", "upstream", None),
                    "id": ("tcp[prod:api:8080/open@lan]", "dns[prod:api:A@local]"),
                    "details": ({"state": "open", "port": 8080}, {"answers": {"system": ["10.0.0.5"]}}),
                }.items()
            },
        ),
        max_size=6,
    )
)
def test_hostile_values_never_crash(results):
    section = vantages_section(results)
    if section is not None:
        json.dumps(section)
    for document in (known_document(results=[]),):
        document["results"] = results
        document["vantages"] = section
        render_html(document)
        plain_summary(document)


# ----------------------------------------------------------------------------- the reports


def vantage_results() -> list[dict[str, Any]]:
    """The demo's picture: 28100 bound to 127.0.0.1, 28101 to 0.0.0.0, seen from local and from the server."""
    results = [
        tcp("local", "refused", "198.19.255.254", port=28100),
        tcp("server", "open", "127.0.0.1", port=28100),
        tcp("local", "open", "198.19.255.254", port=28101),
        tcp("server", "open", "127.0.0.1", port=28101),
        dns("local", ["198.19.255.254"], target="web"),
        dns("server", ["198.19.255.254"], target="web"),
    ]
    for order, entry in enumerate(results):
        entry["order"] = order
    return results


def vantage_document() -> dict[str, Any]:
    return dict(
        build_document(
            environment="demo-vantages",
            inventory="demo.yaml",
            started_at="t",
            duration_s=1.0,
            results=vantage_results(),
        )
    )


def test_json_has_a_vantages_object_with_names_and_diagnoses():
    document = json.loads(encode_json(vantage_document()))
    vantages = document["vantages"]
    assert list(vantages) == ["names", "diagnoses"]
    assert vantages["names"] == ["local", "server"]
    (diagnosis,) = vantages["diagnoses"]
    assert list(diagnosis) == ["target", "check", "subject", "pattern", "message", "affected", "by_vantage"]
    assert diagnosis["pattern"] == "loopback_bind" and diagnosis["subject"] == "28100"
    assert diagnosis["by_vantage"]["local"] == {
        "id": "tcp[prod:api:28100/open@local]",
        "outcome": "failed",
        "reason": "refused",
        "address": "198.19.255.254",
        "state": "refused",
    }
    assert all(entry["vantage"] in ("local", "server") for entry in document["results"])


def test_json_without_vantages_has_no_vantages_key():
    assert "vantages" not in known_document()


def test_terminal_matrix_one_line_per_target_and_one_line_per_diagnosis():
    lines = plain_summary(vantage_document(), width=None)
    header = next(i for i, line in enumerate(lines) if line.startswith("vantages"))
    assert lines[header].split() == ["vantages", "local", "server"]
    assert lines[header + 1].split() == ["api", "tcp", "FAIL", "ok"]
    assert lines[header + 2].split() == ["web", "ok", "ok"]
    (diagnosis,) = [line for line in lines if line.startswith("loopback_bind")]
    assert diagnosis.endswith(LOOPBACK_HINT)
    assert lines.index(diagnosis) == header + 3  # before the root causes
    kinds = [kind for _, kind in summary_lines(vantage_document())]
    assert kinds.count("vantage") == 2 and kinds.count("diagnosis") == 1


def test_terminal_has_nothing_new_without_vantages():
    kinds = {kind for _, kind in summary_lines(known_document())}
    assert not kinds & {"vantage-header", "vantage", "diagnosis"}


def vantage_cells(page: Node) -> dict[tuple[str, str, str], Node]:
    """(layer, target, vantage) -> the cell of the target x vantage matrices."""
    cells = {}
    for table in page.find(id="vantages").find_all("table", "vmatrix"):
        for row in table.find("tbody").find_all("tr"):
            target = row.find("td", "t").text.strip()
            for td in row.find_all("td"):
                if "data-vantage" in td.attrs:
                    cells[(table.attrs["data-layer"], target, td.attrs["data-vantage"])] = td.find(cls="cell")
    return cells


def test_html_matrix_per_layer_and_the_diagnoses():
    page = parse(render_html(vantage_document()))
    cells = vantage_cells(page)
    colours = {key: next(c for c in cell.classes if c.startswith("c-")) for key, cell in cells.items()}
    assert colours == {
        ("dns", "web", "local"): "c-pass",
        ("dns", "web", "server"): "c-pass",
        ("tcp", "api", "local"): "c-fail",
        ("tcp", "api", "server"): "c-pass",
    }
    assert cells[("tcp", "api", "local")].tag == "a"  # links to the failure card
    assert "1/2 FAIL" in cells[("tcp", "api", "local")].text
    (diagnosis,) = page.find(id="diagnoses").find_all("article", "diag")
    assert "k-loopback_bind" in diagnosis.classes
    assert LOOPBACK_HINT in diagnosis.text
    rows = [[td.text for td in tr.find_all("td")] for tr in diagnosis.find("tbody").find_all("tr")]
    assert rows == [
        ["local", "failed", "refused", "refused", "198.19.255.254"],
        ["server", "passed", "-", "open", "127.0.0.1"],
    ]
    order = [n.attrs.get("id") for n in page.iter() if n.attrs.get("id") in ("matrix", "vantages", "failures")]
    assert order == ["matrix", "vantages", "failures"]


def test_html_without_vantages_has_no_vantage_section():
    page = parse(render_html(known_document()))
    assert not page.find_all(id="vantages") and not page.find_all("table", "vmatrix")


def test_terminal_says_once_per_vantage_that_it_could_not_run():
    unreachable = [
        {
            **tcp("lan", "open", None, port=port),
            "outcome": "error",
            "layer": None,
            "reason": "vantage_unreachable",
            "address": None,
            "details": {},
            "message": "lan: pytest-autoglm is not installed there; install pytest-autoglm in that Python",
        }
        for port in (80, 443, 8080)
    ]
    results = [tcp("local", "open", "10.0.0.5", port=port) for port in (80, 443, 8080)] + unreachable
    document = build_document(environment="prod", inventory="p.yaml", started_at="t", duration_s=1, results=results)
    lines = plain_summary(document, width=None)
    (line,) = [line for line in lines if "vantage_unreachable" in line]
    assert line.startswith("vantage lan: 3 checks not run (error/vantage_unreachable)  lan: pytest-autoglm is not")
    for entry in document["results"]:  # the engine's own messages name the vantage: not twice
        entry["message"] = entry["message"].replace("lan:", "vantage lan (popen//python=python3):")
    (line,) = [line for line in plain_summary(document, width=None) if "vantage_unreachable" in line]
    assert line.startswith("3 checks not run (error/vantage_unreachable)  vantage lan (popen//python=python3): pytest")
    assert not any(line.startswith("tcp[") for line in lines)  # not one line per check
    assert document["vantages"]["diagnoses"] == []  # an error judges nothing about the target
    assert [line.split() for line in lines if line.startswith(("api", "vantages"))][-2:] == [
        ["vantages", "local", "lan"],
        ["api", "ok", "ERR"],
    ]


def test_html_one_card_per_vantage_that_could_not_run():
    unreachable = [
        {
            **tcp("lan", "open", None, port=port),
            "outcome": "error",
            "layer": None,
            "reason": "vantage_unreachable",
            "address": None,
            "details": {},
            "message": "vantage lan: python3 cannot import pytest_autoglm",
        }
        for port in (80, 443, 8080)
    ]
    results = [tcp("local", "refused", "10.0.0.5", port=22), *unreachable]
    for order, entry in enumerate(results):
        entry["order"] = order
    page = parse(
        render_html(build_document(environment="p", inventory="p", started_at="t", duration_s=1, results=results))
    )
    cards = page.find(id="failures").find_all("article", "card")
    assert [card.find(cls="card-id").text.split()[-1] for card in cards] == [
        "tcp[prod:api:22/open@local]",
        "tcp[prod:api:80/open@lan]",
    ]
    listed = cards[1].find(cls="blocked-list")
    assert "2 more checks of this vantage did not run" in " ".join(listed.text.split())
    assert [li.text for li in listed.find_all("li")] == ["tcp[prod:api:443/open@lan]", "tcp[prod:api:8080/open@lan]"]
    assert "(reason upstream)" not in listed.text
    assert {cell.attrs.get("href") for key, cell in vantage_cells(page).items() if key[2] == "lan"} == {"#f2"}
