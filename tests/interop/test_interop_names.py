"""Names resolved by unbound (from nsd's zone), connected to nginx: the whole stack at once.

``web.interop.test`` is 127.0.0.1 in the zone and a SAN of nginx's "valid"
certificate, so DNS, TCP, TLS and HTTP items of one target all pass through
real servers; a name under a broken delegation fails every item at the DNS
layer, once, as the root cause.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.dns_lab import DnsLab
from tests.interop.nginx_lab import NginxLab
from tests.interop.plugin_run import (
    Case,
    PluginRun,
    check_case,
    failed,
    inventory_yaml,
    params,
    passed,
    run_plugin,
    uncovered,
)

CASES = [
    passed("web/dns-a", "dns", target="web", subject="A"),
    passed("web/dns-aaaa-absent", "dns", target="web", subject="AAAA"),
    passed("web/tcp", "tcp", target="web"),
    passed("web/tls", "tls", target="web"),
    passed("web/https", "http", target="web"),
    failed("broken/dns", "dns", "dns", "servfail", target="broken"),
    failed("broken/tcp", "tcp", "dns", "upstream", target="broken"),
    failed("broken/tls", "tls", "dns", "upstream", target="broken"),
    failed("broken/http", "http", "dns", "upstream", target="broken"),
]


@pytest.fixture(scope="session")
def names_run(nginx: NginxLab, dns_stack: DnsLab, interop_dir: Path) -> PluginRun:
    port = nginx.ports["valid"]
    targets = [
        {
            "name": "web",
            "host": "web.interop.test",
            "dns": {"A": ["127.0.0.1"], "AAAA": "absent"},
            "tcp": {"open": [port]},
            "tls": {"port": port, "min_days_valid": 30},
            "http": [{"url": f"https://web.interop.test:{port}/ok", "body_contains": "ok"}],
        },
        {
            "name": "broken",
            "host": "broken.interop.test",
            "dns": {"A": "present"},
            "tcp": {"open": [port]},
            "tls": {"port": port},
            "http": [{"url": f"https://broken.interop.test:{port}/ok"}],
        },
    ]
    defaults = {"timeout": "3s", "retries": 0, "resolvers": [dns_stack.unbound], "ca_bundle": str(nginx.pki.root_pem)}
    return run_plugin(interop_dir / "names-run", "names", inventory_yaml("names", defaults, targets))


@pytest.mark.parametrize("case", params(CASES))
def test_names_verdict(names_run: PluginRun, case: Case) -> None:
    check_case(names_run, case)


def test_names_run_is_complete(names_run: PluginRun) -> None:
    assert uncovered(names_run, CASES) == []
    web = [r for r in names_run.results if r["target"] == "web" and r["check"] in ("tcp", "tls", "http")]
    assert {r["address"] for r in web} == {"127.0.0.1"}, [names_run.describe(r) for r in web]
