"""Vantages in the inventory, the plan and the command line (issue 17): names, specs, ``from``, ids, markers.

Execution from a remote vantage is another module's: here a remote vantage is only loaded, planned
and collected (``--co``), never run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import execnet
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_autoglm import InventoryError, load_inventory
from pytest_autoglm.inventory.loader import display_name
from pytest_autoglm.inventory.plan import (
    Check,
    GroupSpec,
    RunSettings,
    TcpCheckSpec,
    build_plan,
    check_key,
    plan_vantages,
    vantage_marker,
)
from pytest_autoglm.inventory.vantages import (
    EXECMODELS,
    Vantage,
    check_spec,
    check_vantage_name,
    effective_vantages,
    mask_spec,
    parse_vantage_option,
)
from tests.plugin.test_neighbour import MODULES_CONFTEST, _heavy_modules

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")

#: The issue's example, with the vantages it names.
ISSUE_EXAMPLE = """\
version: 1
environment: prod
vantages:
  internet: "popen//python=python3"
  lan: "popen//python=ip netns exec lan /opt/venv/bin/python"
targets:
  - name: api
    host: 10.0.0.5
    tcp: {open: [8080]}
    from:
      internet: {tcp: {filtered: [8080]}}
      local: {host: 127.0.0.1}
"""


def write(folder: Path, text: str, name: str = "prod.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def plan(folder: Path, text: str, cli: tuple[tuple[str, str | None], ...] = ()) -> list[Check]:
    return build_plan(load_inventory(write(folder, text), vantages=cli), RunSettings(vantages=cli))


def first_line(folder: Path, text: str, cli: tuple[tuple[str, str | None], ...] = ()) -> str:
    with pytest.raises(InventoryError) as info:
        load_inventory(write(folder, text, "bad.yaml"), vantages=cli)
    return str(info.value).split("\n", 1)[0].removeprefix(display_name(folder) + os.sep)


# -- ids, order, from, dependencies ---------------------------------------------------------------------------


def test_the_issue_example_plans_per_target_and_vantage_with_from(tmp_path: Path) -> None:
    checks = plan(tmp_path, ISSUE_EXAMPLE)
    assert [(c.id, c.host, c.vantage) for c in checks] == [
        ("tcp[prod:api:8080/open@local]", "127.0.0.1", "local"),
        ("tcp[prod:api:8080/filtered@internet]", "10.0.0.5", "internet"),
        ("tcp[prod:api:8080/open@lan]", "10.0.0.5", "lan"),
    ]
    assert [c.index for c in checks] == [0, 1, 2]
    assert isinstance(checks[1].spec, TcpCheckSpec) and checks[1].spec.expect == "filtered"
    assert {check_key(c.id) for c in checks} == {"tcp[prod:api:8080/open]", "tcp[prod:api:8080/filtered]"}


LAYERED = """\
version: 1
environment: lab
vantages: {lan: "popen//python=python3"}
defaults: {timeout: 1s}
targets:
  - name: web
    host: web.example.test
    dns: {A: present, MX: present}
    tcp: {open: [443]}
    tls: {port: 443}
    http: [{url: "https://web.example.test/"}, {url: "https://web.example.test/"}]
    from:
      lan:
        host: 10.1.2.3
        dns: null
        http: []
        cors: {url: "https://10.1.2.3/", allow: ["https://app.example.test"], probe_misconfigurations: false}
  - name: db
    host: 10.9.9.9
    vantages: [lan]
    tcp: {open: 5432}
groups:
  - {name: site, any_of: [web, db]}
"""


def test_dependencies_stay_within_a_vantage_and_from_replaces_or_removes_sections(tmp_path: Path) -> None:
    checks = {c.id: c for c in plan(tmp_path, LAYERED)}
    assert list(checks) == [
        "dns[lab:web:A@local]",
        "dns[lab:web:MX@local]",
        "tcp[lab:web:443/open@local]",
        "tls[lab:web:443@local]",
        "http[lab:web:GET https://web.example.test/@local]",
        "http[lab:web:GET https://web.example.test/ #2@local]",
        "tcp[lab:web:443/open@lan]",
        "tls[lab:web:443@lan]",
        "cors[lab:web:https://app.example.test@lan]",
        "tcp[lab:db:5432/open@lan]",
        "group[lab:site@local]",
        "group[lab:site@lan]",
    ]
    assert checks["tls[lab:web:443@local]"].depends_on == ("dns[lab:web:A@local]", "tcp[lab:web:443/open@local]")
    # lan: the host is an address there (no name to resolve), its dns section is removed
    assert checks["tls[lab:web:443@lan]"].depends_on == ("tcp[lab:web:443/open@lan]",)
    assert checks["tls[lab:web:443@lan]"].host == "10.1.2.3"
    assert checks["cors[lab:web:https://app.example.test@lan]"].depends_on == (
        "tcp[lab:web:443/open@lan]",
        "tls[lab:web:443@lan]",
    )
    assert checks["http[lab:web:GET https://web.example.test/ #2@local]"].depends_on[-1] == "tls[lab:web:443@local]"
    local_group = checks["group[lab:site@local]"]
    lan_group = checks["group[lab:site@lan]"]
    assert local_group.vantage == "local" and lan_group.vantage == "lan"
    assert isinstance(local_group.spec, GroupSpec) and isinstance(lan_group.spec, GroupSpec)
    assert dict(local_group.spec.members)["db"] == ()  # db is checked from lan only
    assert [i for i, _ in dict(lan_group.spec.members)["db"]] == ["tcp[lab:db:5432/open@lan]"]
    assert all(dep.endswith("@lan]") for dep in checks["cors[lab:web:https://app.example.test@lan]"].depends_on)


def test_a_group_is_planned_only_for_vantages_a_member_is_checked_from(tmp_path: Path) -> None:
    text = LAYERED.replace("    from:\n", "    vantages: [local]\n    from:\n").replace(
        "      lan:\n", "      local:\n"
    )
    ids = [c.id for c in plan(tmp_path, text) if c.kind == "group"]
    assert ids == ["group[lab:site@local]", "group[lab:site@lan]"]
    only_local = text.replace("vantages: [lan]\n    tcp: {open: 5432}", "vantages: [local]\n    tcp: {open: 5432}")
    assert [c.id for c in plan(tmp_path, only_local) if c.kind == "group"] == ["group[lab:site@local]"]


def _without_vantage(check: Check) -> Check:
    spec = check.spec
    if isinstance(spec, GroupSpec):
        members = tuple((name, tuple((check_key(i), sev) for i, sev in ids)) for name, ids in spec.members)
        spec = replace(spec, members=members)
    return replace(
        check, id=check_key(check.id), depends_on=tuple(map(check_key, check.depends_on)), vantage=None, spec=spec
    )


#: The variables the example suites read.
EXAMPLE_ENVIRON = {"AUTOGLM_DEMO_API_KEY": "sk-demo", "INTERNAL_API_TOKEN": "t0ken"}


@pytest.mark.parametrize(
    "inventory",
    sorted(
        p for p in (Path(__file__).resolve().parents[2] / "example_suites").glob("*.yaml") if "vantages" not in p.name
    ),
    ids=lambda p: p.name,
)
def test_without_vantages_the_plan_is_the_local_vantage_minus_its_suffix(inventory: Path, tmp_path: Path) -> None:
    """The 1.0 plan (no vantages) is exactly the ``local`` vantage's plan with ``@local`` taken away."""
    for source in inventory.parent.glob("*.yaml"):  # a copy, with placeholders for the files it names
        (tmp_path / source.name).write_text(source.read_text())
    inventory = tmp_path / inventory.name
    for _ in range(10):
        try:
            loaded = load_inventory(inventory, EXAMPLE_ENVIRON)
            break
        except InventoryError as exc:
            missing = re.search(r"file not found: .* \(looked for (.+?)\)", str(exc))
            assert missing, exc
            (Path.cwd() / missing[1]).parent.mkdir(parents=True, exist_ok=True)
            (Path.cwd() / missing[1]).write_text("placeholder\n")
    plain = build_plan(loaded)
    assert plan_vantages(loaded) is None
    assert all(c.vantage is None and "@" not in c.id.rsplit(":", 1)[-1] for c in plain)
    cli = (("remote", "popen//python=python3"),)
    both = build_plan(load_inventory(inventory, EXAMPLE_ENVIRON, vantages=cli), RunSettings(vantages=cli))
    local = [_without_vantage(c) for c in both if c.vantage == "local"]
    assert [replace(c, index=0) for c in local] == [replace(c, index=0) for c in plain]
    assert len(both) == 2 * len(plain)
    assert [c.index for c in both] == list(range(len(both)))


def test_from_local_applies_without_vantages_and_ids_keep_their_form(tmp_path: Path) -> None:
    text = "version: 1\nenvironment: e\ntargets:\n  - {name: a, host: 10.0.0.1, tcp: {open: 1}, from: {local: {host: 127.0.0.1}}}\n"
    (check,) = plan(tmp_path, text)
    assert (check.id, check.host, check.vantage) == ("tcp[e:a:1/open]", "127.0.0.1", None)


def test_included_vantage_switched_off_and_command_line_order(tmp_path: Path) -> None:
    write(tmp_path, 'version: 1\nvantages: {lan: "popen", dmz: "popen//python=python3"}\n', "base.yaml")
    text = "version: 1\nenvironment: e\ninclude: base.yaml\nvantages: {lan: off}\ntargets:\n  - {name: a, host: 10.0.0.1, tcp: {open: 1}}\n"
    loaded = load_inventory(write(tmp_path, text))
    assert loaded.model.vantages == {"lan": None, "dmz": "popen//python=python3"}
    cli = (("edge", "socket=10.0.0.9:8888"), ("dmz", "popen//python=/opt/py"), ("local", None))
    assert plan_vantages(loaded, RunSettings(vantages=cli)) == (
        Vantage("dmz", "popen//python=/opt/py"),
        Vantage("edge", "socket=10.0.0.9:8888"),
    )
    # A name the inventory switched off comes back from the command line, after the inventory's own.
    assert [v.name for v in plan_vantages(loaded, RunSettings(vantages=(("lan", "popen"),))) or ()] == [
        "local",
        "lan",
        "dmz",
    ]


# -- bad input: one line, file:line:col ---------------------------------------------------------------------------

BAD = [
    (
        "intern et: popen",
        "bad.yaml:4:3: vantages: 'intern et' is not a vantage name: a letter, then up to 62 letters, digits, '_' or '-' (e.g. 'office')",
    ),
    (
        "local: popen",
        "bad.yaml:4:10: vantages.local: 'local' is the running pytest process and takes no spec; only 'local: off' is allowed (name another vantage for a gateway)",
    ),
    (
        "internet: popen//pyhton=x",
        "bad.yaml:4:13: vantages.internet: 'popen//pyhton=x': unknown key 'pyhton' (did you mean 'python'?)",
    ),
    (
        "internet: ssh=a//popen",
        "bad.yaml:4:13: vantages.internet: 'ssh=a//popen' has 2 gateway types (ssh, popen); give exactly one of popen, ssh=HOST, socket=HOST:PORT, vagrant_ssh=HOST",
    ),
    (
        "internet: python=python3",
        "bad.yaml:4:13: vantages.internet: 'python=python3' has no gateway type; give exactly one of popen, ssh=HOST, socket=HOST:PORT, vagrant_ssh=HOST",
    ),
    (
        "internet: 'socket=host:99999'",
        "bad.yaml:4:13: vantages.internet: 'socket=host:99999': socket= takes HOST:PORT with a port 1..65535, e.g. 'socket=10.0.0.7:8888'",
    ),
    (
        "internet: 'popen//'",
        "bad.yaml:4:13: vantages.internet: 'popen//' has an empty '//' part; write KEY or KEY=VALUE between the '//'",
    ),
    (
        "internet: null",
        "bad.yaml:4:13: vantages.internet: expected an execnet gateway spec such as 'popen//python=python3', 'ssh=user@host//python=python3' or 'socket=host:8888', or 'off'; got None",
    ),
    (
        "internet: popen//env:1X=2",
        "bad.yaml:4:13: vantages.internet: 'popen//env:1X=2': 'env:1X' must name an environment variable, e.g. 'env:LANG=C'",
    ),
    (
        "[local, internet]",
        "bad.yaml:9:23: targets[0].vantages[1]: unknown vantage 'internt' (did you mean 'internet'?)",
        "[local, internt]",
    ),
    (
        "internet: {tcp",
        "bad.yaml:12:7: targets[0].from: unknown vantage 'intenet' (did you mean 'internet'?)",
        "intenet: {tcp",
    ),
    (
        "[local, internet]",
        "bad.yaml:12:7: targets[0].from: vantage 'internet' is not in this target's vantages: list, so nothing is checked from it; its vantages: local, lan",
        "[local, lan]",
    ),
    (
        "filtered: [8080]",
        "bad.yaml:12:35: targets[0].from.internet.tcp.filtered[0]: port 80800 is out of range 1..65535",
        "filtered: [80800]",
    ),
    (
        "{tcp: {filtered: [8080]}}",
        "bad.yaml:12:18: targets[0].from.internet: unknown key 'tsl' (did you mean 'tls'?)",
        "{tsl: {port: 443}}",
    ),
    (
        "{host: 127.0.0.1}",
        "bad.yaml:13:14: targets[0].from.local: host cannot be removed for a vantage; give another host or leave the key out",
        "{host: null}",
    ),
    (
        "{host: 127.0.0.1}",
        "bad.yaml:13:14: targets[0].from.local: two tls groups for port 1; merge them into one",
        "{tls: [{port: 1}, {port: 1}]}",
    ),
    (
        "{host: 127.0.0.1}",
        "bad.yaml:13:40: targets[0].from.local.tls.ciphers: unknown key 'forbd' (did you mean 'forbid'?)",
        "{tls: {port: 1, ciphers: {forbd: [CBC]}}}",
    ),
    (
        "vantages: [local, internet]",
        "bad.yaml:9:15: targets[0].vantages: needs at least one entry",
        "vantages: []",
    ),
    (
        "vantages: [local, internet]",
        "bad.yaml:9:5: targets[0]: unknown key 'vantage' (did you mean 'vantages'?)",
        "vantage: [local, internet]",
    ),
]
BASE = """\
version: 1
environment: prod
vantages:
  internet: "popen//python=python3"
  lan: "popen//python=ip netns exec lan /opt/venv/bin/python"
targets:
  - name: api
    host: 10.0.0.5
    vantages: [local, internet]
    tcp: {open: [8080]}
    from:
      internet: {tcp: {filtered: [8080]}}
      local: {host: 127.0.0.1}
"""


@pytest.mark.parametrize(("old", "expected", "new"), [(*case, None) if len(case) == 2 else case for case in BAD])
def test_bad_vantage_input_is_one_located_line(tmp_path: Path, old: str, expected: str, new: str | None) -> None:
    if new is None:  # the first cases replace the internet vantage's line
        old, new = 'internet: "popen//python=python3"', old
    assert old in BASE
    assert first_line(tmp_path, BASE.replace(old, new, 1)) == expected


def test_the_merged_target_validates_as_a_target(tmp_path: Path) -> None:
    """A rule across sections (connect_to needs an IP host) breaks only once the host of a vantage is a name."""
    text = BASE.replace("    tcp: {open: [8080]}\n", "    http: [{url: 'http://10.0.0.5/', connect_to: host}]\n")
    assert load_inventory(write(tmp_path, text.replace("      internet: {tcp: {filtered: [8080]}}\n", "")))
    bad = text.replace("{tcp: {filtered: [8080]}}", "{host: api.example.test}")
    assert first_line(tmp_path, bad) == (
        "bad.yaml:12:17: targets[0].from.internet: connect_to: host needs the target's host to be an IP address,"
        " not 'api.example.test' (a name is resolved anyway: put it in the url)"
    )


def test_local_off_and_nothing_else_is_an_inventory_error_unless_the_command_line_adds(tmp_path: Path) -> None:
    text = "version: 1\nvantages:\n  local: off\ntargets: []\n"
    assert first_line(tmp_path, text) == (
        "bad.yaml:3:3: vantages: every vantage is off ('local: off' and no other vantage): nothing would be "
        "checked; declare a vantage (name: execnet spec) or remove 'local: off'"
    )
    assert load_inventory(write(tmp_path, text), vantages=(("lan", "popen"),)).model.vantages == {"local": None}


def test_names_only_the_command_line_gives_are_valid_in_targets(tmp_path: Path) -> None:
    text = "version: 1\nenvironment: e\ntargets:\n  - {name: a, host: 10.0.0.1, vantages: [edge], tcp: {open: 1}, from: {edge: {host: 10.0.0.2}}}\n"
    assert (
        first_line(tmp_path, text) == "bad.yaml:4:42: targets[0].vantages[0]: unknown vantage 'edge'; vantages: local"
    )
    cli = (("edge", "ssh=probe@edge//python=python3"),)
    (check,) = plan(tmp_path, text, cli)
    assert (check.id, check.host) == ("tcp[e:a:1/open@edge]", "10.0.0.2")
    # switched off on the command line: still a known name, nothing is checked from it
    assert plan(tmp_path, text, (("edge", None),)) == []


# -- names, specs, options: large input spaces ----------------------------------------------------------------


@PROPERTY
@given(st.text(max_size=70))
def test_a_vantage_name_is_accepted_exactly_when_it_matches_the_pattern(name: str) -> None:
    if NAME.match(name) and not name.endswith("\n"):
        assert check_vantage_name(name) == name
    else:
        with pytest.raises(ValueError, match="is not a vantage name"):
            check_vantage_name(name)


_value = st.text(st.characters(codec="utf-8", exclude_characters="/\n\r\x00"), min_size=1, max_size=20).filter(
    lambda v: v.strip() and not v.endswith("/")
)
_name = st.from_regex(NAME, fullmatch=True)
_gateway = st.one_of(
    st.just("popen"),
    st.builds("ssh={}".format, _value.filter(lambda v: "=" not in v)),
    st.builds("socket={}:{}".format, st.from_regex(r"[a-z0-9.]{1,20}", fullmatch=True), st.integers(1, 65535)),
    st.builds("vagrant_ssh={}".format, _value),
)
_option = st.one_of(
    st.builds("python={}".format, _value),
    st.builds("chdir={}".format, _value),
    st.builds("id={}".format, _value),
    st.builds("nice={}".format, st.integers(-20, 19)),
    st.just("dont_write_bytecode"),
    st.builds("execmodel={}".format, st.sampled_from(EXECMODELS)),
    st.builds("env:{}={}".format, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), _value),
)


@PROPERTY
@given(_gateway, st.lists(_option, max_size=5, unique_by=lambda o: o.split("=", 1)[0]), st.randoms())
def test_every_well_formed_spec_is_accepted_and_read_alike_by_execnet(gateway: str, options: list[str], rnd) -> None:
    parts = [gateway, *options]
    rnd.shuffle(parts)
    spec = "//".join(parts)
    assert check_spec(spec) == spec.strip()
    parsed = execnet.XSpec(spec)
    kind, _, value = gateway.partition("=")
    assert getattr(parsed, kind) == (value or True)
    masked = mask_spec(spec)
    for option in options:
        if option.startswith("env:"):
            assert option.split("=", 1)[0] + "=***" in masked.split("//")
    assert (f"{kind}={value}" if value else kind) in masked.split("//")


@PROPERTY
@given(st.text(max_size=60))
def test_any_text_is_a_spec_or_one_value_error(text: str) -> None:
    try:
        spec = check_spec(text)
    except ValueError as exc:
        assert "\n" not in str(exc).strip("'") or "\n" in text
        return
    parsed = execnet.XSpec(spec)
    assert sum(bool(getattr(parsed, k)) for k in ("popen", "ssh", "socket", "vagrant_ssh")) == 1


@PROPERTY
@given(_name, _gateway)
def test_the_option_value_parses_name_and_spec(name: str, gateway: str) -> None:
    if name == "local":
        with pytest.raises(ValueError, match="takes no spec"):
            parse_vantage_option(f"{name}={gateway}")
    else:
        assert parse_vantage_option(f"{name}={gateway}") == (name, gateway.strip())
    assert parse_vantage_option(f"{name}=off") == (name, None)


@PROPERTY
@given(
    st.dictionaries(_name, st.one_of(st.none(), st.just("popen")), max_size=5),
    st.dictionaries(_name, st.one_of(st.none(), st.just("socket=h:1")), max_size=5),
)
def test_effective_vantages_order_and_overrides(declared: dict[str, str | None], cli: dict[str, str | None]) -> None:
    declared = {n: (None if n == "local" else s) for n, s in declared.items()}
    cli = {n: (None if n == "local" else s) for n, s in cli.items()}
    result = effective_vantages(declared, tuple(cli.items()))
    if not declared and not cli:
        assert result is None
        return
    assert result is not None
    names = [v.name for v in result]
    assert ("local" in names) == ("local" not in declared and "local" not in cli)
    assert names[: names.index("local") + 1] == ["local"] if "local" in names else True
    expected_remote = [n for n in declared if n != "local"] + [n for n in cli if n not in declared and n != "local"]
    expected_remote = [n for n in expected_remote if (cli[n] if n in cli else declared[n]) is not None]
    assert [v.name for v in result if not v.is_local] == expected_remote
    for vantage in result:
        if not vantage.is_local:
            assert vantage.spec == (cli[vantage.name] if vantage.name in cli else declared[vantage.name])


def test_bad_option_values_say_what_is_wrong() -> None:
    for text, message in [
        ("lan", "expected NAME=SPEC or NAME=off"),
        ("1lan=popen", "is not a vantage name"),
        ("local=popen", "takes no spec"),
        ("lan=popen=1", "'popen' takes no value"),
        ("lan=popen//nice=x", "nice= takes a whole number"),
        ("lan=popen//execmodel=asyncio", "execmodel= takes one of"),
        ("lan=popen//python=a//python=b", "gives 'python' twice"),
        ("lan=socket=h:1//ssh_config=x", "ssh_config goes with an ssh= gateway only"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_vantage_option(text)


def test_mask_spec_hides_env_values_only() -> None:
    assert mask_spec("ssh=u@h//env:TOKEN=s3cret//python=python3") == "ssh=u@h//env:TOKEN=***//python=python3"


# -- the plugin: options, --co, markers, header, usage errors ----------------------------------------------------


def _inventory(pytester: pytest.Pytester, text: str = ISSUE_EXAMPLE, name: str = "prod.yaml") -> None:
    (pytester.path / name).write_text(text)


def test_collect_only_lists_ids_with_their_vantage_and_the_header_names_them(pytester: pytest.Pytester) -> None:
    _inventory(pytester, ISSUE_EXAMPLE.replace('"popen//python=python3"', '"popen//python=python3//env:TOKEN=s3cret"'))
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "prod.yaml::tcp[[]prod:api:8080/open@local[]]",
            "prod.yaml::tcp[[]prod:api:8080/filtered@internet[]]",
            "prod.yaml::tcp[[]prod:api:8080/open@lan[]]",
        ]
    )
    header = pytester.runpytest("--autoglm-target", "prod.yaml", "--co")
    header.stdout.fnmatch_lines(
        [
            "autoglm: vantages local (this process), internet (popen//python=python3//env:TOKEN=***), "
            "lan (popen//python=ip netns exec lan /opt/venv/bin/python)"
        ]
    )
    assert "s3cret" not in header.stdout.str()


def test_vantage_markers_select_under_strict_markers(pytester: pytest.Pytester) -> None:
    _inventory(pytester)
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co", "-q", "--strict-markers", "-m", "vantage_lan")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["prod.yaml::tcp[[]prod:api:8080/open@lan[]]", "1/3 tests collected (2 deselected)*"])
    result = pytester.runpytest(
        "--autoglm-target", "prod.yaml", "--co", "-q", "--strict-markers", "-m", "tcp and not vantage_local"
    )
    result.stdout.fnmatch_lines(["*2/3 tests collected (1 deselected)*"])
    markers = pytester.runpytest("--autoglm-target", "prod.yaml", "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.vantage_internet: checks made from the vantage 'internet'"])
    assert vantage_marker("internet") == "vantage_internet"


def test_the_option_overrides_adds_and_removes_vantages(pytester: pytest.Pytester) -> None:
    _inventory(pytester)
    result = pytester.runpytest(
        "--autoglm-target",
        "prod.yaml",
        "--co",
        "-q",
        "--autoglm-vantage",
        "local=off",
        "--autoglm-vantage",
        "lan=off",
        "--autoglm-vantage",
        "edge=ssh=probe@edge//python=python3",
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["prod.yaml::tcp[[]prod:api:8080/filtered@internet[]]", "prod.yaml::tcp[[]prod:api:8080/open@edge[]]", ""]
    )
    assert "@local" not in result.stdout.str() and "@lan" not in result.stdout.str()


def test_ini_lines_give_vantages_and_the_command_line_replaces_them(pytester: pytest.Pytester) -> None:
    _inventory(pytester, "version: 1\nenvironment: lab\ntargets:\n  - {name: a, host: 127.0.0.1, tcp: {open: 1}}\n")
    pytester.makeini("[pytest]\nautoglm_vantage =\n    lan=popen//python=python3\n    local=off\n")
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co", "-q")
    result.stdout.fnmatch_lines(["prod.yaml::tcp[[]lab:a:1/open@lan[]]", ""])
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co", "-q", "--autoglm-vantage", "dmz=popen")
    result.stdout.fnmatch_lines(["prod.yaml::tcp[[]lab:a:1/open@local[]]", "prod.yaml::tcp[[]lab:a:1/open@dmz[]]"])


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--autoglm-vantage", "lan=popn"],
            "ERROR: --autoglm-vantage: 'popn': unknown key 'popn' (did you mean 'popen'?)",
        ),
        (
            ["--autoglm-vantage", "lan=popen", "--autoglm-vantage", "lan=off"],
            "ERROR: --autoglm-vantage: vantage 'lan' is given twice; give each name once",
        ),
        (
            ["--autoglm-vantage", "local=off", "--autoglm-vantage", "internet=off", "--autoglm-vantage", "lan=off"],
            "ERROR: --autoglm-vantage: no vantage is left to check prod.yaml from (local=off and every other one off);"
            " give one, e.g. --autoglm-vantage lan='popen//python=python3'",
        ),
        (
            ["--autoglm-target", "other.yaml"],
            "ERROR: --autoglm-target: prod.yaml and other.yaml give vantage 'lan' different specs "
            "('popen//python=ip netns exec lan /opt/venv/bin/python' and 'popen//env:K=***'); one name is one place:"
            " rename one, or set it for the run with --autoglm-vantage lan=SPEC",
        ),
    ],
)
def test_bad_command_lines_are_usage_errors_of_one_line(pytester: pytest.Pytester, args: list[str], line: str) -> None:
    _inventory(pytester)
    _inventory(pytester, "version: 1\nvantages: {lan: 'popen//env:K=v'}\ntargets: []\n", "other.yaml")
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [ln for ln in result.stderr.lines if ln.strip()]
    assert errors == [line]


def test_the_same_spec_twice_or_a_command_line_override_is_no_conflict(pytester: pytest.Pytester) -> None:
    _inventory(pytester)
    _inventory(pytester, "version: 1\nvantages: {lan: 'popen//env:K=v'}\ntargets: []\n", "other.yaml")
    result = pytester.runpytest(
        "--autoglm-target", "prod.yaml", "--autoglm-target", "other.yaml", "--co", "--autoglm-vantage", "lan=popen"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["autoglm: vantages local (this process), internet (popen//python=python3), lan (popen)"]
    )


def test_a_bad_vantage_in_the_inventory_is_a_collection_error_with_position(pytester: pytest.Pytester) -> None:
    _inventory(pytester, ISSUE_EXAMPLE.replace("internet: {tcp", "intenet: {tcp"))
    result = pytester.runpytest("--autoglm-target", "prod.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["prod.yaml:11:7: targets[0].from: unknown vantage 'intenet' (did you mean 'internet'?)"]
    )
    assert "Traceback" not in result.stdout.str()


def test_without_vantages_no_vantage_line_and_ids_are_unchanged(pytester: pytest.Pytester) -> None:
    _inventory(pytester, "version: 1\nenvironment: lab\ntargets:\n  - {name: a, host: 127.0.0.1, tcp: {open: 1}}\n")
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co")
    result.stdout.fnmatch_lines(["*<CheckItem tcp[[]lab:a:1/open[]]>"])
    assert "autoglm: vantages" not in result.stdout.str() and "@" not in result.stdout.str()


def test_the_run_state_holds_the_remote_vantages_in_order(pytester: pytest.Pytester) -> None:
    _inventory(pytester)
    pytester.makeconftest(
        """
import json
from pytest_autoglm.plugin.state import get_state

def pytest_collection_finish(session):
    state = get_state(session.config)
    with open("specs.json", "w") as f:
        json.dump(list(state.vantage_specs.items()), f)
"""
    )
    pytester.runpytest("--autoglm-target", "prod.yaml", "--co", "--autoglm-vantage", "edge=socket=10.0.0.9:8888")
    assert json.loads((pytester.path / "specs.json").read_text()) == [
        ["internet", "popen//python=python3"],
        ["lan", "popen//python=ip netns exec lan /opt/venv/bin/python"],
        ["edge", "socket=10.0.0.9:8888"],
    ]


def test_the_option_without_an_inventory_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(MODULES_CONFTEST)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:anyio", "-p", "no:hypothesispytest", "--autoglm-vantage", "lan=popen"
    )
    result.assert_outcomes(passed=1)
    assert _heavy_modules(pytester) == set()


def test_the_json_schema_accepts_the_issue_example() -> None:
    import jsonschema
    import yaml

    from pytest_autoglm.inventory.schema import SCHEMA_PATH

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(ISSUE_EXAMPLE), schema)
    validator = jsonschema.Draft202012Validator(schema)
    bad = yaml.safe_load(ISSUE_EXAMPLE.replace("  internet:", "  1internet:"))
    assert list(validator.iter_errors(bad))


def test_a_secret_in_a_spec_is_masked_in_the_header(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGLM_TEST_GW_USER", "probe-user-x")
    _inventory(
        pytester,
        "version: 1\nsecrets: {user: '${AUTOGLM_TEST_GW_USER}'}\n"
        "vantages: {office: 'ssh=${secrets.user}@gw//python=python3'}\ntargets: []\n",
    )
    result = pytester.runpytest("--autoglm-target", "prod.yaml", "--co")
    result.stdout.fnmatch_lines(["autoglm: vantages local (this process), office (ssh=***@gw//python=python3)"])
    assert "probe-user-x" not in result.stdout.str()
