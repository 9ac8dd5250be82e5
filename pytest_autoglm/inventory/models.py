"""Typed, frozen models of the inventory (contract: shared spec ``inventory.md``).

The same models validate inventories and generate the published JSON Schema
(:mod:`.schema`). Custom value types validate with plain functions that raise
``ValueError`` with a message that says what would be right; ``WithJsonSchema``
states the form a user writes.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from pytest_autoglm.core.resolvers import SUPPORTED_TYPES, ResolverSpec, parse_resolver, validate_record_value
from pytest_autoglm.core.values import parse_duration, parse_port, parse_size, parse_status
from pytest_autoglm.inventory.urls import UrlParts, parse_url
from pytest_autoglm.inventory.vantages import OFF, VANTAGE_NAME_PATTERN, check_spec, is_off

#: Tags become pytest markers: pytest's own markers would skip, xfail or parametrize items.
RESERVED_TAGS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "tryfirst", "trylast"}
)
_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
_TAG_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
TlsVersion = Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- value types -----------------------------------------------------------------------------------------------


def _duration(value: object) -> float:
    return parse_duration(value)


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?|\.\d+)\s*(ms|s|m)?\s*$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: '250ms', '5s', '1m' or a number of seconds",
        }
    ),
]

Port = Annotated[int, BeforeValidator(parse_port), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535})]


def _one_or_many(value: object) -> object:
    """``open: 443`` means ``open: [443]``."""
    return value if isinstance(value, list) else [value]


PortList = Annotated[
    list[Port],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
            ]
        }
    ),
]


def _host(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a DNS name or an IP address")
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    name = text.rstrip(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise ValueError(
            f"invalid host {value!r}: expected a DNS name (letters, digits, '-', '.'; IDNs in xn-- form) or an IP address"
        )
    return text


Host = Annotated[
    str, BeforeValidator(_host), WithJsonSchema({"type": "string", "description": "a DNS name or an IP literal"})
]


def _resolver(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a resolver string, got {value!r}")
    parse_resolver(value)
    return value


Resolver = Annotated[
    str,
    BeforeValidator(_resolver),
    WithJsonSchema(
        {
            "type": "string",
            "description": "system, ADDR[:PORT], tcp://ADDR[:PORT], tls://ADDR[:PORT] or https://HOST/dns-query",
        }
    ),
]


def _http_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    try:
        url = parse_url(value)
    except ValueError as exc:
        raise ValueError(f"invalid URL {value!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"invalid URL {value!r}: expected http://host/... or https://host/...")
    _check_url_port(url, value, "URL")
    return value


def _check_url_port(url: UrlParts, value: str, what: str) -> None:
    """httpx accepts any port number and hosts such as 'a%20b'; a connection needs a real host and 1..65535."""
    if url.port is not None and not 1 <= url.port <= 65535:
        raise ValueError(f"invalid {what} {value!r}: port {url.port} is out of range 1..65535")
    try:
        _host(url.raw_host.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"invalid {what} {value!r}: {url.host!r} is not a valid host name or IP address") from None


HttpUrl = Annotated[
    str, BeforeValidator(_http_url), WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https?://"})
]


def _proxy_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a proxy URL, got {value!r}")
    try:
        url = parse_url(value)
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL {value!r}: {exc}") from None
    if url.scheme not in ("http", "https", "socks5", "socks5h") or not url.host:
        raise ValueError(f"invalid proxy URL {value!r}: expected http://host:port (or https://, socks5://)")
    _check_url_port(url, value, "proxy URL")
    return value


ProxyUrl = Annotated[str, BeforeValidator(_proxy_url), WithJsonSchema({"type": "string", "format": "uri"})]


def _origin(value: object) -> str:
    if value == "null":
        return "null"
    if not isinstance(value, str):
        raise ValueError(f"expected an origin like https://app.example.com or 'null', got {value!r}")
    try:
        url = parse_url(value)
    except ValueError as exc:
        raise ValueError(f"invalid origin {value!r}: {exc}") from None
    if (
        url.scheme not in ("http", "https")
        or not url.host
        or url.raw_path not in (b"", b"/")
        or url.query
        or url.fragment
    ):
        raise ValueError(f"invalid origin {value!r}: expected scheme://host[:port] with no path, or 'null'")
    _check_url_port(url, value, "origin")
    return value.rstrip("/")


Origin = Annotated[
    str, BeforeValidator(_origin), WithJsonSchema({"type": "string", "description": "scheme://host[:port] or null"})
]


def _status(value: object) -> Any:
    parse_status(value)
    return value


Status = Annotated[
    Any,
    BeforeValidator(_status),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"type": "integer", "minimum": 100, "maximum": 599},
                            {"type": "string", "pattern": "^([1-5]xx|[1-5][0-9][0-9])$"},
                        ]
                    },
                },
                {"type": "string", "pattern": "^([1-5][xX][xX]|[1-5][0-9][0-9])$"},
            ]
        }
    ),
]


class DnsExpectation(_Model):
    """What one record type must look like: ``equal`` set, ``present``, ``absent`` or ``contains``."""

    mode: Literal["equal", "present", "absent", "contains"]
    values: tuple[str, ...] = ()


_DNS_EXPECTATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "present, absent, or the single expected value"},
        {"type": "array", "items": {"type": "string"}, "description": "the answer set must equal this set"},
        {
            "type": "object",
            "properties": {"contains": {"type": "array", "items": {"type": "string"}}},
            "required": ["contains"],
            "additionalProperties": False,
        },
    ]
}


def _dns_expectation(rdtype: str) -> Any:
    def parse(value: object) -> DnsExpectation:
        if isinstance(value, DnsExpectation):
            return value
        if value in ("present", "absent"):
            return DnsExpectation(mode=value)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return DnsExpectation(mode="equal", values=(validate_record_value(rdtype, str(value)),))
        if isinstance(value, list):
            if not value:
                raise ValueError(f"an empty list can never match; write '{rdtype}: absent' to require no record")
            return DnsExpectation(mode="equal", values=tuple(validate_record_value(rdtype, str(v)) for v in value))
        if isinstance(value, dict):
            if set(value) != {"contains"}:
                raise ValueError(f"expected {{contains: [...]}} for {rdtype}, got keys {sorted(value)}")
            items = value["contains"]
            items = items if isinstance(items, list) else [items]
            if not items:
                raise ValueError("contains needs at least one value")
            return DnsExpectation(mode="contains", values=tuple(validate_record_value(rdtype, str(v)) for v in items))
        raise ValueError(f"expected present, absent, a value, a list of values or {{contains: [...]}} for {rdtype}")

    return Annotated[DnsExpectation | None, BeforeValidator(parse), WithJsonSchema(_DNS_EXPECTATION_SCHEMA)]


def _as_list(value: object) -> object:
    """Sections written as one mapping or a list of them."""
    return [value] if isinstance(value, dict) else value


# -- sections --------------------------------------------------------------------------------------------------


class DnsSection(_Model):
    """One item per record type; ``consistent`` requires every resolver to answer the same."""

    A: _dns_expectation("A") = None  # type: ignore[valid-type]
    AAAA: _dns_expectation("AAAA") = None  # type: ignore[valid-type]
    CNAME: _dns_expectation("CNAME") = None  # type: ignore[valid-type]
    MX: _dns_expectation("MX") = None  # type: ignore[valid-type]
    TXT: _dns_expectation("TXT") = None  # type: ignore[valid-type]
    NS: _dns_expectation("NS") = None  # type: ignore[valid-type]
    SRV: _dns_expectation("SRV") = None  # type: ignore[valid-type]
    CAA: _dns_expectation("CAA") = None  # type: ignore[valid-type]
    PTR: _dns_expectation("PTR") = None  # type: ignore[valid-type]
    consistent: bool = False

    def expectations(self) -> list[tuple[str, DnsExpectation]]:
        return [(t, getattr(self, t)) for t in SUPPORTED_TYPES if getattr(self, t) is not None]

    @model_validator(mode="after")
    def _needs_a_record_type(self) -> DnsSection:
        if self.consistent and not self.expectations():
            raise ValueError("consistent: true compares answers of record types; add one, e.g. 'A: present'")
        return self


class TcpSection(_Model):
    """One item per port: ``open``, ``closed`` (refused or filtered), ``refused``, ``filtered``."""

    open: PortList = Field(default_factory=list)
    closed: PortList = Field(default_factory=list)
    refused: PortList = Field(default_factory=list)
    filtered: PortList = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_expectation_per_port(self) -> TcpSection:
        seen: dict[int, str] = {}
        for kind in ("open", "closed", "refused", "filtered"):
            for port in getattr(self, kind):
                if port in seen:
                    raise ValueError(f"port {port} is listed under both {seen[port]} and {kind}; keep one")
                seen[port] = kind
        return self


TlsPolicyName = Literal["mozilla-modern", "mozilla-intermediate", "mozilla-old"]
CipherClass = Literal["CBC", "DHE", "RSA_KX", "3DES", "RC4", "NULL", "EXPORT", "SHA1_MAC", "ANON", "MD5"]


class CipherRules(_Model):
    """``ciphers:`` of a tls group: classes of suites the server must not accept."""

    forbid: list[CipherClass] = Field(default_factory=list)


class KeyRules(_Model):
    """``key:`` of a tls group: the smallest certificate keys allowed in the chain."""

    min_rsa_bits: int | None = Field(default=None, ge=512, le=16384)
    min_ec_bits: int | None = Field(default=None, ge=160, le=571)


class DhRules(_Model):
    """``dh:`` of a tls group: the finite-field DH group of DHE suites."""

    min_bits: int | None = Field(default=None, ge=512, le=16384)
    safe_prime: bool = False


class RevocationRules(_Model):
    """``revocation:`` of a tls group: ask the CA when the server staples nothing."""

    ocsp: bool = False
    crl: bool = False


class TlsSection(_Model):
    """One TLS expectation group on one port."""

    port: Port = 443
    sni: str | None = None
    verify: bool = True
    min_version: TlsVersion | None = None
    accept: list[TlsVersion] = Field(default_factory=list)
    min_days_valid: int | None = Field(default=None, ge=0, le=36500)
    ocsp_stapling: Literal["required", "optional"] = "optional"
    client_cert: str | None = None
    client_key: str | None = None
    policy: TlsPolicyName | None = None
    ciphers: CipherRules | None = None
    require_forward_secrecy: bool = False
    key: KeyRules | None = None
    dh: DhRules | None = None
    enumerate: bool = False
    aia_fetch: bool = False
    revocation: RevocationRules | None = None

    @field_validator("sni")
    @classmethod
    def _sni_is_a_name(cls, sni: str | None) -> str | None:
        if sni is not None:
            _host(sni)
        return sni

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsSection:
        if self.client_key and not self.client_cert:
            raise ValueError(
                "client_key is set without client_cert; add the certificate (the key may also live in its PEM)"
            )
        return self

    @model_validator(mode="after")
    def _accept_respects_min(self) -> TlsSection:
        if self.min_version:
            floor = TLS_VERSIONS.index(self.min_version)
            below = [v for v in self.accept if TLS_VERSIONS.index(v) < floor]
            if below:
                raise ValueError(
                    f"accept lists {', '.join(below)} below min_version {self.min_version}; they cannot both hold"
                )
        return self


_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"


class HstsRules(_Model):
    """``hsts:`` of an http item: the Strict-Transport-Security header the response must carry."""

    min_max_age: int = Field(default=0, ge=0, le=10 * 365 * 86400)
    include_subdomains: bool = False
    preload: bool = False


class StreamSpec(_Model):
    """What a streamed answer (``text/event-stream``) must do (issue 19)."""

    kind: Literal["sse"] = "sse"
    first_event_within: Duration | None = None
    min_events: int = Field(default=1, ge=0, le=1_000_000)
    done: str | None = Field(default=None, min_length=1)
    max_gap: Duration | None = None


class HttpCheck(_Model):
    url: HttpUrl
    method: str = Field(default="GET", pattern=r"^[A-Z]+$")
    status: Status = "2xx"
    body_contains: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")
    max_latency: Duration | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    follow_redirects: bool = False
    #: The request body (issue 19): a string is sent as is, a mapping or list as JSON.
    body: str | dict[str, Any] | list[Any] | None = None
    stream: StreamSpec | None = None

    hsts: HstsRules | None = None
    headers_present: list[Annotated[str, Field(pattern=_HEADER_NAME)]] = Field(default_factory=list)
    headers_absent: list[Annotated[str, Field(pattern=_HEADER_NAME)]] = Field(default_factory=list)
    connect_to: Literal["host"] | None = None

    @model_validator(mode="after")
    def _keys_that_go_together(self) -> HttpCheck:
        both = sorted({h.lower() for h in self.headers_present} & {h.lower() for h in self.headers_absent})
        if both:
            raise ValueError(f"header {both[0]!r} is in both headers_present and headers_absent; keep one")
        if self.hsts is not None and not self.url.lower().startswith("https://"):
            raise ValueError("hsts needs an https:// url: browsers ignore Strict-Transport-Security over plain HTTP")
        if self.stream is not None and self.method == "HEAD":
            raise ValueError("a HEAD answer has no body, so it cannot stream; use GET or POST with stream")
        return self


class CorsCheck(_Model):
    url: HttpUrl
    allow: list[Origin] = Field(default_factory=list)
    deny: list[Origin] = Field(default_factory=list)
    methods: list[Annotated[str, Field(pattern=r"^[A-Za-z]+$")]] = Field(default_factory=lambda: ["GET"])
    #: Request header names, or ``Name: value`` when the value decides whether the header is
    #: CORS-safelisted (``Content-Type: text/plain`` needs no Access-Control-Allow-Headers).
    headers: list[Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*:[^\r\n]*)?$")]] = Field(
        default_factory=list
    )
    credentials: bool = False
    probe_misconfigurations: bool = True

    @model_validator(mode="after")
    def _allow_and_deny_disjoint(self) -> CorsCheck:
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"origin {both[0]} is in both allow and deny; keep one")
        return self


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("the timeout must be greater than zero, e.g. '2s'")
    return seconds


PositiveDuration = Annotated[
    float, BeforeValidator(_positive_duration), WithJsonSchema(Duration.__metadata__[-1].json_schema)
]


# -- the rest of the troubleshooting path (issue 19): grpc ------------------------------------------------------


def _size(value: object) -> int:
    return parse_size(value)


Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$"},
                {"type": "integer", "minimum": 1},
            ],
            "description": "a size: '64MiB', '4MB', '512KiB' or a number of bytes",
        }
    ),
]


# -- alerting (issue 16: history) ---------------------------------------------------------------------------------

_INTERVAL = re.compile(r"^\s*(\d+(\.\d+)?)\s*(s|m|h|d|w)\s*$")
_INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _remind_interval(value: object) -> float | None:
    """``remind_every``: '30m', '24h', '2d', '1w' or seconds; null: never remind."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _INTERVAL.match(value)):
        seconds = float(match[1]) * _INTERVAL_SECONDS[match[3]]
    else:
        raise ValueError(f"expected an interval like '24h', '30m', '2d' or null (never), got {value!r}")
    if not seconds > 0 or seconds > 366 * 86400:
        raise ValueError(f"remind_every must be more than 0 and at most a year, got {value!r}")
    return seconds


RemindInterval = Annotated[
    float | None,
    BeforeValidator(_remind_interval),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(s|m|h|d|w)\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "null"},
            ],
            "description": "an interval: '30m', '24h', '2d', '1w' or seconds; null: never",
        }
    ),
]


class GrpcCheck(_Model):
    """One gRPC health check (grpc.health.v1 ``Check``) on one port; TLS settings come from the tls group of the port."""

    port: Port
    service: str = Field(default="", max_length=200)
    tls: bool = False
    status: Literal["SERVING", "NOT_SERVING"] = "SERVING"
    keepalive: PositiveDuration | None = None
    max_message: Size | None = None


# -- icmp (issue 19) -------------------------------------------------------------------------------------------


def _percent(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage like '0%' or '20%', got {value!r}")
    text = value.strip().removesuffix("%").strip() if isinstance(value, str) else value
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"expected a percentage like '0%' or '20%', got {value!r}") from None
    if not 0 <= number <= 100:
        raise ValueError(f"percentage {value!r} must be between 0% and 100%")
    return number


Percent = Annotated[
    float,
    BeforeValidator(_percent),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%?\s*$"},
                {"type": "number", "minimum": 0, "maximum": 100},
            ],
            "description": "a percentage: '0%', '20%' or a number 0..100",
        }
    ),
]


class IcmpSection(_Model):
    """Echo requests to every address of the target: answered (within loss and RTT limits), or blocked."""

    reachable: bool = True
    count: int = Field(default=3, ge=1, le=100)
    interval: PositiveDuration = 0.2
    max_loss: Percent = 0.0
    max_rtt: PositiveDuration | None = None
    trace: bool = False
    max_hops: int = Field(default=16, ge=1, le=64)


def _notify_url(value: object) -> str:
    """An Apprise URL; which schemes exist is checked against the installed Apprise at load time."""
    if not isinstance(value, str):
        raise ValueError(f"expected an Apprise URL like 'json://host/path', got {type(value).__name__}")
    scheme, sep, rest = value.strip().partition("://")
    if not sep or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", scheme) or not rest:
        raise ValueError(f"{value!r} is not an Apprise URL: expected scheme://..., e.g. 'json://host/path'")
    return value.strip()


NotifyUrl = Annotated[
    str,
    BeforeValidator(_notify_url),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://.+", "description": "an Apprise URL"}),
]


class Alerting(_Model):
    """When a failing check fires and whom it tells (docs/history.md); a target's keys override the defaults'."""

    after: int = Field(default=3, ge=1, le=1000)
    resolve_after: int = Field(default=1, ge=1, le=1000)
    remind_every: RemindInterval = 86400.0
    notify: list[NotifyUrl] = Field(default_factory=list)


class Settings(_Model):
    """The keys of ``defaults:`` that every target may override."""

    timeout: PositiveDuration | None = None
    retries: int | None = Field(default=None, ge=0, le=20)
    backoff: Duration | None = None
    resolvers: list[Resolver] | None = Field(default=None, min_length=1)
    ca_bundle: str | None = None
    proxy: ProxyUrl | None = None
    severity: Literal["critical", "warning"] | None = None
    alerting: Alerting | None = None
    #: Connections in flight at once to one address and port (polite to small servers; queued fairly).
    per_host_concurrency: int | None = Field(default=None, ge=1, le=10_000)


class Defaults(Settings):
    pass


SETTING_KEYS = tuple(Settings.model_fields)
#: What a setting is when neither the target, the defaults nor the command line give it.
BUILTIN_SETTINGS: dict[str, Any] = {
    "timeout": 5.0,
    "retries": 2,
    "backoff": 0.2,
    "resolvers": ["system"],
    "ca_bundle": None,
    "proxy": None,
    "severity": "critical",
    "alerting": None,
    "per_host_concurrency": 4,
}


# -- vantages (issue 17) -------------------------------------------------------------------------------------------

VantageName = Annotated[str, Field(pattern=VANTAGE_NAME_PATTERN)]


def _vantage_spec(value: object) -> str | None:
    """An execnet gateway spec, or None for ``off`` (which removes a vantage, e.g. an included one)."""
    return None if is_off(value) else check_spec(value)


VantageSpec = Annotated[
    str | None,
    BeforeValidator(_vantage_spec),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "minLength": 1}, {"const": False}, {"const": OFF}],
            "description": "an execnet gateway spec (popen//python=..., ssh=user@host//python=python3, "
            "socket=host:port) or off",
        }
    ),
]


class VantageOverride(_Model):
    """``from: {vantage: ...}`` of a target: sections (and ``host``) that replace the target's for one vantage.

    A section given here replaces the target's section of that name whole; ``null`` (or ``[]`` for the list
    sections) removes it. The merged target validates as a target does (:meth:`Target.for_vantage`).
    """

    host: Host | None = None
    dns: DnsSection | None = None
    tcp: TcpSection | None = None
    tls: Annotated[list[TlsSection] | None, BeforeValidator(_as_list)] = None
    http: Annotated[list[HttpCheck] | None, BeforeValidator(_as_list)] = None
    cors: Annotated[list[CorsCheck] | None, BeforeValidator(_as_list)] = None
    grpc: Annotated[list[GrpcCheck] | None, BeforeValidator(_as_list)] = None
    icmp: IcmpSection | None = None

    @model_validator(mode="after")
    def _host_stays(self) -> VantageOverride:
        if "host" in self.model_fields_set and self.host is None:
            raise ValueError("host cannot be removed for a vantage; give another host or leave the key out")
        return self

    def changes(self) -> dict[str, Any]:
        """The target fields this override replaces (a removed list section becomes ``[]``)."""
        lists = ("tls", "http", "cors", "grpc")
        return {
            key: ([] if getattr(self, key) is None and key in lists else getattr(self, key))
            for key in self.model_fields_set
        }


class Target(Settings):
    name: str = Field(pattern=_NAME_PATTERN, max_length=200)
    host: Host
    tags: list[Annotated[str, Field(pattern=_TAG_PATTERN)]] = Field(default_factory=list)
    dns: DnsSection | None = None
    tcp: TcpSection | None = None
    tls: Annotated[list[TlsSection], BeforeValidator(_as_list)] = Field(default_factory=list)
    http: Annotated[list[HttpCheck], BeforeValidator(_as_list)] = Field(default_factory=list)
    cors: Annotated[list[CorsCheck], BeforeValidator(_as_list)] = Field(default_factory=list)
    grpc: Annotated[list[GrpcCheck], BeforeValidator(_as_list)] = Field(default_factory=list)
    icmp: IcmpSection | None = None
    #: Issue 17: the vantages this target is checked from (None: every vantage of the run).
    vantages: list[VantageName] | None = Field(default=None, min_length=1)
    #: Issue 17: per-vantage replacements of sections and ``host``.
    from_: dict[VantageName, VantageOverride] = Field(default_factory=dict, alias="from")

    def checked_from(self, vantage: str) -> bool:
        """Whether the target is checked from ``vantage`` (its ``vantages:`` list, when it has one)."""
        return self.vantages is None or vantage in self.vantages

    def for_vantage(self, vantage: str | None) -> Target:
        """The target as seen from ``vantage``: its ``from`` entry merged in, validated as a target.

        Raises pydantic's ``ValidationError`` when the merged target breaks a rule that spans
        sections (the loader reports it at the ``from`` entry). No entry: the target itself.
        """
        override = self.from_.get(vantage) if vantage is not None else None
        if override is None:
            return self
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return Target.model_validate({**fields, **override.changes(), "from_": {}})

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        reserved = sorted(set(tags) & RESERVED_TAGS)
        if reserved:
            raise ValueError(
                f"tag {reserved[0]!r} is one of pytest's own markers and would change how items run; choose another name"
            )
        return list(dict.fromkeys(tags))

    @model_validator(mode="after")
    def _connect_to_needs_an_address(self) -> Target:
        if any(h.connect_to == "host" for h in self.http):
            try:
                ipaddress.ip_address(self.host.strip("[]"))
            except ValueError:
                raise ValueError(
                    f"connect_to: host needs the target's host to be an IP address, not {self.host!r}"
                    " (a name is resolved anyway: put it in the url)"
                ) from None
        return self

    @model_validator(mode="after")
    def _one_group_per_tls_port(self) -> Target:
        ports = [t.port for t in self.tls]
        duplicate = next((p for p in ports if ports.count(p) > 1), None)
        if duplicate is not None:
            raise ValueError(f"two tls groups for port {duplicate}; merge them into one")
        return self

    @model_validator(mode="after")
    def _one_grpc_check_per_service(self) -> Target:
        seen = [(g.port, g.service) for g in self.grpc]
        duplicate = next((k for k in seen if seen.count(k) > 1), None)
        if duplicate is not None:
            raise ValueError(f"two grpc checks for port {duplicate[0]} service {duplicate[1]!r}; keep one")
        return self


class Group(_Model):
    """A failover group (issue 19): the service is up when ``min_passing`` of its targets are."""

    name: str = Field(pattern=_NAME_PATTERN, max_length=200)
    any_of: list[Annotated[str, Field(pattern=_NAME_PATTERN)]] = Field(min_length=1)
    min_passing: int = Field(default=1, ge=1)
    prefer: str | None = None
    severity: Literal["critical", "warning"] | None = None
    tags: list[Annotated[str, Field(pattern=_TAG_PATTERN)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Group:
        if self.name in self.any_of:
            raise ValueError(f"group {self.name!r} lists itself in any_of; a group is over targets")
        duplicate = next((m for m in self.any_of if self.any_of.count(m) > 1), None)
        if duplicate is not None:
            raise ValueError(f"{duplicate!r} is listed twice in any_of; keep one")
        if self.min_passing > len(self.any_of):
            raise ValueError(f"min_passing {self.min_passing} is more than the {len(self.any_of)} targets of any_of")
        if self.prefer is not None and self.prefer not in self.any_of:
            raise ValueError(f"prefer {self.prefer!r} is not one of any_of ({', '.join(self.any_of)})")
        reserved = sorted(set(self.tags) & RESERVED_TAGS)
        if reserved:
            raise ValueError(f"tag {reserved[0]!r} is one of pytest's own markers; choose another name")
        return self


class Inventory(_Model):
    """One environment's expectations (after includes, interpolation and path resolution)."""

    version: Literal[1]
    environment: str | None = Field(default=None, pattern=_NAME_PATTERN, max_length=100)
    defaults: Defaults = Field(default_factory=Defaults)
    secrets: dict[str, str | int | float] = Field(default_factory=dict)
    targets: list[Target] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    #: Issue 17: name -> execnet gateway spec (None: ``off``, removing a vantage an include declares).
    vantages: dict[VantageName, VantageSpec] = Field(default_factory=dict)

    def resolved_setting(self, target: Target, key: str) -> Any:
        """A target's value for a setting: target, then defaults, then the built-in value."""
        value = getattr(target, key)
        if value is None:
            value = getattr(self.defaults, key)
        return BUILTIN_SETTINGS[key] if value is None else value

    def resolver_specs(self, target: Target) -> tuple[ResolverSpec, ...]:
        return tuple(parse_resolver(r) for r in self.resolved_setting(target, "resolvers"))

    def resolved_alerting(self, target: Target) -> Alerting:
        """A target's ``alerting``, key by key: the target's keys, then the defaults', then the built-in ones."""
        merged: dict[str, Any] = {}
        for block in (self.defaults.alerting, target.alerting):
            if block is not None:
                merged.update({key: getattr(block, key) for key in block.model_fields_set})
        return Alerting.model_construct(**{**Alerting().model_dump(), **merged})
