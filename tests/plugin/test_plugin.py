"""End-to-end tests of the plugin with pytester: collection, ids, selection, exit codes, reports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.tcp_servers import free_port, tcp_listener


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / name
    path.write_text(text, encoding="utf-8")
    return path


def report(pytester: pytest.Pytester, env: str, folder: str = "reports") -> dict:
    return json.loads((pytester.path / folder / f"{env}.json").read_text())


@pytest.fixture
def listener():
    with tcp_listener() as lst:
        yield lst


@pytest.fixture
def zone_server():
    zone = {
        "api.test.": {"A": ["127.0.0.1"]},
        "v6.test.": {"AAAA": ["::1"]},
    }
    with FakeDnsServer(zone) as server:
        yield server


def basic_inventory(port: int, refused: int, resolver: str) -> str:
    return f"""\
version: 1
environment: lab
defaults:
  timeout: 1s
  retries: 0
  resolvers: ["{resolver}"]
targets:
  - name: api
    host: api.test
    tags: [critical, public]
    dns:
      A: [127.0.0.1]
    tcp:
      open: [{port}]
      refused: [{refused}]
  - name: ghost
    host: ghost.test
    dns:
      A: present
    tcp:
      open: [{port}]
"""


def test_collect_only_lists_items_and_touches_no_network(pytester, listener, zone_server):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    result = pytester.runpytest("--autoglm-target", "lab.yaml", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "lab.yaml::dns[[]lab:api:A[]]",
            f"lab.yaml::tcp[[]lab:api:{listener.port}/open[]]",
            "lab.yaml::dns[[]lab:ghost:A[]]",
        ]
    )
    assert result.ret == 0
    assert zone_server.queries == 0
    assert not (pytester.path / "reports" / "lab.json").exists()


def test_run_verdicts_json_report_and_upstream(pytester, listener, zone_server):
    refused = free_port()
    write(pytester, "lab.yaml", basic_inventory(listener.port, refused, zone_server.address))
    started = time.monotonic()
    result = pytester.runpytest("--autoglm-target", "lab.yaml")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=3, failed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*reason:   nxdomain*", "*reason:   upstream*", "*root cause: dns[[]lab:ghost:A[]]*"])
    assert "Traceback" not in result.stdout.str()
    doc = report(pytester, "lab")
    assert doc["schema"] == "autoglm-results/1"
    assert doc["environment"] == "lab"
    assert doc["summary"] == {
        "passed": 3,
        "failed": 2,
        "skipped": 0,
        "error": 0,
        "warnings": 0,
        "xfailed": 0,
        "failing": 2,
        "root_causes": 1,
        "blocked": 1,
        "errors": 0,
        "warned": 0,
        "retried": 0,
        "spoiled_attempts": 0,
    }
    by_id = {r["id"]: r for r in doc["results"]}
    upstream = by_id[f"tcp[lab:ghost:{listener.port}/open]"]
    assert (upstream["outcome"], upstream["layer"], upstream["reason"]) == ("failed", "dns", "upstream")
    assert "dns[lab:ghost:A]" in upstream["message"]
    refused_item = by_id[f"tcp[lab:api:{refused}/refused]"]
    assert (refused_item["outcome"], refused_item["address"]) == ("passed", "127.0.0.1")
    assert set(refused_item) >= {
        "id",
        "target",
        "check",
        "subject",
        "outcome",
        "layer",
        "reason",
        "message",
        "address",
        "severity",
        "attempts",
        "duration_ms",
        "details",
    }
    assert elapsed < 10  # the upstream item did not wait out a timeout of its own


def test_markers_and_keywords_select(pytester, listener, zone_server):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    result = pytester.runpytest("--autoglm-target", "lab.yaml", "-m", "tcp and critical", "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"*tcp[[]lab:api:{listener.port}/open[]]", "*2/5 tests collected (3 deselected)*"])
    result = pytester.runpytest(
        "--autoglm-target", "lab.yaml", "-k", "ghost", "--collect-only", "-q", "--strict-markers"
    )
    result.stdout.fnmatch_lines(["*2/5 tests collected (3 deselected)*"])


def test_bad_inventory_is_a_collection_error_with_position(pytester):
    write(pytester, "bad.yaml", "version: 1\ntargets:\n  - name: api\n    host: api.test\n    tsl: {port: 443}\n")
    result = pytester.runpytest("--autoglm-target", "bad.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED == 2
    result.stdout.fnmatch_lines(["*bad.yaml:5:5: targets[[]0[]]: unknown key 'tsl' (did you mean 'tls'?)*"])
    assert "Traceback" not in result.stdout.str()


def test_missing_target_file_and_bad_options_are_usage_errors(pytester):
    result = pytester.runpytest("--autoglm-target", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--autoglm-target: inventory file not found: nope.yaml*"])
    write(pytester, "ok.yaml", "version: 1\ntargets: []\n")
    for option, value, text in [
        ("--autoglm-timeout", "soon", "*--autoglm-timeout: invalid duration 'soon'*"),
        ("--autoglm-retries", "-1", "*--autoglm-retries: -1 is out of range 0..20*"),
        ("--autoglm-concurrency", "many", "*--autoglm-concurrency: expected a whole number*"),
        ("--autoglm-fail-on", "minor", "*--autoglm-fail-on: expected 'critical' or 'warning'*"),
        ("--autoglm-engine", "gpu", "*--autoglm-engine: expected 'auto', 'process' or 'thread', got 'gpu'*"),
    ]:
        result = pytester.runpytest("--autoglm-target", "ok.yaml", option, value)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, option
        result.stderr.fnmatch_lines([text])


def test_empty_inventory_collects_nothing(pytester):
    write(pytester, "none.yaml", "version: 1\ntargets: []\n")
    result = pytester.runpytest("--autoglm-target", "none.yaml")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_ini_keys_match_options(pytester, listener):
    write(
        pytester,
        "ini.yaml",
        f"version: 1\ntargets:\n  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
    )
    pytester.makeini(
        "[pytest]\nautoglm_target = ini.yaml\nautoglm_timeout = 750ms\nautoglm_retries = 0\nautoglm_report_dir = out\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert (pytester.path / "out" / "ini.json").exists()
    result.stdout.fnmatch_lines(["*timeout 0.75s, retries 0*"])


def test_warning_severity_fails_only_with_fail_on_warning(pytester):
    refused = free_port()
    write(
        pytester,
        "w.yaml",
        f"version: 1\ndefaults: {{severity: warning, retries: 0, timeout: 1s}}\ntargets:\n  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{refused}]}}\n",
    )
    result = pytester.runpytest("--autoglm-target", "w.yaml")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*1 warned*"])
    entry = report(pytester, "w")["results"][0]
    assert (entry["outcome"], entry["severity"], entry["reason"]) == ("failed", "warning", "refused")
    result = pytester.runpytest("--autoglm-target", "w.yaml", "--autoglm-fail-on", "warning")
    assert result.ret == 1


def test_secrets_are_masked_in_terminal_json_and_junit(pytester, monkeypatch):
    monkeypatch.setenv("AUTOGLM_TEST_HOST", "localhost")
    refused = free_port()
    write(
        pytester,
        "s.yaml",
        "version: 1\ndefaults: {retries: 0, timeout: 1s}\n"
        "targets:\n  - name: api\n    host: ${AUTOGLM_TEST_HOST}\n"
        f"    tcp: {{open: [{refused}]}}\n",
    )
    result = pytester.runpytest("--autoglm-target", "s.yaml", "--junitxml", "junit.xml", "-rA")
    assert result.ret == 1
    junit = (pytester.path / "junit.xml").read_text()
    doc_text = (pytester.path / "reports" / "s.json").read_text()
    for text in (result.stdout.str(), junit, doc_text):
        assert "localhost" not in text
        assert "*** (127.0.0.1)" in text


def test_user_tests_get_target_and_probe(pytester, listener):
    write(
        pytester,
        "u.yaml",
        f"version: 1\ntargets:\n  - name: web\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n"
        "  - name: bare\n    host: 127.0.0.1\n",
    )
    pytester.makepyfile(
        test_mine=f"""
        from pytest_autoglm import tcp, Outcome

        @tcp
        def test_port_open(autoglm_target, autoglm_probe):
            result = autoglm_probe.tcp(autoglm_target, {listener.port})
            assert result.outcome is Outcome.PASSED, result.message

        def test_every_target(autoglm_target):
            assert autoglm_target.host == "127.0.0.1"
        """
    )
    result = pytester.runpytest("--autoglm-target", "u.yaml", "test_mine.py", "-v")
    result.stdout.fnmatch_lines(["*test_port_open[[]u:web[]] PASSED*", "*test_every_target[[]u:bare[]] PASSED*"])
    result.assert_outcomes(passed=4)


def test_xdist_gives_the_same_results(pytester, listener, zone_server):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    plain = pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "--autoglm-report-dir", "plain")
    dist = pytester.runpytest_subprocess(
        "--autoglm-target", "lab.yaml", "--autoglm-report-dir", "dist", "-n", "2", "--autoglm-distribute"
    )
    assert plain.ret == dist.ret == 1
    dist.stdout.fnmatch_lines(["*2 workers [[]* items[]]*"])

    def stable(folder: str) -> list[dict]:
        doc = json.loads((pytester.path / folder / "lab.json").read_text())
        # each folder has its own history store, so history's times differ (tests/plugin/test_history_runs.py
        # checks that -n 2 records the same run into one store)
        return [{k: v for k, v in r.items() if k not in ("duration_ms", "history")} for r in doc["results"]]

    assert stable("plain") == stable("dist")


def test_an_inventory_only_run_ignores_xdist_and_says_so(pytester, listener, zone_server):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    plain = pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "--autoglm-report-dir", "plain")
    result = pytester.runpytest_subprocess(
        "--autoglm-target", "lab.yaml", "--autoglm-report-dir", "n2", "-n", "2", "-v"
    )
    assert result.ret == plain.ret == 1
    result.stdout.fnmatch_lines(["autoglm: xdist (-n 2) not used: this run checks only inventories*"])
    result.stdout.no_fnmatch_line("*[[]gw*")
    result.stdout.no_fnmatch_line("*workers*items*")
    outcomes = [(r["id"], r["outcome"], r["reason"]) for r in report(pytester, "lab", "n2")["results"]]
    assert outcomes == [(r["id"], r["outcome"], r["reason"]) for r in report(pytester, "lab", "plain")["results"]]


def test_a_run_with_python_tests_keeps_its_xdist_workers(pytester, listener, zone_server):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    pytester.makepyfile(test_mine="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "test_mine.py", "-n", "2")
    result.stdout.fnmatch_lines(["*2 workers [[]* items[]]*"])
    result.stdout.no_fnmatch_line("autoglm: xdist*not used*")


@pytest.mark.parametrize(("ini", "workers"), [("true", True), ("no", False)])
def test_the_distribute_ini_key(pytester, listener, zone_server, ini, workers):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    pytester.makeini(f"[pytest]\nautoglm_distribute = {ini}\n")
    result = pytester.runpytest_subprocess("--autoglm-target", "lab.yaml", "-n", "2")
    assert ("workers [" in result.stdout.str()) is workers


def test_a_bad_distribute_value_is_a_usage_error(pytester, listener, zone_server):
    write(pytester, "lab.yaml", basic_inventory(listener.port, free_port(), zone_server.address))
    pytester.makeini("[pytest]\nautoglm_distribute = sometimes\n")
    result = pytester.runpytest("--autoglm-target", "lab.yaml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*ini key autoglm_distribute: expected true or false, got 'sometimes'*"])


def test_maxfail_marks_the_report_partial(pytester):
    ports = [free_port() for _ in range(3)]
    write(
        pytester,
        "p.yaml",
        "version: 1\ndefaults: {retries: 0, timeout: 1s}\ntargets:\n  - name: a\n    host: 127.0.0.1\n"
        f"    tcp: {{open: {ports}}}\n",
    )
    result = pytester.runpytest("--autoglm-target", "p.yaml", "-x")
    assert result.ret == 1
    doc = report(pytester, "p")
    assert doc["partial"] is True
    assert doc["summary"]["failed"] == 1


def test_dropped_ports_overlap_instead_of_adding_up(pytester, netns_lab, listener):
    """40 silently dropped ports at timeout 1s: one timeout of wall time, not forty."""
    lines = ["version: 1", "defaults: {timeout: 1s, retries: 0}", "targets:"]
    dropped = list(netns_lab.dropped)[:40]
    for i, port in enumerate(dropped):
        lines += [f"  - name: dropped{i}", f"    host: {netns_lab.address}", f"    tcp: {{open: [{port}]}}"]
    for i in range(160):
        lines += [f"  - name: ok{i}", "    host: 127.0.0.1", f"    tcp: {{open: [{listener.port}]}}"]
    write(pytester, "many.yaml", "\n".join(lines) + "\n")
    started = time.monotonic()
    result = pytester.runpytest("--autoglm-target", "many.yaml", "--tb=no")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=160, failed=40)
    reasons = {r["reason"] for r in report(pytester, "many")["results"] if r["outcome"] == "failed"}
    assert reasons == {"filtered"}
    assert elapsed < 15, f"{elapsed:.1f}s: dropped ports were waited out one after another"


def test_every_resolved_address_is_checked_and_the_broken_one_named(pytester):
    from tests.fakes.tcp_servers import HAS_IPV6_LOOPBACK

    if not HAS_IPV6_LOOPBACK:
        pytest.skip("no IPv6 loopback on this machine")
    with tcp_listener("127.0.0.1") as v4:
        zone = {"dual.test.": {"A": ["127.0.0.1"], "AAAA": ["::1"]}}
        with FakeDnsServer(zone) as dns_server:
            write(
                pytester,
                "dual.yaml",
                f'version: 1\ndefaults: {{timeout: 1s, retries: 0, resolvers: ["{dns_server.address}"]}}\n'
                f"targets:\n  - name: dual\n    host: dual.test\n    tcp: {{open: [{v4.port}]}}\n",
            )
            result = pytester.runpytest("--autoglm-target", "dual.yaml")
    result.assert_outcomes(failed=1)
    entry = report(pytester, "dual")["results"][0]
    assert (entry["reason"], entry["address"]) == ("refused", "::1")
    assert "::1" in entry["message"]
    assert entry["details"]["addresses"] == {
        "127.0.0.1": {"outcome": "passed", "reason": None},
        "::1": {"outcome": "failed", "reason": "refused"},
    }


def test_xdist_workers_probe_only_their_share(pytester, zone_server):
    """Each check runs once under -n 2: one target's checks go to one worker, which prefetches only them."""
    with tcp_listener() as counted:
        lines = ["version: 1", "defaults: {timeout: 1s, retries: 0}", "targets:"]
        for i in range(6):
            lines += [f"  - name: t{i}", "    host: 127.0.0.1", f"    tcp: {{open: [{counted.port}]}}"]
        write(pytester, "share.yaml", "\n".join(lines) + "\n")
        result = pytester.runpytest_subprocess("--autoglm-target", "share.yaml", "-n", "2", "--autoglm-distribute")
        result.assert_outcomes(passed=6)
        deadline = time.monotonic() + 2
        while counted.accepted < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counted.accepted == 6


def test_group_names_keep_a_target_together():
    from pytest_autoglm.plugin.prefetch import group_names

    targets = [("e", "a"), ("e", "a"), ("e", "b"), ("f", "a"), ("e", "a")]
    names = group_names(targets, 2)
    assert names[0] == names[1] == names[4] != names[2]
    assert names[3] == names[0]  # a third target, dealt round-robin into two groups


@pytest.mark.parametrize("engine", ["process", "thread"])
def test_a_users_probe_sees_the_items_failure_upstream_whichever_engine(pytester, engine):
    refused = free_port()
    write(
        pytester,
        "u.yaml",
        "version: 1\nenvironment: u\ndefaults: {retries: 0, timeout: 1s}\ntargets:\n"
        f"  - name: web\n    host: 127.0.0.1\n    tcp: {{open: [{refused}]}}\n"
        f"    http: [{{url: 'http://127.0.0.1:{refused}/health'}}]\n",
    )
    pytester.makepyfile(
        test_mine="""
        from pytest_autoglm import Reason

        def test_http_is_blocked_by_the_port(autoglm_target, autoglm_probe):
            result = autoglm_probe.http(autoglm_target)
            assert result.reason is Reason.UPSTREAM, result.message
            assert "tcp[u:web:" in result.message
        """
    )
    result = pytester.runpytest_subprocess(
        "--autoglm-target", "u.yaml", "test_mine.py", "--autoglm-engine", engine, "-v"
    )
    result.stdout.fnmatch_lines(["*engine " + engine + "*", "*test_http_is_blocked_by_the_port*PASSED*"])
    forked = "autoglm: the probes ran in a forked child process (--autoglm-engine process)"
    assert (forked in result.stdout.str()) is (engine == "process")
    result.assert_outcomes(passed=1, failed=2)
