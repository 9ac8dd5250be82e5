"""The fast path's one switch (``--autoglm-fast-path``, plugin/fastpath): same verdicts and reports
on and off, nothing of it left when off, and everything it changes in the interpreter undone."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tests.fakes.tcp_servers import free_port, tcp_listener

FASTPATH_PARTS = ("protocol", "runloop", "xdist", "gcfreeze")


@pytest.fixture
def lab(pytester: pytest.Pytester):
    """An inventory of two environments' worth of outcomes: open, refused, and a target whose
    tcp item is skipped by a user's mark and one xfailed; plus a user's test file."""
    with tcp_listener() as listener:
        refused = free_port()
        (pytester.path / "inv.yaml").write_text(
            "version: 1\nenvironment: lab\ndefaults: {timeout: 1s, retries: 0}\ntargets:\n"
            f"  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}, {refused}]}}\n"
            f"  - name: b\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}], refused: [{refused}]}}\n"
            f"  - name: c\n    host: 127.0.0.1\n    tcp: {{open: [{refused}]}}\n"
            f"  - name: d\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n",
            encoding="utf-8",
        )
        (pytester.path / "broken.yaml").write_text("version: 1\ntargets: [{name: x}]\n", encoding="utf-8")
        pytester.makeconftest(
            """
            import pytest

            def pytest_collection_modifyitems(items):
                for item in items:
                    if "[lab:c:" in item.nodeid:
                        item.add_marker(pytest.mark.xfail(reason="known broken", strict=True))
                    if "[lab:d:" in item.nodeid:
                        item.add_marker(pytest.mark.skip(reason="not today"))

            @pytest.fixture
            def broken():
                raise RuntimeError("fixture broke")
            """
        )
        pytester.makepyfile(
            test_mine="""
            def test_ok():
                pass

            def test_fails():
                assert False

            def test_errors(broken):
                pass
            """
        )
        yield


SCENARIOS = {
    "inventory only": ["--autoglm-target", "inv.yaml"],
    "mixed session": ["--autoglm-target", "inv.yaml", "test_mine.py"],
    "-x": ["--autoglm-target", "inv.yaml", "-x"],
    "xdist -n 2": ["--autoglm-target", "inv.yaml", "test_mine.py", "-n", "2"],
    "xdist -n 2, inventory only, distributed": ["--autoglm-target", "inv.yaml", "-n", "2", "--autoglm-distribute"],
    "a broken inventory beside": ["--autoglm-target", "inv.yaml", "--autoglm-target", "broken.yaml"],
}


def _run(pytester: pytest.Pytester, args: list[str], switch: str) -> tuple[int, dict[str, int], list[dict], str]:
    folder = f"reports-{switch}"
    result = pytester.runpytest_subprocess(*args, "--autoglm-fast-path", switch, "--autoglm-report-dir", folder)
    path = pytester.path / folder / "lab.json"
    results = []
    if path.exists():
        doc = json.loads(path.read_text())
        # history is left out: each folder has its own store, so its times differ
        results = [{k: v for k, v in r.items() if k not in ("duration_ms", "history")} for r in doc["results"]]
    return int(result.ret), result.parseoutcomes(), results, result.stdout.str()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_same_verdicts_and_reports_with_the_fast_path_on_and_off(pytester, lab, scenario):
    on = _run(pytester, SCENARIOS[scenario], "on")
    off = _run(pytester, SCENARIOS[scenario], "off")
    assert on[:3] == off[:3]
    assert on[1].get("failed") or on[1].get("errors") or on[1].get("error")
    assert "autoglm: fast path off" in off[3] and "autoglm: fast path off" not in on[3]


def test_with_the_fast_path_off_nothing_of_it_runs(pytester, lab):
    """No part registered, no gc freeze, -n not rewritten, collection order whatever --autoglm-order says."""
    pytester.makeconftest(
        pytester.path.joinpath("conftest.py").read_text()
        + textwrap.dedent(
            """
            import gc

            def pytest_sessionfinish(session):
                names = [n for n, _ in session.config.pluginmanager.list_name_plugin() if "fastpath-" in str(n)]
                print("PARTS", names, "FROZEN", gc.get_freeze_count())
            """
        )
    )
    args = ["--autoglm-target", "inv.yaml", "-s", "-v", "--autoglm-order", "ready", "--autoglm-engine", "process"]
    off = pytester.runpytest_subprocess(*args, "--autoglm-fast-path", "off")
    off.stdout.fnmatch_lines(["*PARTS [[][]] FROZEN 0*"])
    walked = [line.split("::")[1] for line in off.stdout.lines if line.startswith("inv.yaml::")]
    assert walked == sorted(walked, key=lambda name: "abcd".index(name.split(":")[1]))
    on = pytester.runpytest_subprocess(*args)
    assert all(f"autoglm-fastpath-{part}" in on.stdout.str() for part in FASTPATH_PARTS)
    assert "FROZEN 0" not in on.stdout.str()

    n2 = pytester.runpytest_subprocess("--autoglm-target", "inv.yaml", "-n", "2", "--autoglm-fast-path", "off")
    n2.stdout.fnmatch_lines(["*2 workers [[]* items[]]*"])
    n2.stdout.no_fnmatch_line("*xdist (-n 2) not used*")


def test_the_ini_key_and_a_bad_value(pytester, lab):
    pytester.makeini("[pytest]\nautoglm_fast_path = off\n")
    result = pytester.runpytest("--autoglm-target", "inv.yaml")
    result.stdout.fnmatch_lines(["autoglm: fast path off*"])
    bad = pytester.runpytest("--autoglm-target", "inv.yaml", "--autoglm-fast-path", "sometimes")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--autoglm-fast-path: expected 'on' or 'off', got 'sometimes'*"])


def test_gc_freeze_is_undone_after_pytests_own_gc_passes(pytester, lab):
    """A process that runs pytest.main() gets its collector back; pytest's own passes at the end
    of the session (the reason for the freeze) still skip the frozen objects."""
    script = pytester.path / "drive.py"
    script.write_text(
        textwrap.dedent(
            """
            import gc, json, sys
            import pytest

            passes = []

            def record(phase, info):
                if phase == "start" and info["generation"] == 2:
                    passes.append(gc.get_freeze_count())

            class Recorder:
                @pytest.hookimpl(trylast=True)
                def pytest_sessionfinish(self):
                    gc.callbacks.append(record)

            code = pytest.main(["--autoglm-target", "inv.yaml", "-q", "-p", "no:cacheprovider", *sys.argv[1:]],
                               plugins=[Recorder()])
            gc.callbacks.remove(record)
            print("RESULT", json.dumps({"code": int(code), "passes": passes, "after": gc.get_freeze_count()}))
            """
        ),
        encoding="utf-8",
    )
    for switch in ("on", "off"):
        run = pytester.run(sys.executable, str(script), "--autoglm-fast-path", switch)
        line = next(line for line in run.outlines if line.startswith("RESULT "))
        seen = json.loads(line.split(" ", 1)[1])
        assert seen["code"] == 1
        assert seen["after"] == 0, switch
        assert seen["passes"], "pytest made no gc pass at the end of the session"
        if switch == "on":
            assert all(count > 0 for count in seen["passes"]), seen
        else:
            assert not any(seen["passes"]), seen


def test_the_n_rewrite_is_put_back_at_unconfigure(pytester, lab):
    class Recorder:
        config: pytest.Config

        def pytest_sessionstart(self, session):
            self.config = session.config
            self.during = (session.config.option.dist, session.config.option.numprocesses)

    recorder = Recorder()
    reprec = pytester.inline_run("--autoglm-target", "inv.yaml", "-n", "2", plugins=[recorder])
    reprec.assertoutcome(passed=3, skipped=2, failed=1)  # in this process: -n was not used
    assert recorder.during == ("no", 0)
    assert (recorder.config.option.dist, recorder.config.option.numprocesses) == ("load", 2)
    assert recorder.config.option.tx == ["popen", "popen"]


def test_the_xdist_privates_of_the_partition_scheduler(pytester):
    """The fast path's one private use (plugin/fastpath/xdist.py): if this fails, pytest-xdist changed
    ``LoadScheduling``; re-check TargetPartitionScheduling against it (or drop it for loadgroup)."""
    from xdist.scheduler import LoadScheduling

    from pytest_autoglm.plugin.fastpath.xdist import XDIST_PRIVATES

    config = pytester.parseconfig("--tx", "2*popen", "--dist", "load")
    scheduler = LoadScheduling(config)
    missing = [name for name in XDIST_PRIVATES if not hasattr(scheduler, name)]
    assert not missing, f"pytest-xdist's LoadScheduling no longer has {missing}: see plugin/fastpath/xdist.py"
    assert callable(scheduler._check_nodes_have_same_collection)
    assert isinstance(scheduler.node2collection, dict) and isinstance(scheduler.node2pending, dict)
