"""Valid inventories load into the models the contract describes (spec: inventory.md).

Real files in ``tmp_path``; every test changes into it so that file names in
messages are relative, as they are for a user running pytest next to the file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_autoglm import InventoryError, LoadedInventory, load_inventory
from pytest_autoglm.core.values import format_duration, parse_duration, parse_port
from pytest_autoglm.core.vocabulary import Layer
from pytest_autoglm.inventory.models import BUILTIN_SETTINGS, DnsExpectation, Target
from pytest_autoglm.inventory.plan import Check, build_plan
from pytest_autoglm.inventory.secrets import MASK, Redactor

API_KEY = "sk-test-0123456789abcdef"

#: The complete example of the spec, verbatim.
SPEC_EXAMPLE = """\
version: 1
environment: prod                # optional; default: the file's stem ("prod")
include: [base.yaml]             # optional; paths relative to this file, merged
                                 # underneath it (this file wins, key by key)
defaults:                        # every target inherits these unless it overrides
  timeout: 5s                    # per attempt: "250ms", "5s", "1m" or a number (s)
  retries: 2                     # extra attempts after the first one
  backoff: 200ms                 # base delay; exponential with full jitter
  resolvers: [system]            # see "Resolvers"
  ca_bundle: certs/internal.pem  # extra trust anchors (relative to this file)
  proxy: http://127.0.0.1:3128   # used by http and cors checks
  severity: critical             # critical | warning

secrets:                         # read from the environment at load time;
  api_key: ${AUTOGLM_API_KEY}    # the values never appear in any output

targets:
  - name: api                    # unique in the environment; [A-Za-z0-9_.-]+
    host: api.example.com        # DNS name, IPv4 or IPv6 literal
    tags: [public, critical]
    severity: critical
    timeout: 3s                  # any key of defaults can be overridden here

    dns:                         # one item per record type
      A: [203.0.113.10, 203.0.113.11]   # the answer set must equal this set
      AAAA: present              # any non-empty answer
      CNAME: api.cdn.example.net.
      MX: absent                 # NXDOMAIN or NODATA both satisfy "absent"
      TXT: {contains: ["v=spf1 include:_spf.example.com ~all"]}
      consistent: true           # all resolvers must return the same answers

    tcp:                         # one item per port
      open: [443, 80]            # a handshake completes
      closed: [22]               # refused or filtered; either satisfies it
      refused: [8081]            # RST (something answers, nothing listens)
      filtered: [3306]           # no answer within the timeout (firewall drop)

    tls:                         # one item per (port, expectation group)
      port: 443
      sni: api.example.com       # default: host (omit SNI for IP literals)
      verify: true               # chain to a trust anchor AND hostname match
      min_version: TLSv1.2       # every version below this must be refused
      accept: [TLSv1.2, TLSv1.3] # each of these must complete a handshake
      min_days_valid: 30         # leaf not after - now >= 30 days
      ocsp_stapling: required    # required | optional (default optional)
      client_cert: certs/client.pem   # mTLS; key in the same PEM or client_key

    http:                        # a list; one item per entry
      - url: https://api.example.com/health
        method: GET              # default GET
        status: 200              # an int, a list of ints, or "2xx"
        body_contains: '"status":"ok"'
        json: {status: ok}       # the JSON body contains these key/values
        max_latency: 500ms       # total time of the successful attempt
        headers: {Authorization: "Bearer ${secrets.api_key}"}
        follow_redirects: false  # default false

    cors:                        # a list or a single mapping; one item per origin
      - url: https://api.example.com/v1/chat
        allow: [https://app.example.com]          # must be allowed
        deny: [https://evil.example.org, "null"]  # must not be allowed
        methods: [POST]          # preflight must allow these methods
        headers: [Authorization, Content-Type]    # ... and these request headers
        credentials: true        # Access-Control-Allow-Credentials must be true
"""

BASE = """\
defaults:
  retries: 5
  backoff: 1s
targets:
  - name: web
    host: www.example.com
    tcp: {open: [443]}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def spec_example(here: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedInventory:
    monkeypatch.setenv("AUTOGLM_API_KEY", API_KEY)
    (here / "prod.yaml").write_text(SPEC_EXAMPLE, encoding="utf-8")
    write(here, "base.yaml", BASE)
    write(here, "certs/internal.pem", "-----BEGIN CERTIFICATE-----\n")
    write(here, "certs/client.pem", "-----BEGIN CERTIFICATE-----\n")
    return load_inventory("prod.yaml")


def load_text(here: Path, text: str, name: str = "prod.yaml", **kwargs: object) -> LoadedInventory:
    write(here, name, text)
    return load_inventory(name, **kwargs)  # type: ignore[arg-type]


def target(loaded: LoadedInventory, name: str) -> Target:
    return next(t for t in loaded.model.targets if t.name == name)


def plan_by_id(loaded: LoadedInventory) -> dict[str, Check]:
    checks = build_plan(loaded)
    by_id = {c.id: c for c in checks}
    assert len(by_id) == len(checks), "ids must be unique"
    return by_id


# -- the complete example ----------------------------------------------------------------------------


def test_spec_example_top_level(spec_example: LoadedInventory, here: Path) -> None:
    inv = spec_example
    assert inv.environment == "prod"
    assert inv.display == "prod.yaml"
    assert inv.path == (here / "prod.yaml").resolve()
    model = inv.model
    assert model.version == 1
    assert model.secrets == {"api_key": API_KEY}
    assert [t.name for t in model.targets] == ["web", "api"]  # included targets underneath


def test_spec_example_defaults(spec_example: LoadedInventory, here: Path) -> None:
    d = spec_example.model.defaults
    assert d.timeout == 5.0
    assert d.retries == 2  # this file wins over base.yaml's 5
    assert d.backoff == 0.2  # this file wins over base.yaml's 1s
    assert d.resolvers == ["system"]
    assert d.ca_bundle == str((here / "certs" / "internal.pem").resolve())
    assert d.proxy == "http://127.0.0.1:3128"
    assert d.severity == "critical"


def test_spec_example_target(spec_example: LoadedInventory) -> None:
    api = target(spec_example, "api")
    assert api.host == "api.example.com"
    assert api.tags == ["public", "critical"]
    assert api.severity == "critical"
    assert api.timeout == 3.0
    assert spec_example.model.resolved_setting(api, "timeout") == 3.0
    assert spec_example.model.resolved_setting(api, "retries") == 2


def test_spec_example_dns(spec_example: LoadedInventory) -> None:
    dns = target(spec_example, "api").dns
    assert dns is not None
    assert dns.A == DnsExpectation(mode="equal", values=("203.0.113.10", "203.0.113.11"))
    assert dns.AAAA == DnsExpectation(mode="present")
    assert dns.CNAME == DnsExpectation(mode="equal", values=("api.cdn.example.net.",))
    assert dns.MX == DnsExpectation(mode="absent")
    assert dns.TXT == DnsExpectation(mode="contains", values=("v=spf1 include:_spf.example.com ~all",))
    assert dns.consistent is True
    assert [t for t, _ in dns.expectations()] == ["A", "AAAA", "CNAME", "MX", "TXT"]


def test_spec_example_tcp_tls(spec_example: LoadedInventory, here: Path) -> None:
    api = target(spec_example, "api")
    assert api.tcp is not None
    assert (api.tcp.open, api.tcp.closed, api.tcp.refused, api.tcp.filtered) == ([443, 80], [22], [8081], [3306])
    [tls] = api.tls
    assert tls.port == 443
    assert tls.sni == "api.example.com"
    assert tls.verify is True
    assert tls.min_version == "TLSv1.2"
    assert tls.accept == ["TLSv1.2", "TLSv1.3"]
    assert tls.min_days_valid == 30
    assert tls.ocsp_stapling == "required"
    assert tls.client_cert == str((here / "certs" / "client.pem").resolve())
    assert tls.client_key is None


def test_spec_example_http_cors(spec_example: LoadedInventory) -> None:
    api = target(spec_example, "api")
    [http] = api.http
    assert http.url == "https://api.example.com/health"
    assert http.method == "GET"
    assert http.status == 200
    assert http.body_contains == '"status":"ok"'
    assert http.json_ == {"status": "ok"}
    assert http.max_latency == 0.5
    assert http.headers == {"Authorization": f"Bearer {API_KEY}"}
    assert http.follow_redirects is False
    [cors] = api.cors
    assert cors.url == "https://api.example.com/v1/chat"
    assert cors.allow == ["https://app.example.com"]
    assert cors.deny == ["https://evil.example.org", "null"]
    assert cors.methods == ["POST"]
    assert cors.headers == ["Authorization", "Content-Type"]
    assert cors.credentials is True


def test_spec_example_secret_is_redacted(spec_example: LoadedInventory) -> None:
    redact = spec_example.redactor
    assert API_KEY in redact.values
    header = target(spec_example, "api").http[0].headers["Authorization"]
    assert redact(header) == f"Bearer {MASK}"
    assert API_KEY not in str(redact.redact_data(target(spec_example, "api").model_dump()))


def test_spec_example_plan_ids(spec_example: LoadedInventory) -> None:
    ids = list(plan_by_id(spec_example))
    for expected in (
        "dns[prod:api:A]",
        "tcp[prod:api:443/open]",
        "tls[prod:api:443]",
        "http[prod:api:GET https://api.example.com/health]",
        "cors[prod:api:https://app.example.com]",
    ):
        assert expected in ids
    api_ids = [i for i in ids if ":api:" in i]
    assert api_ids[:12] == [
        "dns[prod:api:A]",
        "dns[prod:api:AAAA]",
        "dns[prod:api:CNAME]",
        "dns[prod:api:MX]",
        "dns[prod:api:TXT]",
        "tcp[prod:api:443/open]",
        "tcp[prod:api:80/open]",
        "tcp[prod:api:22/closed]",
        "tcp[prod:api:8081/refused]",
        "tcp[prod:api:3306/filtered]",
        "tls[prod:api:443]",
        "http[prod:api:GET https://api.example.com/health]",
    ]
    assert "cors[prod:api:https://evil.example.org]" in ids
    assert "cors[prod:api:null]" in ids
    assert ids[0] == "tcp[prod:web:443/open]"  # the included target, with this file's environment


def test_spec_example_plan_dependencies(spec_example: LoadedInventory) -> None:
    plan = plan_by_id(spec_example)
    name = ("dns[prod:api:A]", "dns[prod:api:AAAA]", "dns[prod:api:CNAME]")
    assert plan["dns[prod:api:A]"].depends_on == ()
    for port_id in ("tcp[prod:api:443/open]", "tcp[prod:api:22/closed]", "tcp[prod:api:3306/filtered]"):
        assert plan[port_id].depends_on == name
    assert plan["tls[prod:api:443]"].depends_on == (*name, "tcp[prod:api:443/open]")
    web_lower = (*name, "tcp[prod:api:443/open]", "tls[prod:api:443]")
    assert plan["http[prod:api:GET https://api.example.com/health]"].depends_on == web_lower
    assert plan["cors[prod:api:https://app.example.com]"].depends_on == web_lower
    # spec: "a failing MX/TXT expectation blocks nothing"
    for check in plan.values():
        assert not {"dns[prod:api:MX]", "dns[prod:api:TXT]"} & set(check.depends_on)


def test_spec_example_plan_settings(spec_example: LoadedInventory, here: Path) -> None:
    plan = plan_by_id(spec_example)
    tcp = plan["tcp[prod:api:443/open]"]
    assert (tcp.kind, tcp.environment, tcp.target, tcp.host) == (Layer.TCP, "prod", "api", "api.example.com")
    assert (tcp.timeout, tcp.retries, tcp.backoff, tcp.severity) == (3.0, 2, 0.2, "critical")
    assert tcp.tags == ("public", "critical")
    assert [r.kind for r in tcp.resolvers] == ["system"]
    assert tcp.proxy == "http://127.0.0.1:3128"
    assert tcp.ca_bundle == str((here / "certs" / "internal.pem").resolve())
    web = plan["tcp[prod:web:443/open]"]
    assert (web.timeout, web.retries, web.backoff) == (5.0, 2, 0.2)  # the defaults, not base.yaml's
    http = plan["http[prod:api:GET https://api.example.com/health]"]
    assert http.client_cert == str((here / "certs" / "client.pem").resolve())


# -- defaults of the sections -------------------------------------------------------------------------


def test_section_defaults(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        targets:
          - name: api
            host: api.example.com
            tls: {}
            http:
              url: https://api.example.com/
            cors:
              url: https://api.example.com/
            tcp:
              open: 443
        """,
    )
    api = inv.model.targets[0]
    [tls] = api.tls
    assert (tls.port, tls.verify, tls.ocsp_stapling, tls.sni, tls.min_version, tls.accept) == (
        443,
        True,
        "optional",
        None,
        None,
        [],
    )
    [http] = api.http
    assert (http.method, http.status, http.follow_redirects, http.headers) == ("GET", "2xx", False, {})
    [cors] = api.cors
    assert (cors.methods, cors.credentials, cors.allow, cors.deny) == (["GET"], False, [], [])
    assert api.tcp is not None and api.tcp.open == [443]
    assert api.dns is None
    for key, builtin in BUILTIN_SETTINGS.items():
        assert inv.model.resolved_setting(api, key) == builtin


def test_tls_verify_false_and_status_forms(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        targets:
          - name: api
            host: api.example.com
            tls: {verify: false}
            http:
              - {url: "https://api.example.com/a", status: [200, 204]}
              - {url: "https://api.example.com/b", status: 3xx, method: POST, follow_redirects: true}
        """,
    )
    api = inv.model.targets[0]
    assert api.tls[0].verify is False
    assert [h.status for h in api.http] == [[200, 204], "3xx"]
    assert api.http[1].method == "POST"
    assert api.http[1].follow_redirects is True


# -- defaults and per-target overrides ----------------------------------------------------------------


def test_defaults_and_overrides(here: Path) -> None:
    write(here, "ca.pem", "x")
    write(here, "other-ca.pem", "x")
    inv = load_text(
        here,
        """\
        version: 1
        defaults:
          timeout: 250ms
          retries: 4
          resolvers: [8.8.8.8, "tls://1.1.1.1"]
          ca_bundle: ca.pem
          severity: warning
        targets:
          - name: inherits
            host: a.example.com
          - name: overrides
            host: b.example.com
            timeout: 1m
            retries: 0
            backoff: 2
            resolvers: ["[2001:db8::53]:5353"]
            ca_bundle: other-ca.pem
            proxy: "socks5://127.0.0.1:1080"
            severity: critical
        """,
    )
    model = inv.model
    inherits, overrides = model.targets
    setting = model.resolved_setting
    assert [setting(inherits, k) for k in ("timeout", "retries", "backoff", "severity", "proxy")] == [
        0.25,
        4,
        0.2,
        "warning",
        None,
    ]
    assert setting(inherits, "resolvers") == ["8.8.8.8", "tls://1.1.1.1"]
    assert setting(inherits, "ca_bundle") == str((here / "ca.pem").resolve())
    assert [setting(overrides, k) for k in ("timeout", "retries", "backoff", "severity")] == [60.0, 0, 2.0, "critical"]
    assert setting(overrides, "ca_bundle") == str((here / "other-ca.pem").resolve())
    assert setting(overrides, "proxy") == "socks5://127.0.0.1:1080"
    specs = model.resolver_specs(overrides)
    assert [(s.kind, s.host, s.port) for s in specs] == [("udp", "2001:db8::53", 5353)]
    assert [(s.kind, s.host, s.port) for s in model.resolver_specs(inherits)] == [
        ("udp", "8.8.8.8", 53),
        ("tls", "1.1.1.1", 853),
    ]


# -- environment --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "declared", "expected"),
    [
        ("prod.yaml", None, "prod"),
        ("staging.yml", None, "staging"),
        ("eu-west.1.yaml", None, "eu-west.1"),
        ("prod.yaml", "production", "production"),
        ("my env.yaml", "myenv", "myenv"),
    ],
)
def test_environment_defaults_to_the_file_stem(here: Path, file_name: str, declared: str | None, expected: str) -> None:
    header = f"environment: {declared}\n" if declared else ""
    inv = load_text(
        here, f"version: 1\n{header}targets:\n  - {{name: api, host: api.example.com, tcp: {{open: 443}}}}\n", file_name
    )
    assert inv.environment == expected
    assert build_plan(inv)[0].id == f"tcp[{expected}:api:443/open]"


def test_stem_that_is_not_an_environment_name(here: Path) -> None:
    with pytest.raises(InventoryError) as info:
        load_text(here, "version: 1\ntargets: []\n", "my env.yaml")
    assert info.value.render().startswith("my env.yaml:1:1: ")
    assert "set 'environment:'" in info.value.render()


def test_inventory_in_another_directory(here: Path) -> None:
    write(here, "envs/staging.yaml", "version: 1\ntargets: []\n")
    inv = load_inventory(here / "envs" / "staging.yaml")
    assert inv.environment == "staging"
    assert inv.display == "envs/staging.yaml"


# -- includes -----------------------------------------------------------------------------------------


def test_include_merges_key_by_key(here: Path) -> None:
    write(
        here,
        "base.yaml",
        """\
        defaults:
          timeout: 1s
          retries: 4
          resolvers: [8.8.8.8, 8.8.4.4]
        secrets:
          base_secret: from-base
        targets:
          - name: api
            host: api.example.com
            timeout: 2s
            tags: [base]
            tcp: {open: [443], closed: [22]}
            http:
              - url: https://api.example.com/base
          - name: db
            host: 10.0.0.5
            tcp: {filtered: [5432]}
        """,
    )
    inv = load_text(
        here,
        """\
        version: 1
        include: base.yaml
        defaults:
          retries: 1
          resolvers: [system]
        targets:
          - name: api
            tags: [top]
            tcp: {open: [8443]}
          - name: web
            host: www.example.com
        """,
    )
    model = inv.model
    assert model.defaults.timeout == 1.0  # only in base
    assert model.defaults.retries == 1  # this file wins
    assert model.defaults.resolvers == ["system"]  # lists are replaced, not concatenated
    assert model.secrets == {"base_secret": "from-base"}
    assert [t.name for t in model.targets] == ["api", "db", "web"]
    api = target(inv, "api")
    assert api.host == "api.example.com"  # from base
    assert api.timeout == 2.0  # from base
    assert api.tags == ["top"]  # this file wins
    assert api.tcp is not None and (api.tcp.open, api.tcp.closed) == ([8443], [22])  # merged key by key
    assert [h.url for h in api.http] == ["https://api.example.com/base"]
    assert target(inv, "db").host == "10.0.0.5"


def test_later_include_wins_over_earlier(here: Path) -> None:
    write(here, "one.yaml", "defaults: {timeout: 1s, retries: 1}\n")
    write(here, "two.yaml", "defaults: {timeout: 2s}\n")
    inv = load_text(here, "version: 1\ninclude: [one.yaml, two.yaml]\ntargets: []\n")
    assert (inv.model.defaults.timeout, inv.model.defaults.retries) == (2.0, 1)


def test_nested_includes_and_relative_paths(here: Path) -> None:
    write(here, "envs/common/certs/ca.pem", "x")
    write(here, "envs/shared/client.pem", "x")
    write(here, "envs/shared.yaml", "defaults: {retries: 3, backoff: 50ms}\n")
    write(
        here,
        "envs/common/base.yaml",
        """\
        include: [../shared.yaml]
        defaults:
          ca_bundle: certs/ca.pem
        targets:
          - name: api
            host: api.example.com
            tls:
              client_cert: ../shared/client.pem
        """,
    )
    inv = load_text(here, "version: 1\ninclude: [envs/common/base.yaml]\ntargets: []\n")
    assert inv.model.defaults.ca_bundle == str((here / "envs/common/certs/ca.pem").resolve())
    assert inv.model.defaults.retries == 3
    assert inv.model.defaults.backoff == 0.05
    client_cert = target(inv, "api").tls[0].client_cert
    assert client_cert is not None and Path(client_cert).is_absolute()
    assert Path(client_cert).resolve() == (here / "envs/shared/client.pem").resolve()


def test_includer_path_overrides_relative_to_includer(here: Path) -> None:
    write(here, "sub/ca.pem", "x")
    write(here, "top-ca.pem", "x")
    write(here, "sub/base.yaml", "defaults: {ca_bundle: ca.pem}\n")
    inv = load_text(here, "version: 1\ninclude: sub/base.yaml\ndefaults: {ca_bundle: top-ca.pem}\ntargets: []\n")
    assert inv.model.defaults.ca_bundle == str((here / "top-ca.pem").resolve())


def test_absolute_include_and_ca_bundle(here: Path) -> None:
    ca = write(here, "abs/ca.pem", "x")
    base = write(here, "abs/base.yaml", f"defaults: {{ca_bundle: '{ca.resolve()}'}}\n")
    inv = load_text(here, f"version: 1\ninclude: ['{base.resolve()}']\ntargets: []\n")
    assert inv.model.defaults.ca_bundle == str(ca.resolve())


def test_secret_declared_in_base_used_on_top(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGLM_TEST_BASE_TOKEN", "base-token-value")
    write(here, "base.yaml", "secrets: {token: '${AUTOGLM_TEST_BASE_TOKEN}'}\n")
    inv = load_text(
        here,
        """\
        version: 1
        include: base.yaml
        targets:
          - name: api
            host: api.example.com
            http:
              - url: https://api.example.com/
                headers: {X-Token: "${secrets.token}"}
        """,
    )
    assert inv.model.targets[0].http[0].headers == {"X-Token": "base-token-value"}
    assert inv.redactor("token=base-token-value") == f"token={MASK}"


# -- ${VAR}, ${secrets.key}, $${ ---------------------------------------------------------------------


def test_substitution(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGLM_TEST_HOST", "proxy.internal")
    monkeypatch.setenv("AUTOGLM_TEST_PORT", "3128")
    monkeypatch.setenv("AUTOGLM_TEST_PASSWORD", "pa55word")
    inv = load_text(
        here,
        """\
        version: 1
        defaults:
          proxy: "http://${AUTOGLM_TEST_HOST}:${AUTOGLM_TEST_PORT}"
        secrets:
          password: ${AUTOGLM_TEST_PASSWORD}
          pin: 4321
          literal: plain-value
        targets:
          - name: api
            host: api.example.com
            http:
              - url: https://api.example.com/
                body_contains: "cost: $$5 and $${NOT_A_VARIABLE} and $${secrets.password}"
                headers:
                  Authorization: "Basic ${secrets.password}:${secrets.pin}"
                  X-Literal: "${secrets.literal}"
                  X-Spaced: "${ AUTOGLM_TEST_HOST }"
        """,
    )
    assert inv.model.defaults.proxy == "http://proxy.internal:3128"
    assert inv.model.secrets == {"password": "pa55word", "pin": 4321, "literal": "plain-value"}
    http = inv.model.targets[0].http[0]
    assert http.body_contains == "cost: $$5 and ${NOT_A_VARIABLE} and ${secrets.password}"
    assert http.headers == {
        "Authorization": "Basic pa55word:4321",
        "X-Literal": "plain-value",
        "X-Spaced": "proxy.internal",
    }
    # every secret value and every environment value of 6+ characters is masked; a short
    # environment value (a port, a count) is not, or every digit of every message would be
    assert set(inv.redactor.values) == {"proxy.internal", "pa55word", "4321", "plain-value"}


def test_explicit_environ_mapping(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGLM_TEST_ONLY_IN_OS", "os-value")
    write(here, "prod.yaml", "version: 1\nsecrets: {a: '${AUTOGLM_TEST_GIVEN}'}\ntargets: []\n")
    assert load_inventory("prod.yaml", environ={"AUTOGLM_TEST_GIVEN": "given"}).model.secrets == {"a": "given"}
    write(here, "other.yaml", "version: 1\nsecrets: {a: '${AUTOGLM_TEST_ONLY_IN_OS}'}\ntargets: []\n")
    with pytest.raises(InventoryError, match="AUTOGLM_TEST_ONLY_IN_OS"):
        load_inventory("other.yaml", environ={})


def test_environment_port_string(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGLM_TEST_API_PORT", "8443")
    inv = load_text(
        here,
        "version: 1\ntargets:\n  - name: api\n    host: api.example.com\n    tcp: {open: ['${AUTOGLM_TEST_API_PORT}']}\n",
    )
    assert inv.model.targets[0].tcp is not None and inv.model.targets[0].tcp.open == [8443]


# -- the Redactor -------------------------------------------------------------------------------------


def test_redactor_masks_strings_and_nested_data() -> None:
    redact = Redactor(["s3cret", "s3cret-and-more", "", "tok"])
    assert bool(redact)
    assert redact.values[0] == "s3cret-and-more"  # longest first
    assert redact("a s3cret-and-more b s3cret c") == f"a {MASK} b {MASK} c"
    assert redact("xs3cretx tokens") == f"x{MASK}x {MASK}ens"
    data = {
        "headers": {"Authorization": "Bearer s3cret", "s3cret": 1},
        "list": ["tok", ("s3cret", 5)],
        "n": None,
        "f": 1.5,
    }
    assert redact.redact_data(data) == {
        "headers": {"Authorization": f"Bearer {MASK}", MASK: 1},
        "list": [MASK, [MASK, 5]],
        "n": None,
        "f": 1.5,
    }
    assert redact("") == ""
    assert redact("nothing to hide") == "nothing to hide"


def test_redactor_special_characters_and_merge() -> None:
    redact = Redactor(["a.b*c", "(x|y)"])
    assert redact("a.b*c axbxc (x|y) x") == f"{MASK} axbxc {MASK} x"
    merged = Redactor(["one"]).merged(Redactor(["two"]))
    assert merged("one two three") == f"{MASK} {MASK} three"


def test_empty_redactor_is_a_no_op() -> None:
    redact = Redactor([])
    assert not redact
    data = {"a": ["b"]}
    assert redact.redact_data(data) is data
    assert redact("text") == "text"


# -- durations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("1m", 60.0),
        (2, 2.0),
        (0.5, 0.5),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("0", 0.0),
        (" 10 ms ", 0.01),
        ("60m", 3600.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["5h", "-1s", "1e3", "", "ms", "5 sec", True, None, [1], 3601, float("nan"), float("inf"), 10**400]
)
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (2.0, "2s"), (1.5, "1.5s"), (0.0, "0ms"), (0.0025, "2.5ms")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_durations_in_the_inventory(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        defaults: {timeout: 250ms, backoff: 0.5}
        targets:
          - name: a
            host: a.example.com
            timeout: 2
            backoff: 1m
            http:
              - {url: "https://a.example.com/", max_latency: 5s}
        """,
    )
    a = inv.model.targets[0]
    assert (inv.model.defaults.timeout, inv.model.defaults.backoff) == (0.25, 0.5)
    assert (a.timeout, a.backoff, a.http[0].max_latency) == (2.0, 60.0, 5.0)


@pytest.mark.parametrize(("value", "port"), [(1, 1), (443, 443), (65535, 65535), ("8443", 8443), (" 80 ", 80)])
def test_parse_port(value: object, port: int) -> None:
    assert parse_port(value) == port


@pytest.mark.parametrize("bad", [0, 65536, -1, True, False, None, 443.0, "https", "４４３", [443]])  # noqa: RUF001 (full-width digits on purpose)
def test_parse_port_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_port(bad)


# -- anchors and << merge keys ------------------------------------------------------------------------


def test_anchors_and_merge_keys(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        defaults: &defaults
          timeout: 2s
          retries: 1
        targets:
          - &api
            name: api
            host: api.example.com
            tags: &tags [public, critical]
            tcp: {open: [443]}
            http: &checks
              - url: https://api.example.com/health
                body_contains: "$${literal}"
          - <<: *api
            name: api-eu
            host: api.eu.example.com
          - <<: [*defaults, *api]
            name: api-us
            host: api.us.example.com
            retries: 3
          - name: web
            host: www.example.com
            tags: *tags
            http: *checks
        """,
    )
    api, eu, us, web = inv.model.targets
    assert (eu.name, eu.host, eu.tags) == ("api-eu", "api.eu.example.com", ["public", "critical"])
    assert eu.tcp == api.tcp
    assert (us.timeout, us.retries) == (2.0, 3)  # merged from defaults; the explicit key wins
    assert us.tags == ["public", "critical"]
    assert web.tags == ["public", "critical"]
    # an aliased value is interpolated once per use, not twice
    assert [t.http[0].body_contains for t in (api, eu, us, web)] == ["${literal}"] * 4
    ids = [c.id for c in build_plan(inv)]
    assert "tcp[prod:api-eu:443/open]" in ids
    assert "http[prod:web:GET https://api.example.com/health]" in ids


def test_first_merge_source_wins(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        defaults:
          <<: [{timeout: 1s, retries: 1}, {timeout: 9s, backoff: 1s}]
        targets: []
        """,
    )
    d = inv.model.defaults
    assert (d.timeout, d.retries, d.backoff) == (1.0, 1, 1.0)


# -- YAML details -------------------------------------------------------------------------------------


def test_yaml_scalars_that_are_not_strings(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        targets:
          - name: "2024"
            host: 192.0.2.1
            tags: [on_call]
            dns:
              TXT: 2024-01-01
              PTR: host.example.com
            tcp: {open: 443}
          - name: v6
            host: "2001:DB8::1"
            http:
              - url: https://[2001:db8::1]:8443/
                json: {count: 3, ok: true, nested: {list: [1, 2]}}
        """,
    )
    first, v6 = inv.model.targets
    assert first.dns is not None
    assert first.dns.TXT == DnsExpectation(mode="equal", values=("2024-01-01",))  # a timestamp stays text
    assert first.dns.PTR == DnsExpectation(mode="equal", values=("host.example.com.",))
    assert v6.host == "2001:db8::1"
    assert v6.http[0].json_ == {"count": 3, "ok": True, "nested": {"list": [1, 2]}}


# -- plan ids and dependencies ------------------------------------------------------------------------


def test_plan_dependencies_by_host_kind(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        targets:
          - name: byname
            host: api.example.com
            dns: {A: present, MX: present, TXT: present, NS: present}
            tcp: {open: [443, 80, 8443], closed: [22]}
            tls:
              - port: 443
              - port: 9443
            http:
              - url: https://api.example.com/
              - url: http://api.example.com/plain
              - url: https://API.example.com.:8443/explicit
              - url: https://other.example.com/
              - url: https://api.example.com:9443/
          - name: byip
            host: 203.0.113.7
            dns: {PTR: host.example.com}
            tcp: {open: [443]}
            tls: {port: 443}
            http: {url: "https://203.0.113.7/"}
            cors: {url: "https://203.0.113.7/", allow: ["https://app.example.com"], probe_misconfigurations: false}
          - name: byv6
            host: 2001:db8::7
            tcp: {open: [443]}
            tls: {port: 443}
            http: {url: "https://[2001:db8::7]/"}
        """,
        "lab.yaml",
    )
    plan = plan_by_id(inv)
    a = ("dns[lab:byname:A]",)
    assert plan["tcp[lab:byname:443/open]"].depends_on == a
    assert plan["tcp[lab:byname:22/closed]"].depends_on == a
    assert plan["tls[lab:byname:443]"].depends_on == (*a, "tcp[lab:byname:443/open]")
    assert plan["tls[lab:byname:9443]"].depends_on == a  # no tcp open item for 9443
    assert plan["http[lab:byname:GET https://api.example.com/]"].depends_on == (
        *a,
        "tcp[lab:byname:443/open]",
        "tls[lab:byname:443]",
    )
    assert plan["http[lab:byname:GET http://api.example.com/plain]"].depends_on == (*a, "tcp[lab:byname:80/open]")
    assert plan["http[lab:byname:GET https://API.example.com.:8443/explicit]"].depends_on == (
        *a,
        "tcp[lab:byname:8443/open]",
    )
    # another host: only the target's own name must resolve (spec: every http/cors item of a name host)
    assert plan["http[lab:byname:GET https://other.example.com/]"].depends_on == ("dns[lab:byname:A]",)
    assert plan["http[lab:byname:GET https://api.example.com:9443/]"].depends_on == (*a, "tls[lab:byname:9443]")

    assert plan["dns[lab:byip:PTR]"].depends_on == ()
    assert plan["tcp[lab:byip:443/open]"].depends_on == ()  # an IP literal needs no DNS
    assert plan["tls[lab:byip:443]"].depends_on == ("tcp[lab:byip:443/open]",)
    assert plan["http[lab:byip:GET https://203.0.113.7/]"].depends_on == ("tcp[lab:byip:443/open]", "tls[lab:byip:443]")
    assert plan["cors[lab:byip:https://app.example.com]"].depends_on == ("tcp[lab:byip:443/open]", "tls[lab:byip:443]")
    assert [i for i in plan if i.startswith("cors[lab:byip")] == ["cors[lab:byip:https://app.example.com]"]

    assert plan["tls[lab:byv6:443]"].depends_on == ("tcp[lab:byv6:443/open]",)
    assert plan["http[lab:byv6:GET https://[2001:db8::7]/]"].depends_on == (
        "tcp[lab:byv6:443/open]",
        "tls[lab:byv6:443]",
    )


def test_plan_ids_stay_unique_and_readable(here: Path) -> None:
    inv = load_text(
        here,
        """\
        version: 1
        environment: staging
        targets:
          - name: api.v2_eu-1
            host: api.example.com
            http:
              - url: https://api.example.com/health
              - url: https://api.example.com/health
              - {url: "https://api.example.com/health", method: HEAD}
            cors:
              - url: https://api.example.com/a
                allow: [https://app.example.com]
                probe_misconfigurations: false
              - url: https://api.example.com/b
                deny: ["null"]
                probe_misconfigurations: false
        """,
    )
    ids = [c.id for c in build_plan(inv)]
    assert ids == [
        "http[staging:api.v2_eu-1:GET https://api.example.com/health]",
        "http[staging:api.v2_eu-1:GET https://api.example.com/health #2]",
        "http[staging:api.v2_eu-1:HEAD https://api.example.com/health]",
        "cors[staging:api.v2_eu-1:https://app.example.com https://api.example.com/a]",
        "cors[staging:api.v2_eu-1:null https://api.example.com/b]",
    ]
    assert build_plan(inv) == build_plan(inv)  # stable
