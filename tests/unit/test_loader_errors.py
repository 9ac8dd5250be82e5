"""Golden tests of bad inventories: every one is refused with ``file:line:col: message``.

Each ``tests/data/inventories/invalid/NAME.yaml`` has a sibling ``NAME.expected``
holding the exact first line of the error (what ``InventoryError.render()`` gives).
Files that the cases include live in ``invalid/parts/`` so they are not cases
themselves. To add a case, add both files; to review a changed message, diff the
``.expected`` file.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_autoglm import InventoryError, load_inventory
from tests.timing import Stopwatch

INVALID = Path(__file__).resolve().parent.parent / "data" / "inventories" / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))
LOCATED = re.compile(r"^[^:]+:\d+:\d+: ")

#: Variables the cases rely on being unset.
UNSET_VARIABLES = ("AUTOGLM_TEST_UNSET_VARIABLE", "AUTOGLM_TEST_UNSET_TENANT")

#: The bad inputs the spec lists ("Bad input", "Semantics") and the case files that cover them.
REQUIRED_CASES = {
    "unknown key, top level": "unknown_key_top",
    "unknown key, defaults": "unknown_key_defaults",
    "unknown key, target": "unknown_key_target",
    "unknown key, dns": "unknown_key_dns",
    "unknown key, tcp": "unknown_key_tcp",
    "unknown key, tls": "unknown_key_tls",
    "unknown key, http": "unknown_key_http",
    "unknown key, cors": "unknown_key_cors",
    "unknown key, no close match": "unknown_key_no_suggestion",
    "wrong type": "type_retries_word",
    "duplicate YAML key": "duplicate_key_top",
    "duplicate YAML key, nested": "duplicate_key_nested",
    "duplicate target name": "duplicate_target",
    "empty file": "empty",
    "comments only": "comments_only",
    "non-UTF-8": "not_utf8",
    "!!python/object": "tag_python_object",
    "!!python/name": "tag_python_name",
    "custom !tag": "tag_custom",
    "!!binary": "tag_binary",
    "self include": "include_self",
    "include cycle a->b->a": "include_cycle",
    "missing include": "include_missing",
    "missing environment variable": "missing_env",
    "unknown ${secrets.x}": "unknown_secret",
    "invalid http url": "url_http_scheme",
    "cors origin with a path": "cors_origin_path",
    "invalid proxy": "proxy_scheme",
    "port out of range": "port",
    "bad duration": "duration_unit",
    "bad resolver": "resolver_not_ip",
    "bad A value": "dns_a",
    "bad AAAA value": "dns_aaaa",
    "bad CNAME value": "dns_cname",
    "bad MX value": "dns_mx",
    "bad SRV value": "dns_srv",
    "bad CAA value": "dns_caa",
    "status 6xx": "status_6xx",
    "status 99": "status_99",
    "unknown tls min_version": "tls_min_version",
    "accept below min_version": "tls_accept_below_min",
    "tcp port in two lists": "tcp_port_in_two_lists",
    "bad tag name": "tag_name_space",
    "bad target name": "target_name_space",
    "version missing": "version_missing",
    "version 2": "version_2",
    "top-level list": "top_level_list",
    "YAML syntax error": "yaml_syntax",
    "recursive alias": "recursive_alias",
    "billion laughs": "billion_laughs",
}


@pytest.fixture
def in_invalid_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(INVALID)
    for name in UNSET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return INVALID


def _load_error(name: str) -> InventoryError:
    with pytest.raises(InventoryError) as info:
        load_inventory(name)
    return info.value


def _assert_well_formed(message: str) -> None:
    assert LOCATED.match(message), f"no file:line:col in {message!r}"
    assert "Traceback" not in message
    assert "\n" not in message.split("\n", 1)[0]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_message(case: Path, in_invalid_dir: Path) -> None:
    expected = case.with_suffix(".expected").read_text(encoding="utf-8").rstrip("\n")
    watch = Stopwatch().start()
    error = _load_error(case.name)
    elapsed = watch.now()

    first_line = str(error).split("\n", 1)[0]
    assert first_line == expected
    assert error.render() == first_line
    for line in str(error).splitlines():  # every listed error is located, none is a traceback
        if not line.startswith("... and "):
            _assert_well_formed(line)
    assert elapsed < 10, f"{case.name} took {elapsed:.1f}s to refuse"


def test_every_case_has_an_expected_file_and_back() -> None:
    yamls = {c.stem for c in CASES}
    expected = {e.stem for e in INVALID.glob("*.expected")}
    assert yamls == expected
    assert len(yamls) >= 100


@pytest.mark.parametrize("what", sorted(REQUIRED_CASES))
def test_spec_bad_inputs_are_covered(what: str) -> None:
    name = REQUIRED_CASES[what]
    assert (INVALID / f"{name}.yaml").is_file(), f"no case for {what}"
    assert (INVALID / f"{name}.expected").is_file()


# -- what the golden lines must say, beyond their exact text ------------------------------------------


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("unknown_key_top", "(did you mean 'targets'?)"),
        ("unknown_key_defaults", "(did you mean 'timeout'?)"),
        ("unknown_key_target", "(did you mean 'tls'?)"),
        ("unknown_key_dns", "(did you mean 'CNAME'?)"),
        ("unknown_key_tcp", "(did you mean 'open'?)"),
        ("unknown_key_tls", "(did you mean 'min_version'?)"),
        ("unknown_key_http", "(did you mean 'status'?)"),
        ("unknown_key_cors", "(did you mean 'allow'?)"),
        ("unknown_key_no_suggestion", "expected one of: "),
        ("duplicate_target", "(lines 3 and 8)"),
        ("include_duplicate_target", "(lines 4 and 6)"),
        ("missing_env", "AUTOGLM_TEST_UNSET_VARIABLE"),
        ("missing_env_in_target", "AUTOGLM_TEST_UNSET_TENANT"),
        ("unknown_secret", "'api_key'"),
        ("include_self", "include cycle: include_self.yaml -> include_self.yaml"),
        ("include_cycle", "include cycle: include_cycle.yaml -> parts/cycle_b.yaml -> include_cycle.yaml"),
        ("include_missing", "parts/nope.yaml"),
        ("not_utf8", "not UTF-8"),
        ("recursive_alias", "recursive alias"),
        ("port", "port 70000 is out of range 1..65535"),
    ],
)
def test_message_names_what_is_wrong(case: str, fragment: str, in_invalid_dir: Path) -> None:
    assert fragment in _load_error(f"{case}.yaml").render()


def test_error_in_an_included_file_names_that_file(in_invalid_dir: Path) -> None:
    error = _load_error("include_bad_file.yaml")
    assert error.file == "parts/broken.yaml"
    assert (error.line, error.col) == (3, 3)


def test_error_attributes_match_the_rendering(in_invalid_dir: Path) -> None:
    error = _load_error("port.yaml")
    assert (error.file, error.line, error.col, error.path) == ("port.yaml", 6, 19, "targets[0].tcp.open[1]")
    assert error.message == "port 70000 is out of range 1..65535"


# -- cases written from the test (bytes, sizes, environments) ----------------------------------------


def _write(directory: Path, name: str, data: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"\xff\xfeversion: 1\n", "bad.yaml:1:1: "),  # UTF-16 byte order mark
        ("version: 1\ntargets: []\n".encode("utf-16-le"), "bad.yaml:1:2: "),  # UTF-16 without BOM: NUL at col 2
        (b"version: 1\n# caf\xc3\n", "bad.yaml:2:6: "),  # truncated UTF-8 sequence
        (b"version: 1\ntargets: []\n\x80", "bad.yaml:3:1: "),
    ],
    ids=["utf16-bom", "utf16-le", "truncated-utf8", "stray-continuation-byte"],
)
def test_non_utf8_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, where: str) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "bad.yaml", data)
    message = _load_error("bad.yaml").render()
    assert message.startswith(where)
    assert "UTF-8" in message or "control character" in message


def test_non_utf8_included_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "prod.yaml", "version: 1\ninclude: [sub/base.yaml]\ntargets: []\n")
    (tmp_path / "sub").mkdir()
    _write(tmp_path, "sub/base.yaml", b"defaults:\n  severity: \xe9\n")
    assert (
        _load_error("prod.yaml").render()
        == "sub/base.yaml:2:13: not UTF-8: byte 0xe9 cannot be decoded; save the file as UTF-8"
    )


def test_utf8_bom_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "prod.yaml", b"\xef\xbb\xbfversion: 1\ntargets: []\n")
    assert load_inventory("prod.yaml").environment == "prod"


def test_missing_inventory_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = _load_error("nope.yaml").render()
    assert message.startswith("nope.yaml")
    assert "file not found" in message


def test_directory_as_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prod.yaml").mkdir()
    assert "is a directory" in _load_error("prod.yaml").render()


def test_cycle_through_three_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "a.yaml", "version: 1\ninclude: b.yaml\ntargets: []\n")
    _write(tmp_path, "b.yaml", "include: c.yaml\n")
    _write(tmp_path, "c.yaml", "include: [a.yaml]\n")
    message = _load_error("a.yaml").render()
    # reported at the entry of the file pytest was given that leads into the cycle
    assert message == "a.yaml:2:10: include cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml"


def test_diamond_include_is_not_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "prod.yaml", "version: 1\ninclude: [a.yaml, b.yaml]\ntargets: []\n")
    _write(tmp_path, "a.yaml", "include: common.yaml\n")
    _write(tmp_path, "b.yaml", "include: common.yaml\n")
    _write(tmp_path, "common.yaml", "defaults: {retries: 1}\n")
    assert load_inventory("prod.yaml").model.defaults.retries == 1


def test_missing_variable_is_named_with_its_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOGLM_TEST_NOT_SET", raising=False)
    _write(tmp_path, "prod.yaml", "version: 1\ndefaults:\n  proxy: http://${AUTOGLM_TEST_NOT_SET}:3128\ntargets: []\n")
    error = _load_error("prod.yaml")
    assert (error.file, error.line, error.col) == ("prod.yaml", 3, 10)
    assert "AUTOGLM_TEST_NOT_SET" in error.message


def test_secret_values_never_appear_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOGLM_TEST_TOKEN", "hunter2-very-secret")
    _write(
        tmp_path,
        "prod.yaml",
        "version: 1\nsecrets:\n  token: ${AUTOGLM_TEST_TOKEN}\ntargets:\n  - name: api\n    host: api.example.com\n"
        "    http:\n      - url: https://api.example.com:99999/?key=${secrets.token}\n"
        "        status: ${AUTOGLM_TEST_TOKEN}\n",
    )
    text = str(_load_error("prod.yaml"))
    assert "hunter2" not in text
    assert "***" in text


def test_many_errors_are_listed_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    targets = "".join(f"  - name: t{i}\n    host: t{i}.example.com\n    retries: x\n" for i in range(15))
    _write(tmp_path, "prod.yaml", f"version: 1\ntargets:\n{targets}")
    lines = str(_load_error("prod.yaml")).splitlines()
    assert lines[0] == "prod.yaml:5:14: targets[0].retries: expected an integer, got 'x'"
    assert lines[-1] == "... and 5 more"
    for line in lines[:-1]:
        _assert_well_formed(line)


def test_wide_alias_bomb_is_refused_quickly_and_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 levels of 30 aliases (30**30 values) and a merge-key bomb: refused in bounded time and memory."""
    monkeypatch.chdir(tmp_path)
    lines = ["version: 1", "defaults:", "  resolvers: &l0 [" + ", ".join(["system"] * 30) + "]", "targets:"]
    prev = "l0"
    for level in range(1, 31):
        lines.append(
            f"  - name: t{level}\n    host: h.example.com\n    tags: &l{level} [" + ", ".join([f"*{prev}"] * 30) + "]"
        )
        prev = f"l{level}"
    _write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    merge = ["version: 1", "a0: &a0 {x0: 1}"]
    for level in range(1, 40):
        merge.append(f"a{level}: &a{level} {{<<: [*a{level - 1}, *a{level - 1}], x{level}: 1}}")
    _write(tmp_path, "merge_bomb.yaml", "\n".join(merge) + "\ntargets: []\n")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name in ("bomb.yaml", "merge_bomb.yaml"):
        watch = Stopwatch().start()
        message = _load_error(name).render()
        assert watch.now() < 10
        _assert_well_formed(message)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mib < 500


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "flow.yaml", "version: 1\ntargets: " + "[" * 5000 + "]" * 5000 + "\n")
    _write(tmp_path, "block.yaml", "version: 1\n" + "".join("  " * i + f"k{i}:\n" for i in range(2000)))
    for name in ("flow.yaml", "block.yaml"):
        message = _load_error(name).render()
        _assert_well_formed(message)
        # our own depth limit, or libyaml's (PyYAML 6.0.4+ wheels stop at 1000 levels)
        assert "nested more than" in message or "maximum nesting depth" in message


def test_pytest_stops_before_running_anything(tmp_path: Path) -> None:
    """End to end: ``pytest --autoglm-target bad.yaml`` prints the located message, no traceback, no items."""
    (tmp_path / "bad.yaml").write_bytes((INVALID / "port.yaml").read_bytes())
    (tmp_path / "test_never.py").write_text("def test_never():\n    raise SystemExit('ran a test')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--autoglm-target", "bad.yaml", "test_never.py"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "bad.yaml:6:19: targets[0].tcp.open[1]: port 70000 is out of range 1..65535" in output
    assert "Traceback" not in output
    assert "ran a test" not in output
