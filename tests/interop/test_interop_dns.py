"""DNS verdicts of the plugin against nsd (authoritative) and unbound (resolver, DoT), cross-checked with dig.

Two plugin runs, started together: ``dns.yaml`` (every UDP/TCP case, and DoT
with a certificate the system store does not trust) and ``dot.yaml`` (DoT with
the test's root CA trusted through ``SSL_CERT_FILE``: the inventory's
``ca_bundle`` does not apply to ``tls://`` resolvers). What the zones hold is
in ``tests/interop/dns_lab.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.interop.dns_lab import DnsLab
from tests.interop.plugin_run import (
    Case,
    PluginRun,
    check_case,
    failed,
    finish_plugin,
    inventory_yaml,
    params,
    passed,
    start_plugin,
    tool,
    uncovered,
)

WWW = ["127.0.0.10", "127.0.0.11"]

CASES: list[Case] = [
    passed("a", "dns"),
    failed("a-mismatch", "dns", "dns", "mismatch"),
    failed("a-nxdomain", "dns", "dns", "nxdomain"),
    passed("a-absent-nxdomain", "dns"),
    failed("aaaa-nodata", "dns", "dns", "nodata"),
    passed("aaaa-absent-nodata", "dns"),
    failed("a-servfail-broken-delegation", "dns", "dns", "servfail"),
    failed("a-servfail-retried", "dns", "dns", "servfail", attempts=2, note="retries: 1; SERVFAIL is transient"),
    failed("a-nxdomain-not-retried", "dns", "dns", "nxdomain", attempts=1, note="retries: 1; NXDOMAIN is definite"),
    failed("a-refused", "dns", "dns", "refused"),
    failed("a-timeout", "dns", "dns", "timeout", note="unbound local-zone deny: drops the query"),
    passed("cname", "dns"),
    passed("a-through-cname", "dns"),
    passed("mx", "dns"),
    failed("mx-unexpected", "dns", "dns", "unexpected"),
    passed("mx-absent-nodata", "dns"),
    passed("txt-contains", "dns"),
    passed("txt-multi-string", "dns", note="one record of two strings compares as their concatenation"),
    failed("a-dangling-cname", "dns", "dns", "nxdomain", note="CNAME to a name that does not exist"),
    passed("a-wildcard", "dns"),
    passed("a-truncated-tcp-fallback", "dns", note="100 A records: truncated over UDP, retried over TCP"),
    failed("txt-missing", "dns", "dns", "mismatch"),
    passed("consistent", "dns", note="unbound and nsd give the same answer"),
    failed("inconsistent", "dns", "dns", "inconsistent", note="unbound local-data overrides the zone"),
    passed("tcp-resolver", "dns"),
    failed("nsd-direct-nxdomain", "dns", "dns", "nxdomain"),
    failed("dot-untrusted", "dns", "dns", "servfail", note="DoT certificate from a CA the system store lacks"),
    # Other checks of a target whose name does not resolve.
    failed("http-nxdomain", "http", "dns", "nxdomain"),
    failed("tcp-servfail", "tcp", "dns", "servfail"),
    failed("layered-nxdomain/dns", "dns", "dns", "nxdomain", target="layered-nxdomain"),
    failed("layered-nxdomain/tcp", "tcp", "dns", "upstream", target="layered-nxdomain"),
    passed("tcp-by-name", "tcp", note="web.interop.test -> 127.0.0.1, nsd's TCP port"),
]
DOT_CASES: list[Case] = [
    passed("dot-a", "dns"),
    failed("dot-nxdomain", "dns", "dns", "nxdomain"),
    failed("dot-servfail", "dns", "dns", "servfail"),
]
BY_ID = {c.id: c for c in [*CASES, *DOT_CASES]}
assert len(BY_ID) == len(CASES) + len(DOT_CASES)


def _targets(lab: DnsLab) -> list[dict[str, Any]]:
    def dns(name: str, host: str, **records: Any) -> dict[str, Any]:
        return {"name": name, "host": host, "dns": records}

    return [
        dns("a", "www.interop.test", A=WWW),
        dns("a-mismatch", "www.interop.test", A=["127.0.0.99"]),
        dns("a-nxdomain", "nope.interop.test", A=WWW),
        dns("a-absent-nxdomain", "nope.interop.test", A="absent"),
        dns("aaaa-nodata", "www.interop.test", AAAA="present"),
        dns("aaaa-absent-nodata", "www.interop.test", AAAA="absent"),
        dns("a-servfail-broken-delegation", "broken.interop.test", A="present"),
        {**dns("a-servfail-retried", "broken.interop.test", A="present"), "retries": 1, "backoff": "10ms"},
        {**dns("a-nxdomain-not-retried", "nope.interop.test", A="present"), "retries": 1, "backoff": "10ms"},
        dns("a-refused", "x.refused.interop.test", A="present"),
        {**dns("a-timeout", "x.silent.interop.test", A="present"), "timeout": "1s"},
        dns("cname", "alias.interop.test", CNAME="www.interop.test."),
        dns("a-through-cname", "alias.interop.test", A=WWW),
        dns("mx", "mail.interop.test", MX=["10 mx.interop.test."]),
        dns("mx-unexpected", "mail.interop.test", MX="absent"),
        dns("mx-absent-nodata", "www.interop.test", MX="absent"),
        dns("txt-contains", "mail.interop.test", TXT={"contains": ["v=spf1 -all"]}),
        dns("txt-multi-string", "multi.interop.test", TXT=["part1part2"]),
        dns("a-dangling-cname", "dangling.interop.test", A="present"),
        dns("a-wildcard", "anything.wild.interop.test", A=["127.0.0.30"]),
        dns("a-truncated-tcp-fallback", "many.interop.test", A=[f"127.0.1.{i}" for i in range(1, 101)]),
        dns("txt-missing", "mail.interop.test", TXT={"contains": ["v=DMARC1; p=none"]}),
        {**dns("consistent", "www.interop.test", A=WWW, consistent=True), "resolvers": [lab.unbound, lab.nsd]},
        {
            **dns("inconsistent", "split.interop.test", A="present", consistent=True),
            "resolvers": [lab.unbound, lab.nsd],
        },
        {**dns("tcp-resolver", "www.interop.test", A=WWW), "resolvers": [f"tcp://{lab.unbound}"]},
        {**dns("nsd-direct-nxdomain", "nope.interop.test", A="present"), "resolvers": [lab.nsd]},
        {**dns("dot-untrusted", "www.interop.test", A=WWW), "resolvers": [lab.dot]},
        {"name": "http-nxdomain", "host": "nope.interop.test", "http": [{"url": "http://nope.interop.test/health"}]},
        {"name": "tcp-servfail", "host": "broken.interop.test", "tcp": {"open": [lab.nsd_port]}},
        {
            "name": "layered-nxdomain",
            "host": "nope.interop.test",
            "dns": {"A": "present"},
            "tcp": {"open": [lab.nsd_port]},
        },
        {"name": "tcp-by-name", "host": "web.interop.test", "tcp": {"open": [lab.nsd_port]}},
    ]


def _dot_targets(lab: DnsLab) -> list[dict[str, Any]]:
    return [
        {"name": "dot-a", "host": "www.interop.test", "dns": {"A": WWW}},
        {"name": "dot-nxdomain", "host": "nope.interop.test", "dns": {"A": "present"}},
        {"name": "dot-servfail", "host": "broken.interop.test", "dns": {"A": "present"}},
    ]


@dataclass
class DnsRuns:
    dns: PluginRun
    dot: PluginRun
    runs: dict[str, PluginRun] = field(default_factory=dict)


@pytest.fixture(scope="session")
def dns_runs(dns_stack: DnsLab, interop_dir: Path) -> DnsRuns:
    """The two plugin runs, in parallel (two subprocesses)."""
    base = interop_dir / "dns-runs"
    plain = inventory_yaml(
        "dns", {"timeout": "3s", "retries": 0, "resolvers": [dns_stack.unbound]}, _targets(dns_stack)
    )
    dot = inventory_yaml("dot", {"timeout": "3s", "retries": 0, "resolvers": [dns_stack.dot]}, _dot_targets(dns_stack))
    procs = {
        "dns": start_plugin(base / "dns", "dns", plain),
        "dot": start_plugin(base / "dot", "dot", dot, extra_env={"SSL_CERT_FILE": str(dns_stack.dot_ca)}),
    }
    return DnsRuns(*(finish_plugin(proc, base / env, env) for env, proc in procs.items()))


@pytest.mark.parametrize("case", params(CASES))
def test_dns_verdict(dns_runs: DnsRuns, case: Case) -> None:
    check_case(dns_runs.dns, case)


@pytest.mark.parametrize("case", params(DOT_CASES))
def test_dot_verdict(dns_runs: DnsRuns, case: Case) -> None:
    check_case(dns_runs.dot, case)


@pytest.mark.parametrize("env", ["dns", "dot"])
def test_dns_run_is_complete_and_consistent(dns_runs: DnsRuns, env: str) -> None:
    run = getattr(dns_runs, env)
    assert uncovered(run, CASES if env == "dns" else DOT_CASES) == []
    assert not [r for r in run.results if r["outcome"] == "error"], run.output[-3000:]
    assert run.returncode == 1, run.output[-2000:]


# --------------------------------------------------------------------------- dig


@dataclass(frozen=True)
class Dig:
    """What ``dig`` says about the question behind ``case``: its status, and the answer records."""

    case: str
    name: str
    rdtype: str
    status: str  # NOERROR | NXDOMAIN | SERVFAIL | REFUSED | TIMEOUT
    answers: int | None = None  # records of that type in the answer section
    server: str = "unbound"  # unbound | nsd | tcp | dot
    contains: Sequence[str] = ()
    extra: Sequence[str] = ()  # more dig options
    says: str = ""  # dig's output contains this


DIGS = [
    Dig("a", "www.interop.test", "A", "NOERROR", 2, contains=WWW),
    Dig("a-mismatch", "www.interop.test", "A", "NOERROR", 2),
    Dig("a-nxdomain", "nope.interop.test", "A", "NXDOMAIN", 0),
    Dig("aaaa-nodata", "www.interop.test", "AAAA", "NOERROR", 0),
    Dig("a-servfail-broken-delegation", "broken.interop.test", "A", "SERVFAIL"),
    Dig("a-refused", "x.refused.interop.test", "A", "REFUSED"),
    Dig("a-timeout", "x.silent.interop.test", "A", "TIMEOUT"),
    Dig("cname", "alias.interop.test", "CNAME", "NOERROR", 1, contains=["www.interop.test."]),
    Dig("mx-unexpected", "mail.interop.test", "MX", "NOERROR", 1, contains=["10 mx.interop.test."]),
    Dig("txt-missing", "mail.interop.test", "TXT", "NOERROR", 1, contains=['"v=spf1 -all"']),
    Dig("txt-multi-string", "multi.interop.test", "TXT", "NOERROR", 1, contains=['"part1" "part2"']),
    Dig("a-dangling-cname", "dangling.interop.test", "A", "NXDOMAIN", 0, says="CNAME\tgone.interop.test."),
    Dig("a-wildcard", "anything.wild.interop.test", "A", "NOERROR", 1, contains=["127.0.0.30"]),
    Dig(
        "a-truncated-tcp-fallback", "many.interop.test", "A", "NOERROR", extra=["+ignore", "+bufsize=1232"], says=" tc"
    ),
    Dig("a-truncated-tcp-fallback", "many.interop.test", "A", "NOERROR", 100, server="tcp"),
    Dig("inconsistent", "split.interop.test", "A", "NOERROR", 1, contains=["127.0.0.99"]),
    Dig("inconsistent", "split.interop.test", "A", "NOERROR", 1, server="nsd", contains=["127.0.0.20"]),
    Dig("tcp-resolver", "www.interop.test", "A", "NOERROR", 2, server="tcp"),
    Dig("nsd-direct-nxdomain", "nope.interop.test", "A", "NXDOMAIN", 0, server="nsd"),
    Dig("dot-untrusted", "www.interop.test", "A", "NOERROR", 2, server="dot"),
]


def _dig(lab: DnsLab, d: Dig) -> list[str]:
    port = {"unbound": lab.unbound_port, "tcp": lab.unbound_port, "nsd": lab.nsd_port, "dot": lab.dot_port}[d.server]
    extra = {"tcp": ["+tcp"], "dot": ["+tls"], "nsd": ["+norecurse"]}.get(d.server, [])
    return [
        "dig", "@127.0.0.1", "-p", str(port), d.name, d.rdtype,
        "+time=1", "+tries=1", "+noauthority", "+noadditional", *extra, *d.extra,
    ]  # fmt: skip


def _parse_dig(out: str, rdtype: str) -> tuple[str, list[str]]:
    match = re.search(r"status: ([A-Z]+)", out)
    if match is None:
        return ("TIMEOUT" if "timed out" in out or "no servers could be reached" in out else "?"), []
    records = [
        " ".join(line.split()[4:])
        for line in out.splitlines()
        if line and not line.startswith(";") and len(line.split()) > 4 and line.split()[3] == rdtype
    ]
    return match.group(1), records


@pytest.mark.parametrize(
    "d", DIGS, ids=[f"{d.case}-{d.server}{'-' + d.extra[0].lstrip('+') if d.extra else ''}" for d in DIGS]
)
def test_dig_agrees(dns_stack: DnsLab, dns_runs: DnsRuns, d: Dig) -> None:
    argv = _dig(dns_stack, d)
    _code, out = tool(argv, timeout=10)
    status, records = _parse_dig(out, d.rdtype)
    run = dns_runs.dns
    case = BY_ID[d.case]
    verdict = run.find(case)
    plugin = f"plugin: {verdict['outcome']}/{verdict['layer']}/{verdict['reason']}: {verdict['message']}"
    assert status == d.status, f"{' '.join(argv)}: status {status}, expected {d.status}; {plugin}\n{out}"
    if d.answers is not None:
        assert len(records) == d.answers, f"{' '.join(argv)}: {records}; {plugin}\n{out}"
    for text in d.contains:
        assert text in records, f"{' '.join(argv)}: no {text!r} in {records}; {plugin}\n{out}"
    assert d.says in out, f"{' '.join(argv)}: no {d.says!r} in the output; {plugin}\n{out}"
    check_case(run, case)


def test_dig_over_tls_trusting_the_test_ca(dns_stack: DnsLab, dns_runs: DnsRuns) -> None:
    """dig verifies unbound's DoT certificate against the test root (as the plugin does with SSL_CERT_FILE)."""
    argv = [
        "dig", "@127.0.0.1", "-p", str(dns_stack.dot_port), "www.interop.test", "A", "+time=2", "+tries=1",
        "+tls", f"+tls-ca={dns_stack.dot_ca}", "+tls-hostname=dot.interop.test",
    ]  # fmt: skip
    _code, out = tool(argv, timeout=10)
    assert _parse_dig(out, "A")[0] == "NOERROR", out
    check_case(dns_runs.dot, BY_ID["dot-a"])
