"""Inventory -> ordered checks with stable ids and their layer dependencies.

One :class:`Check` is one pytest item. Ids follow the contract:
``dns[prod:api:A]``, ``tcp[prod:api:443/open]``, ``tls[prod:api:443]``,
``http[prod:api:GET https://api.example.com/health]``,
``cors[prod:api:https://app.example.com]``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from pytest_autoglm.core.records import Redact
from pytest_autoglm.core.resolvers import ResolverSpec
from pytest_autoglm.core.vocabulary import CORS_HOLES, REFLECTION_IMPLIES, WARNING_MISCONFIGURATIONS, Layer
from pytest_autoglm.inventory.models import (
    BUILTIN_SETTINGS,
    CorsCheck,
    GrpcCheck,
    HttpCheck,
    IcmpSection,
    Target,
    TlsSection,
)
from pytest_autoglm.inventory.secrets import Redactor
from pytest_autoglm.inventory.urls import url_host_port
from pytest_autoglm.inventory.validate import LoadedInventory
from pytest_autoglm.inventory.vantages import LOCAL_VANTAGE as _LOCAL
from pytest_autoglm.inventory.vantages import Vantage, effective_vantages

#: The vantage that is the running pytest process itself (always there unless ``local=off``).
LOCAL_VANTAGE = _LOCAL


def vantage_marker(vantage: str) -> str:
    """The pytest marker of the items checked from ``vantage`` (``-m vantage_internet``)."""
    return f"vantage_{vantage}"


def check_key(check_id: str) -> str:
    """A check's id without its ``@vantage``: the same expectation as seen from every vantage.

    ``tcp[prod:api:8080/open@internet]`` -> ``tcp[prod:api:8080/open]``; an id without a vantage is its own key.
    """
    if not check_id.endswith("]") or "@" not in check_id:
        return check_id
    head, _, vantage = check_id[:-1].rpartition("@")
    return f"{head}]" if vantage and "/" not in vantage and " " not in vantage else check_id


#: DNS record types whose lookup failure means a connection to the name cannot be made.
ADDRESS_RECORD_TYPES = frozenset({"A", "AAAA", "CNAME"})


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Command-line overrides of the inventory's settings (None: keep the inventory's)."""

    timeout: float | None = None
    retries: int | None = None
    per_host_concurrency: int | None = None
    #: Issue 17: ``--autoglm-vantage`` pairs in command-line order, (name, spec or None for off).
    vantages: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation, ready for the engine; frozen so workers and threads can share it."""

    id: str
    kind: Layer
    environment: str
    inventory: str
    target: str
    subject: str
    host: str
    severity: str
    tags: tuple[str, ...]
    timeout: float
    retries: int
    backoff: float
    resolvers: tuple[ResolverSpec, ...]
    ca_bundle: str | None
    proxy: str | None
    #: What is expected; which class is told by ``kind`` (see :data:`CheckSpec`).
    spec: CheckSpec
    depends_on: tuple[str, ...] = ()
    index: int = 0
    #: The client certificate (PEM paths) an http/cors/tls check presents, if any.
    client_cert: str | None = None
    client_key: str | None = None
    #: False when the tls group of the check's port says ``verify: false``.
    verify: bool = True
    #: At most this many of the run's connections in flight to one address and port (engine).
    per_host_concurrency: int = 4
    #: Masks the inventory's secrets; probes pass every message and detail through it.
    redact: Redact = field(default_factory=Redactor, compare=False, hash=False, repr=False)
    #: The vantage (issue 17) the check runs from: None when the run defines no vantages (ids keep
    #: their 1.0 form), else a name such as ``local`` (this process) or ``internet`` (an execnet gateway).
    vantage: str | None = None

    @property
    def host_is_name(self) -> bool:
        return is_name(self.host)

    @property
    def deadline(self) -> float:
        """Upper bound of the check's own time: every attempt and the longest backoffs."""
        backoffs = sum(self.backoff * (1 << i) for i in range(self.retries))
        return self.timeout * (self.retries + 1) + backoffs


@dataclass(frozen=True, slots=True)
class DnsCheckSpec:
    """One record type of a target's ``dns`` section (``kind`` dns)."""

    rdtype: str
    mode: str
    values: tuple[str, ...]
    consistent: bool


@dataclass(frozen=True, slots=True)
class TcpCheckSpec:
    """One port of a target's ``tcp`` section and what it should be (``kind`` tcp)."""

    port: int
    expect: str


@dataclass(frozen=True, slots=True)
class CorsOriginSpec:
    """One origin (or one misconfiguration probe) of a ``cors`` entry (``kind`` cors)."""

    check: CorsCheck
    origin: str | None  # None for a misconfiguration probe
    should_allow: bool
    hole: str | None = None


@dataclass(frozen=True, slots=True)
class GrpcSpec:
    """One ``grpc`` entry (``kind`` grpc) and the SNI of the tls group of its port, if any."""

    check: GrpcCheck
    sni: str | None = None


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """The one item of a failover group (``kind`` group): ``members`` pairs each target with its
    checks' ids and severities, in ``any_of`` order."""

    members: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    min_passing: int
    prefer: str | None = None


#: A check's expectation, tagged by ``Check.kind``: dns -> DnsCheckSpec, tcp -> TcpCheckSpec,
#: tls -> TlsSection, http -> HttpCheck, cors -> CorsOriginSpec, grpc -> GrpcSpec (the inventory's own models
#: where they are already the whole expectation).
CheckSpec: TypeAlias = (
    DnsCheckSpec | TcpCheckSpec | TlsSection | HttpCheck | CorsOriginSpec | GrpcSpec | GroupSpec | IcmpSection
)


def is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True
    return False


def plan_vantages(loaded: LoadedInventory, overrides: RunSettings = RunSettings()) -> tuple[Vantage, ...] | None:
    """The vantages one inventory is checked from with the command line's (issue 17), in plan order.

    None: the run defines no vantages (ids keep their 1.0 form). An empty tuple: all switched off.
    """
    return effective_vantages(loaded.model.vantages, overrides.vantages)


def build_plan(loaded: LoadedInventory, overrides: RunSettings = RunSettings(), first_index: int = 0) -> list[Check]:
    """Every check of one inventory, in inventory order, with dependencies by id.

    ``index`` numbers the checks from ``first_index`` (the run's order across inventories). With
    vantages, each target (outer) is planned per vantage (inner), merged with its ``from`` entry for
    that vantage; ids carry ``@vantage`` and dependencies stay within one vantage.
    """
    vantages = plan_vantages(loaded, overrides)
    names: tuple[str | None, ...] = (None,) if vantages is None else tuple(v.name for v in vantages)
    checks: list[Check] = []
    for target in loaded.model.targets:
        for vantage in names:
            if vantage is not None and not target.checked_from(vantage):
                continue
            # Without vantages the process is still the vantage ``local``: its ``from`` entry applies.
            seen_from = target.for_vantage(vantage or LOCAL_VANTAGE)
            checks.extend(_target_checks(loaded, seen_from, overrides, first_index + len(checks), vantage))
    checks.extend(_group_checks(loaded, checks, overrides, first_index + len(checks), names))
    return checks


def _group_checks(
    loaded: LoadedInventory,
    planned: list[Check],
    overrides: RunSettings,
    first: int,
    vantages: tuple[str | None, ...] = (None,),
) -> list[Check]:
    """Failover groups (issue 19): one item per group, with the group's severity; its ``degraded``
    verdict (the preferred member down, another serving) is a warning of its own (``engine/groups.py``).

    With vantages, one item per group and vantage over the members' checks from that vantage, for each
    vantage at least one member is checked from (``group[prod:web@lan]``).
    """
    model = loaded.model
    by_target: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for check in planned:
        by_target.setdefault((check.target, check.vantage), []).append((check.id, check.severity))
    out: list[Check] = []
    for group, vantage in ((g, v) for g in model.groups for v in vantages):
        if vantage is not None and not any((name, vantage) in by_target for name in group.any_of):
            continue
        members = tuple((name, tuple(by_target.get((name, vantage), ()))) for name in group.any_of)
        severity = group.severity or model.defaults.severity or BUILTIN_SETTINGS["severity"]
        at = f"@{vantage}" if vantage is not None else ""
        out.append(
            Check(
                id=f"{Layer.GROUP}[{loaded.environment}:{group.name}{at}]",
                kind=Layer.GROUP,
                environment=loaded.environment,
                inventory=loaded.display,
                target=group.name,
                subject="any_of",
                host=group.name,
                severity=severity,
                tags=tuple(group.tags),
                timeout=overrides.timeout or model.defaults.timeout or BUILTIN_SETTINGS["timeout"],
                retries=0,
                backoff=0.0,
                resolvers=(),
                ca_bundle=None,
                proxy=None,
                spec=GroupSpec(members, group.min_passing, group.prefer),
                index=first + len(out),
                redact=loaded.redactor,
                vantage=vantage,
            )
        )
    return out


def target_settings(loaded: LoadedInventory, target: Target, overrides: RunSettings = RunSettings()) -> dict[str, Any]:
    """The fields every check of ``target`` shares: the one place settings are resolved."""
    model = loaded.model

    def setting(key: str) -> Any:
        return model.resolved_setting(target, key)

    return {
        "environment": loaded.environment,
        "inventory": loaded.display,
        "target": target.name,
        "host": target.host,
        "severity": setting("severity"),
        "tags": tuple(target.tags),
        "timeout": overrides.timeout if overrides.timeout is not None else setting("timeout"),
        "retries": overrides.retries if overrides.retries is not None else setting("retries"),
        "backoff": setting("backoff"),
        "resolvers": model.resolver_specs(target),
        "ca_bundle": setting("ca_bundle"),
        "proxy": setting("proxy"),
        "per_host_concurrency": (
            overrides.per_host_concurrency
            if overrides.per_host_concurrency is not None
            else setting("per_host_concurrency")
        ),
        "redact": loaded.redactor,
    }


def make_check(
    loaded: LoadedInventory,
    target: Target,
    kind: Layer,
    subject: str,
    spec: CheckSpec,
    overrides: RunSettings = RunSettings(),
) -> Check:
    """A single check outside the plan (users' own tests), with the target's settings."""
    return Check(
        id=f"{kind}[{loaded.environment}:{target.name}:{subject}]",
        kind=kind,
        subject=subject,
        spec=spec,
        **target_settings(loaded, target, overrides),
    )


def _target_checks(
    loaded: LoadedInventory, target: Target, overrides: RunSettings, first_index: int, vantage: str | None = None
) -> list[Check]:
    env = loaded.environment
    base = target_settings(loaded, target, overrides)
    out: list[Check] = []
    ids: set[str] = set()
    at = f"@{vantage}" if vantage is not None else ""  # issue 17: just before the closing bracket

    def add(kind: Layer, subject: str, spec: CheckSpec, depends_on: tuple[str, ...] = (), **changes: Any) -> Check:
        subject = loaded.redactor(subject)  # a URL may carry a secret: ids and reports never do
        check_id = f"{kind}[{env}:{target.name}:{subject}{at}]"
        n = 2
        while check_id in ids:  # the same url twice: keep ids unique and stable
            check_id = f"{kind}[{env}:{target.name}:{subject} #{n}{at}]"
            n += 1
        ids.add(check_id)
        fields = {**base, **changes, "index": first_index + len(out), "vantage": vantage}
        check = Check(id=check_id, kind=kind, subject=subject, spec=spec, depends_on=depends_on, **fields)
        out.append(check)
        return check

    dns_ids: dict[str, str] = {}
    if target.dns is not None:
        dns_ids = {
            rdtype: add(Layer.DNS, rdtype, DnsCheckSpec(rdtype, exp.mode, exp.values, target.dns.consistent)).id
            for rdtype, exp in target.dns.expectations()
        }
    # Only the lookups a connection makes can block it (spec: a failing MX/TXT expectation blocks nothing).
    name_deps = tuple(i for t, i in dns_ids.items() if t in ADDRESS_RECORD_TYPES) if is_name(target.host) else ()

    if target.icmp is not None:  # issue 19: is the host up at all (blocks nothing above it)
        add(Layer.ICMP, "reachable" if target.icmp.reachable else "blocked", target.icmp, name_deps)

    open_by_port: dict[int, str] = {}
    if target.tcp is not None:
        for expect in ("open", "closed", "refused", "filtered"):
            for port in getattr(target.tcp, expect):
                check = add(Layer.TCP, f"{port}/{expect}", TcpCheckSpec(port, expect), name_deps)
                if expect == "open":
                    open_by_port[port] = check.id

    tls_by_port: dict[int, str] = {}
    for tls in target.tls:
        deps = name_deps + ((open_by_port[tls.port],) if tls.port in open_by_port else ())
        tls_by_port[tls.port] = add(Layer.TLS, str(tls.port), tls, deps).id

    def web_deps(url: str) -> tuple[str, ...]:
        host, port = url_host_port(url)
        if host.lower().rstrip(".") != target.host.lower().rstrip(".").strip("[]"):
            return name_deps  # another host: only the target's name must resolve
        lower = tuple(d for d in (open_by_port.get(port), tls_by_port.get(port)) if d)
        return name_deps + lower

    def client_identity(url: str) -> dict[str, Any]:
        """The client certificate a web check presents: the tls group of its port, else any that has one."""
        port = url_host_port(url)[1]
        identity: dict[str, Any] = {}
        same_port = next((t for t in target.tls if t.port == port), None)
        if same_port is not None and not same_port.verify:
            identity["verify"] = False
        groups = sorted(target.tls, key=lambda t: t.port != port)
        chosen = next((t for t in groups if t.client_cert), None)
        if chosen is not None:
            identity.update(client_cert=chosen.client_cert, client_key=chosen.client_key)
        return identity

    for http in target.http:
        add(Layer.HTTP, f"{http.method} {http.url}", http, web_deps(http.url), **client_identity(http.url))

    several = len(target.cors) > 1
    for cors in target.cors:
        deps = web_deps(cors.url)
        identity = client_identity(cors.url)
        suffix = f" {cors.url}" if several else ""
        for origin in cors.allow:
            add(Layer.CORS, origin + suffix, CorsOriginSpec(cors, origin, True), deps, **identity)
        implied: list[int] = []  # positions in ``out`` of the items a reflecting server fails anyway
        for origin in cors.deny:
            implied.append(len(out))
            add(Layer.CORS, origin + suffix, CorsOriginSpec(cors, origin, False), deps, **identity)
        reflect_id: str | None = None
        if cors.probe_misconfigurations:
            for hole in CORS_HOLES:  # besides the declared origins
                if hole in ("suffix_bypass", "prefix_bypass") and not any(o != "null" for o in cors.allow):
                    continue  # bypasses are derived from an allowed origin
                if hole == "null_origin" and "null" in (*cors.allow, *cors.deny):
                    continue  # the user's own expectation about null already says what is right
                changes = {**identity, **({"severity": "warning"} if hole in WARNING_MISCONFIGURATIONS else {})}
                if hole in REFLECTION_IMPLIES:
                    implied.append(len(out))
                spec = CorsOriginSpec(cors, None, False, hole)
                check = add(Layer.CORS, f"misconfig/{hole}{suffix}", spec, deps, **changes)
                if hole == "reflect_any_origin":
                    reflect_id = check.id
        if reflect_id is not None:  # one root cause once: these are its consequences (reason upstream)
            for i in implied:
                out[i] = replace(out[i], depends_on=(*out[i].depends_on, reflect_id))

    # grpc (issue 19): like http, relies on the name, tcp open and the tls group of its port
    for grpc in target.grpc:
        lower = tuple(d for d in (open_by_port.get(grpc.port), tls_by_port.get(grpc.port) if grpc.tls else None) if d)
        group = next((t for t in target.tls if t.port == grpc.port), None)
        tls_identity: dict[str, Any] = {}
        if grpc.tls and group is not None:
            tls_identity = {"verify": group.verify, "client_cert": group.client_cert, "client_key": group.client_key}
        subject = f"{grpc.port}/{grpc.service}" if grpc.service else str(grpc.port)
        add(Layer.GRPC, subject, GrpcSpec(grpc, group.sni if group else None), name_deps + lower, **tls_identity)
    return out
