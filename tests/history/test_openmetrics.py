"""<env>.prom text and a push to a real Pushgateway."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoglm.history import PushFailed, push_to_gateway, render_openmetrics, write_openmetrics
from pytest_autoglm.history.openmetrics import escape_label
from tests.history.servers import free_port

RESULTS: list[dict[str, Any]] = json.loads(Path(__file__).with_name("demo_results.json").read_text())
#: A sample line of the text format: name, labels, value.
SAMPLE = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)*)\} (-?[0-9.e+]+|NaN|[+-]Inf)$')


def test_demo_report_as_openmetrics(tmp_path: Path) -> None:
    text = write_openmetrics(tmp_path / "demo.prom", "demo", RESULTS)
    assert (tmp_path / "demo.prom").read_text() == text
    assert text.endswith("# EOF\n")
    lines = text.splitlines()[:-1]
    for line in lines:
        assert line.startswith(("# HELP ", "# TYPE ")) or SAMPLE.match(line), line
    tls = next(r for r in RESULTS if r["check"] == "tls")
    labels = f'env="demo",target="{tls["target"]}",check="{tls["id"]}",layer="tls"'
    assert f"probe_success{{{labels}}} 0" in lines
    expiry = [line for line in lines if line.startswith(f"probe_ssl_earliest_cert_expiry{{{labels}}}")]
    assert len(expiry) == 1 and float(expiry[0].rsplit(" ", 1)[1]) > 1.7e9
    assert any(line.startswith("probe_http_status_code{") and line.endswith(" 200") for line in lines)
    assert any(f'reason="{tls["reason"]}"' in line for line in lines if line.startswith("autoglm_check_failure_info"))
    assert sum(line.startswith("probe_success{") for line in lines) == sum(r["outcome"] != "skipped" for r in RESULTS)
    types = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(types) == len(set(types))  # one family block per metric


def test_label_values_are_escaped() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    hostile = {"id": 'http[prod:x:GET /"} 1\n# EOF\nevil{a="]', "target": "x\\", "check": "http", "outcome": "passed"}
    text = render_openmetrics("prod", [hostile])
    assert text.splitlines().count("# EOF") == 1 and "\nevil" not in text
    for line in text.splitlines():
        assert line.startswith("#") or SAMPLE.match(line), line


def test_history_metrics_when_present() -> None:
    result: dict[str, Any] = {
        "id": "tcp[a]",
        "target": "a",
        "check": "tcp",
        "outcome": "failed",
        "layer": "tcp",
        "reason": "refused",
    }
    result["history"] = {"state": "firing", "consecutive_failures": 4}
    text = render_openmetrics("prod", [result])
    assert 'autoglm_alert_firing{env="prod",target="a",check="tcp[a]",layer="tcp"} 1' in text
    assert 'autoglm_consecutive_failures{env="prod",target="a",check="tcp[a]",layer="tcp"} 4' in text


def test_push_to_a_real_pushgateway(pushgateway_url: str) -> None:
    text = render_openmetrics("demo", RESULTS)
    push_to_gateway(pushgateway_url, text, "autoglm", grouping={"env": "demo"})
    scraped = httpx.get(f"{pushgateway_url}/metrics", timeout=5).text
    tcp = next(r for r in RESULTS if r["check"] == "tcp")
    wanted = re.compile(r'probe_success\{[^}]*check="' + re.escape(tcp["id"]) + r'"[^}]*job="autoglm"[^}]*\} 1')
    assert any(wanted.search(line) for line in scraped.splitlines())
    # PUT replaces the group: a second push without the tcp checks removes them.
    push_to_gateway(
        pushgateway_url,
        render_openmetrics("demo", [r for r in RESULTS if r["check"] != "tcp"]),
        "autoglm",
        grouping={"env": "demo"},
    )
    assert tcp["id"] not in httpx.get(f"{pushgateway_url}/metrics", timeout=5).text


def test_push_job_with_a_slash(pushgateway_url: str) -> None:
    push_to_gateway(pushgateway_url, render_openmetrics("a/b", RESULTS[:1]), "nightly/prod", grouping={"env": "a/b"})
    assert 'job="nightly/prod"' in httpx.get(f"{pushgateway_url}/metrics", timeout=5).text


def test_push_refused_is_one_line() -> None:
    url = f"http://user:pw@127.0.0.1:{free_port()}"
    with pytest.raises(PushFailed, match=r"pushgateway http://127.0.0.1:\d+: ConnectError") as info:
        push_to_gateway(url, "# EOF\n", "autoglm", timeout=2)
    assert "pw" not in str(info.value).replace("pushgateway", "") and "\n" not in str(info.value)


def test_push_rejected(pushgateway_url: str) -> None:
    with pytest.raises(PushFailed, match=r"HTTP 400"):
        push_to_gateway(pushgateway_url, "this is not { metrics\n", "autoglm")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_any_label_value_stays_inside_its_quotes(target: str, check_id: str) -> None:
    text = render_openmetrics("prod", [{"id": check_id, "target": target, "check": "tcp", "outcome": "failed"}])
    lines = text.split("\n")[:-1]  # parsers split on newline only (not on \x85, \u2028 ...)
    assert lines[-1] == "# EOF" and lines.count("# EOF") == 1
    for line in lines[:-1]:
        assert line.startswith("#") or SAMPLE.match(line), line
    sample = next(line for line in lines if line.startswith("probe_success{"))
    assert f'target="{escape_label(target)}"' in sample
