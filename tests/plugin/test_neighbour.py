"""A good neighbour (issue 14): the plugin claims only ``autoglm_*`` names, costs nothing in a
session that names no inventory, and turns the pytest-level mistakes into one helpful line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_autoglm.plugin.markexpr import marker_names
from pytest_autoglm.plugin.positional import looks_like_inventory
from tests.fakes.tcp_servers import free_port, tcp_listener

#: A test suite of someone else's that uses the names the plugin used to claim.
FOREIGN_CONFTEST = """
import pytest

@pytest.fixture(params=["db", "cache"])
def target(request):
    return request.param

@pytest.fixture
def probe():
    return lambda name: name.upper()

@pytest.fixture
def host():
    return "localhost"
"""
FOREIGN_TESTS = """
import pytest

@pytest.mark.parametrize("target", ["a", "b", "c"])
def test_own_parametrization(target):
    assert target in "abc"

def test_own_fixtures(target, probe):
    assert probe(target) == target.upper()

def test_host(host):
    assert host == "localhost"

@pytest.mark.parametrize("host", ["x"])
def test_host_parametrized(host):
    assert host == "x"

@pytest.mark.tcp
def test_marked_tcp_with_own_target(target):
    assert target in ("db", "cache")

def test_fails_on_purpose(target):
    assert target == "db"
"""


def _outcomes(result: pytest.RunResult) -> tuple[dict[str, int], list[str]]:
    """Counts (without warnings: pytest warns about the unregistered ``tcp`` mark without the plugin) and verdicts."""
    counts = {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}
    verdicts = sorted(
        " ".join(line.split()[:2]) for line in result.outlines if line.startswith("test_") and "::" in line
    )
    return counts, verdicts


def test_a_foreign_suite_runs_the_same_with_and_without_the_plugin(pytester):
    pytester.makeconftest(FOREIGN_CONFTEST)
    pytester.makepyfile(test_foreign=FOREIGN_TESTS)
    without = pytester.runpytest("-p", "no:autoglm", "-v")
    with_plugin = pytester.runpytest("-v")
    assert without.ret == with_plugin.ret == pytest.ExitCode.TESTS_FAILED
    assert _outcomes(with_plugin) == _outcomes(without)
    assert _outcomes(without)[0] == {"passed": 10, "failed": 1}


def test_a_foreign_suite_is_unchanged_beside_an_inventory_and_autoglm_tests(pytester):
    """With an inventory named, the suite's own names still belong to it; autoglm_* tests get the targets."""
    with tcp_listener() as listener:
        pytester.makeconftest(FOREIGN_CONFTEST)
        pytester.makepyfile(
            test_foreign=FOREIGN_TESTS,
            test_mine=f"""
            from pytest_autoglm import tcp

            @tcp
            def test_port(autoglm_target, autoglm_probe, target):
                assert target in ("db", "cache")  # the suite's own fixture, beside the plugin's
                result = autoglm_probe.tcp(autoglm_target, {listener.port})
                assert result.passed, result.message
            """,
        )
        (pytester.path / "lab.yaml").write_text(
            "version: 1\nenvironment: lab\ndefaults: {timeout: 1s, retries: 0}\ntargets:\n"
            f"  - name: web\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}]}}\n"
            "  - name: bare\n    host: 127.0.0.1\n"
        )
        without = pytester.runpytest("-p", "no:autoglm", "-v", "test_foreign.py")
        result = pytester.runpytest("--autoglm-target", "lab.yaml", "test_foreign.py", "test_mine.py", "-v")
    foreign = [line for line in _outcomes(result)[1] if line.startswith("test_foreign.py")]
    assert foreign == _outcomes(without)[1]
    result.stdout.fnmatch_lines(
        [
            "*test_mine.py::test_port[[]db-lab:web[]] PASSED*",
            "*test_mine.py::test_port[[]cache-lab:web[]] PASSED*",
            f"*lab.yaml::tcp[[]lab:web:{listener.port}/open[]] PASSED*",
        ]
    )
    assert "lab:bare" not in result.stdout.str()  # @tcp: only targets with a tcp section
    result.assert_outcomes(passed=10 + 2 + 1, failed=1)


def test_autoglm_target_without_an_inventory_is_skipped_and_the_engine_loads_on_use(pytester):
    pytester.makepyfile(
        """
        def test_over_targets(autoglm_target):
            raise AssertionError("never runs without an inventory")

        def test_engine(autoglm_engine):
            assert autoglm_engine is not None
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*got empty parameter set*autoglm_target*"])


MODULES_CONFTEST = """
import json, sys

def pytest_sessionfinish(session):
    with open("modules.json", "w") as f:
        json.dump(sorted(sys.modules), f)
"""
HEAVY = ("httpx", "pydantic", "dns", "OpenSSL", "cryptography", "yaml", "anyio", "pytest_autoglm.engine")


def _heavy_modules(pytester: pytest.Pytester) -> set[str]:
    names = json.loads((pytester.path / "modules.json").read_text())
    return {name for name in names for heavy in HEAVY if name == heavy or name.startswith(heavy + ".")}


def test_a_session_that_names_no_inventory_imports_nothing_heavy(pytester):
    pytester.makeconftest(MODULES_CONFTEST)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:anyio", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)
    assert _heavy_modules(pytester) == set()
    # Negative control: naming an inventory loads them, so the check above can see them.
    (pytester.path / "lab.yaml").write_text("version: 1\ntargets: []\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--autoglm-target", "lab.yaml")
    assert {"pydantic", "yaml", "pytest_autoglm.engine"} <= {
        name.split(".runner")[0] for name in _heavy_modules(pytester)
    }


# -- an inventory as a positional path ------------------------------------------------------


def test_an_inventory_given_as_a_positional_path_runs(pytester):
    refused = free_port()
    with tcp_listener() as listener:
        (pytester.path / "prod.yaml").write_text(
            "version: 1\nenvironment: prod\ndefaults: {timeout: 1s, retries: 0}\ntargets:\n"
            f"  - name: web\n    host: 127.0.0.1\n    tcp: {{open: [{listener.port}], refused: [{refused}]}}\n"
        )
        result = pytester.runpytest("prod.yaml", "-v")
        result.assert_outcomes(passed=2)
        assert (pytester.path / "reports" / "prod.json").exists()
        one = pytester.runpytest(f"prod.yaml::tcp[prod:web:{listener.port}/open]", "-v")
    one.assert_outcomes(passed=1)


def test_another_yaml_path_gets_a_hint_instead_of_a_bare_not_found(pytester):
    (pytester.path / "compose.yaml").write_text("services:\n  web: {image: nginx}\n")
    result = pytester.runpytest("compose.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: compose.yaml is not a pytest-autoglm inventory*use --autoglm-target FILE"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_yaml_files_that_another_plugin_collects_are_left_to_it(pytester):
    pytester.makeconftest(
        """
        import pytest

        class YamlItem(pytest.Item):
            def runtest(self):
                pass

        class YamlFile(pytest.File):
            def collect(self):
                yield YamlItem.from_parent(self, name="spec")

        def pytest_collect_file(parent, file_path):
            if file_path.suffix == ".yaml" and file_path.name.startswith("test"):
                return YamlFile.from_parent(parent, path=file_path)
        """
    )
    (pytester.path / "test_api.yaml").write_text("version: 2\nsteps: []\n")
    result = pytester.runpytest("test_api.yaml", "-v")
    result.assert_outcomes(passed=1)
    assert "autoglm:" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ntargets: []\n", True),
        ("# an inventory\nversion: 1\nenvironment: prod\n\ntargets:\n  - name: a\n", True),
        ("version: 1\nsteps: []\n", False),
        ("targets:\n  - version: 1\n", False),  # an indented key is not a top-level one
        ("services: {}\n", False),
    ],
)
def test_looks_like_inventory(tmp_path: Path, text: str, expected: bool):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    assert looks_like_inventory(path) is expected


# -- -m naming a marker nothing knows --------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("tcp", {"tcp"}),
        ("tcp and not (slow or flaky)", {"tcp", "slow", "flaky"}),
        ("device(serial='123', port=8080)", {"device"}),
        ("", set()),
        ("tcp and $", None),
    ],
)
def test_marker_names(expression: str, names: set[str] | None):
    assert marker_names(expression) == names


def test_an_unknown_marker_in_m_prints_one_line_naming_the_known_ones(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_autoglm import tcp

        @tcp
        def test_port():
            pass

        @pytest.mark.slow  # not registered, but on an item: known
        def test_slow():
            pass
        """
    )
    no_warning_is_an_error = ("-W", "error", "-W", "ignore::pytest.PytestUnknownMarkWarning")  # slow is unregistered
    result = pytester.runpytest("-m", "tpc", *no_warning_is_an_error)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        ["autoglm: -m 'tpc' names unknown marker 'tpc' (did you mean 'tcp'?)*known markers:*slow*tcp*"]
    )
    for expression in ("slow", "tcp or dns", "not tcp"):
        quiet = pytester.runpytest("-m", expression, *no_warning_is_an_error)
        assert "names unknown marker" not in quiet.stdout.str(), expression


# -- an inventory with no targets, and other bad input -------------------------------------------


def test_an_inventory_without_targets_says_so(pytester):
    (pytester.path / "none.yaml").write_text("version: 1\ntargets: []\n")
    result = pytester.runpytest("--autoglm-target", "none.yaml")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["autoglm: none.yaml has no targets: add one under 'targets:'*"])
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    beside = pytester.runpytest("--autoglm-target", "none.yaml", "test_other.py")
    assert beside.ret == pytest.ExitCode.OK
    beside.stdout.fnmatch_lines(["autoglm: none.yaml has no targets*"])


def test_an_inventory_whose_targets_plan_nothing_says_so(pytester):
    (pytester.path / "bare.yaml").write_text("version: 1\ntargets:\n  - name: a\n    host: 127.0.0.1\n")
    result = pytester.runpytest("bare.yaml")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["autoglm: bare.yaml plans no checks: give its targets a dns, tcp*"])


def test_a_report_dir_that_is_a_file_is_a_usage_error(pytester):
    (pytester.path / "none.yaml").write_text("version: 1\ntargets: []\n")
    (pytester.path / "out").write_text("")
    result = pytester.runpytest("--autoglm-target", "none.yaml", "--autoglm-report-dir", "out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --autoglm-report-dir: *out is a file; name a folder for the reports"])
    below = pytester.runpytest("--autoglm-target", "none.yaml", "--autoglm-report-dir", "out/sub")
    assert below.ret == pytest.ExitCode.USAGE_ERROR
    below.stderr.fnmatch_lines(
        ["ERROR: --autoglm-report-dir: *out is a file, so *sub cannot be made; name another folder"]
    )


def test_a_conftest_hook_still_wraps_the_plugins_own(pytester):
    """The inventory modules are registered before the initial conftest files, as when the entry
    point registered them all: a conftest's makereport wrapper still sees the report the plugin made
    (a warning-severity failure turned into a pass, with its facts)."""
    pytester.makeconftest(
        """
        import json
        import pytest

        seen = []

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            report = yield
            if report.when == "call":
                seen.append([report.outcome, report.__dict__.get("autoglm", {}).get("warned", False)])
            return report

        def pytest_sessionfinish(session):
            with open("seen.json", "w") as f:
                json.dump(seen, f)
        """
    )
    (pytester.path / "w.yaml").write_text(
        "version: 1\ndefaults: {severity: warning, retries: 0, timeout: 1s}\ntargets:\n"
        f"  - name: a\n    host: 127.0.0.1\n    tcp: {{open: [{free_port()}]}}\n"
    )
    result = pytester.runpytest("w.yaml")
    assert result.ret == pytest.ExitCode.OK
    assert json.loads((pytester.path / "seen.json").read_text()) == [["passed", True]]
