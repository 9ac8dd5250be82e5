"""Property tests: whatever is in the file, loading ends in a model or an InventoryError.

"A bad inventory never produces a Python traceback" (spec, Bad input): for any
text, any bytes, random YAML data made of plausible keys and junk, and
mutations of a valid inventory, ``load_inventory`` either succeeds (and the plan
can be built from the result) or raises :class:`InventoryError` whose first line
carries ``file:line:col``. Every test is bounded (~200 examples, no deadline).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_autoglm import InventoryError, load_inventory
from pytest_autoglm.core.values import MAX_DURATION_S, format_duration, parse_duration, parse_port
from pytest_autoglm.inventory.plan import build_plan

LOCATED = re.compile(r"^[^:\n]+:\d+:\d+: ")
ENVIRON = {"AUTOGLM_API_KEY": "sk-hypothesis-key", "AUTOGLM_PORT": "8443"}

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

VALID = """\
version: 1
include: [base.yaml]
defaults:
  timeout: 5s
  retries: 2
  backoff: 200ms
  resolvers: [system, 8.8.8.8, "tls://1.1.1.1"]
  ca_bundle: certs/internal.pem
  proxy: http://127.0.0.1:3128
  severity: critical
secrets:
  api_key: ${AUTOGLM_API_KEY}
targets:
  - &api
    name: api
    host: api.example.com
    tags: [public, critical]
    timeout: 3s
    dns:
      A: [203.0.113.10, 203.0.113.11]
      AAAA: present
      MX: absent
      TXT: {contains: ["v=spf1 ~all"]}
      consistent: true
    tcp:
      open: [443, 80]
      closed: [22]
    tls:
      port: 443
      min_version: TLSv1.2
      accept: [TLSv1.2, TLSv1.3]
      client_cert: certs/client.pem
    http:
      - url: https://api.example.com/health
        status: 200
        json: {status: ok}
        max_latency: 500ms
        headers: {Authorization: "Bearer ${secrets.api_key}"}
    cors:
      - url: https://api.example.com/v1/chat
        allow: [https://app.example.com]
        deny: [https://evil.example.org, "null"]
        methods: [POST]
        credentials: true
  - <<: *api
    name: api-eu
    host: 198.51.100.4
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hypothesis-inventories")
    (directory / "certs").mkdir()
    (directory / "certs" / "internal.pem").write_text("x")
    (directory / "certs" / "client.pem").write_text("x")
    (directory / "base.yaml").write_text(
        "defaults: {retries: 4}\ntargets:\n  - {name: web, host: www.example.com, tcp: {open: 443}}\n"
    )
    (directory / "valid.yaml").write_text(VALID)
    return directory


def load_or_refuse(path: Path) -> None:
    """The property itself: a model (and a plan), or a located InventoryError; nothing else."""
    try:
        loaded = load_inventory(path, environ=ENVIRON)
    except InventoryError as exc:
        text = str(exc)
        assert "Traceback" not in text
        assert LOCATED.match(text), f"not located: {text!r}"
        return
    build_plan(loaded)


def test_the_valid_inventory_loads(workdir: Path) -> None:
    loaded = load_inventory(workdir / "valid.yaml", environ=ENVIRON)
    assert [t.name for t in loaded.model.targets] == ["web", "api", "api-eu"]
    assert len(build_plan(loaded)) > 20


# -- (a) arbitrary text and bytes -------------------------------------------------------------------

_YAML_PIECES = st.sampled_from(
    [
        "version: 1\n",
        "targets:\n",
        "  - name: api\n",
        "    host: api.example.com\n",
        "defaults:\n",
        "include: [base.yaml]\n",
        "include: valid.yaml\n",
        "tcp: {open: [443]}\n",
        "- ",
        ": ",
        "&a ",
        "*a ",
        "<<: ",
        "!!python/object:os.system ",
        "!tag ",
        "!!binary ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "#",
        "|\n",
        ">\n",
        "\t",
        "  ",
        "\n",
        "---\n",
        "...\n",
        "${AUTOGLM_API_KEY}",
        "${secrets.api_key}",
        "$${x}",
        "${NOPE}",
        "? ",
        "%YAML 1.1\n",
        "\x00",
        "\ufeff",
        "é",
    ]
)


@PROPERTY
@given(text=st.one_of(st.text(max_size=400), st.lists(_YAML_PIECES, max_size=40).map("".join)))
def test_arbitrary_text(workdir: Path, text: str) -> None:
    path = workdir / "text.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    load_or_refuse(path)


@PROPERTY
@given(
    data=st.one_of(
        st.binary(max_size=400), st.binary(max_size=60).map(lambda b: b"version: 1\ntargets:\n  - name: " + b)
    )
)
def test_arbitrary_bytes(workdir: Path, data: bytes) -> None:
    path = workdir / "bytes.yaml"
    path.write_bytes(data)
    load_or_refuse(path)


# -- (b) structured random inventories --------------------------------------------------------------

_PLAUSIBLE_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "api",
        "api.example.com",
        "203.0.113.10",
        "2001:db8::1",
        "5s",
        "250ms",
        "1m",
        "5h",
        "-1s",
        "system",
        "8.8.8.8",
        "tls://1.1.1.1",
        "https://dns.google/dns-query",
        "quic://x",
        "https://api.example.com/",
        "ftp://x/",
        "http://127.0.0.1:3128",
        "TLSv1.2",
        "TLSv1.3",
        "SSLv3",
        "present",
        "absent",
        "2xx",
        "6xx",
        "critical",
        "warning",
        "required",
        "optional",
        "GET",
        "get",
        "null",
        "https://app.example.com",
        "https://app.example.com/path",
        "${AUTOGLM_API_KEY}",
        "${secrets.api_key}",
        "${secrets.nope}",
        "$${literal}",
        "${NOT_SET_ANYWHERE}",
        "${AUTOGLM_PORT}",
        "certs/internal.pem",
        "certs/missing.pem",
        "base.yaml",
        "nope.yaml",
        "structured.yaml",
        "10 mail.example.com.",
        '0 issue "letsencrypt.org"',
        "v=spf1 ~all",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=70_000),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    _PLAUSIBLE_STRINGS,
)
_JUNK_KEYS = st.one_of(
    st.text(min_size=1, max_size=12), st.sampled_from(["tsl", "opne", "x-common", "<<", "include", "AA"])
)
_SETTING_KEYS = ["timeout", "retries", "backoff", "resolvers", "ca_bundle", "proxy", "severity"]
_TARGET_KEYS = [*_SETTING_KEYS, "name", "host", "tags", "dns", "tcp", "tls", "http", "cors"]
_SECTION_KEYS = [
    *["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "PTR", "consistent"],
    *["open", "closed", "refused", "filtered"],
    *["port", "sni", "verify", "min_version", "accept", "min_days_valid", "ocsp_stapling", "client_cert", "client_key"],
    *["url", "method", "status", "body_contains", "json", "max_latency", "headers", "follow_redirects"],
    *["allow", "deny", "methods", "credentials", "probe_misconfigurations"],
]


def _keys(names: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(names), _JUNK_KEYS)


_JUNK = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys(_SECTION_KEYS), children, max_size=4)
    ),
    max_leaves=12,
)
_SECTION = st.one_of(
    st.dictionaries(_keys(_SECTION_KEYS), _JUNK, max_size=6),
    st.lists(st.dictionaries(_keys(_SECTION_KEYS), _JUNK, max_size=6), max_size=3),
    _SCALARS,
)
_SETTINGS_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3), _JUNK)
_VANTAGE_NAMES = ["local", "lan", "internet", "internt", "bad name"]
_VANTAGE_SPECS = st.sampled_from(["popen", "off", "ssh=u@h//python=python3", "popen//pyhton=x", "socket=h:0", ""])
_TARGET = st.one_of(
    st.fixed_dictionaries(
        {
            "name": st.one_of(st.sampled_from(["api", "web", "db", "api"]), _SCALARS),
            "host": st.one_of(_PLAUSIBLE_STRINGS, _SCALARS),
        },
        optional={
            **{k: _SETTINGS_VALUES for k in _SETTING_KEYS},
            "tags": st.one_of(
                st.lists(st.sampled_from(["public", "critical", "bad tag", "1st"]), max_size=3), _SCALARS
            ),
            **{k: _SECTION for k in ("dns", "tcp", "tls", "http", "cors")},
            # issue 17: the vantages a target is checked from, and its per-vantage sections
            "vantages": st.one_of(st.lists(st.sampled_from(_VANTAGE_NAMES), max_size=3), _SCALARS),
            "from": st.one_of(
                st.dictionaries(
                    st.sampled_from(_VANTAGE_NAMES),
                    st.one_of(st.dictionaries(_keys(["host", "dns", "tcp", "tls", "http", "cors"]), _SECTION), _JUNK),
                    max_size=2,
                ),
                _JUNK,
            ),
        },
    ),
    st.dictionaries(_keys(_TARGET_KEYS), _JUNK, max_size=5),
    _SCALARS,
)
_INVENTORY = st.one_of(
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, 1, 1, 2, "1", None])},
        optional={
            "environment": st.one_of(st.sampled_from(["prod", "eu-west.1", "bad env"]), _SCALARS),
            "include": st.one_of(
                st.sampled_from(["base.yaml", "nope.yaml", "structured.yaml", "certs", ""]),
                st.lists(st.sampled_from(["base.yaml", "nope.yaml", "valid.yaml"]), max_size=3),
                _SCALARS,
            ),
            "defaults": st.one_of(st.dictionaries(_keys(_SETTING_KEYS), _SETTINGS_VALUES, max_size=5), _JUNK),
            "secrets": st.one_of(
                st.dictionaries(st.sampled_from(["api_key", "token", "pin"]), _SCALARS, max_size=3), _JUNK
            ),
            "targets": st.one_of(st.lists(_TARGET, max_size=4), _JUNK),
            "vantages": st.one_of(
                st.dictionaries(st.sampled_from(_VANTAGE_NAMES), st.one_of(_VANTAGE_SPECS, _SCALARS), max_size=3), _JUNK
            ),
            "junk": _JUNK,
        },
    ),
    _JUNK,
)


@PROPERTY
@given(data=_INVENTORY)
def test_structured_random_inventories(workdir: Path, data: Any) -> None:
    path = workdir / "structured.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8", errors="surrogatepass")
    load_or_refuse(path)


# -- (c) mutations of a valid inventory -------------------------------------------------------------

_INSERTS = [*"\t:\"'-[{&*!#|>%@` \n\x00$é", "${"]


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "delete_line"]))
        if kind == "delete" and text:
            i = draw(st.integers(0, len(text) - 1))
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(_INSERTS)) + text[i:]
        elif kind == "duplicate":
            i = draw(st.integers(0, len(lines) - 1))
            text = "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        elif kind == "swap":
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "delete_line":
            i = draw(st.integers(0, len(lines) - 1))
            text = "\n".join(lines[:i] + lines[i + 1 :])
    return text


@PROPERTY
@given(text=_mutated())
def test_mutations_of_a_valid_inventory(workdir: Path, text: str) -> None:
    path = workdir / "mutated.yaml"
    path.write_text(text, encoding="utf-8")
    load_or_refuse(path)


# -- (d) durations ----------------------------------------------------------------------------------


@PROPERTY
@given(ms=st.integers(min_value=0, max_value=3_600_000))
def test_duration_milliseconds(ms: int) -> None:
    assert parse_duration(f"{ms}ms") == pytest.approx(ms / 1000)


@PROPERTY
@given(seconds=st.integers(min_value=0, max_value=3600), minutes=st.integers(min_value=0, max_value=60))
def test_duration_seconds_and_minutes(seconds: int, minutes: int) -> None:
    assert parse_duration(f"{seconds}s") == seconds
    assert parse_duration(seconds) == seconds
    assert parse_duration(f"{minutes}m") == minutes * 60


@PROPERTY
@given(seconds=st.floats(min_value=0, max_value=MAX_DURATION_S, allow_nan=False))
def test_duration_round_trips(seconds: float) -> None:
    assert parse_duration(seconds) == seconds
    if "e" not in repr(seconds):  # exponent notation is not a duration form
        assert parse_duration(repr(seconds)) == pytest.approx(seconds)
    shown = format_duration(seconds)
    assert parse_duration(shown) == pytest.approx(seconds, abs=0.0051)


@PROPERTY
@given(
    value=st.one_of(
        st.text(max_size=20),
        st.from_regex(r"\A\s*-?\d{0,6}(\.\d{0,4})?\s*(ms|s|m|h|)\s*\Z"),
        st.integers(),
        st.floats(),
        st.none(),
        st.booleans(),
        st.binary(max_size=5),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
)
def test_duration_never_raises_anything_but_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError:
        return
    assert isinstance(seconds, float)
    assert math.isfinite(seconds)
    assert 0 <= seconds <= MAX_DURATION_S


# -- (e) ports --------------------------------------------------------------------------------------


@PROPERTY
@given(port=st.integers(min_value=1, max_value=65535))
def test_port_round_trips(port: int) -> None:
    assert parse_port(port) == port
    assert parse_port(str(port)) == port
    assert parse_port(f" {port} ") == port


@PROPERTY
@given(port=st.one_of(st.integers(max_value=0), st.integers(min_value=65536)))
def test_port_out_of_range(port: int) -> None:
    with pytest.raises(ValueError, match=r"out of range|expected a port"):
        parse_port(port)


@PROPERTY
@given(
    value=st.one_of(
        st.text(max_size=8), st.integers(), st.floats(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2)
    )
)
def test_port_never_raises_anything_but_value_error(value: object) -> None:
    assume(not (isinstance(value, str) and len(value.strip()) > 4000))
    try:
        port = parse_port(value)
    except ValueError:
        return
    assert type(port) is int
    assert 1 <= port <= 65535
    assert not isinstance(value, bool | float)
