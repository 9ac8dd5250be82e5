"""Known documents for the report tests, built with json_report.build_document like the sink does."""

from __future__ import annotations

from typing import Any

from pytest_autoglm.reporting.json_report import build_document


def fact(check: str, target: str, subject: str, outcome: str = "passed", **kw: Any) -> dict[str, Any]:
    env = kw.pop("environment", "prod")
    base = {
        "id": f"{check}[{env}:{target}:{subject}]",
        "environment": env,
        "inventory": f"{env}.yaml",
        "target": target,
        "check": check,
        "subject": subject,
        "severity": "critical",
        "outcome": outcome,
        "layer": None,
        "reason": None,
        "message": "",
        "address": None,
        "attempts": 1,
        "duration_ms": 12.3,
        "details": {},
    }
    base.update(kw)
    return base


TLS_OK_DETAILS = {
    "address": "203.0.113.10",
    "port": 443,
    "sni": "api.example.com",
    "version": "TLSv1.3",
    "cipher": "TLS_AES_256_GCM_SHA384",
    "subject": "CN=api.example.com",
    "issuer": "CN=Example Issuing CA,O=Example",
    "sans": ["api.example.com", "www.example.com"],
    "not_before": "2026-09-01T00:00:00Z",
    "not_after": "2027-03-01T12:00:00Z",
    "days_left": 96,
}


def known_results() -> list[dict[str, Any]]:
    results = [
        fact(
            "dns",
            "api",
            "A",
            address=None,
            message="api.example.com A: 203.0.113.10 (2 resolvers agree)",
            duration_ms=4.2,
            details={"answers": {"system": ["203.0.113.10"]}},
        ),
        fact("tcp", "api", "443/open", address="203.0.113.10", message="203.0.113.10 port 443: open", duration_ms=1.8),
        fact(
            "tcp", "api", "22/closed", address="203.0.113.10", message="203.0.113.10 port 22 refused", duration_ms=0.9
        ),
        fact(
            "tls",
            "api",
            "443",
            address="203.0.113.10",
            message="TLSv1.3 ok; certificate valid until 2027-03-01",
            duration_ms=55.0,
            details=TLS_OK_DETAILS,
        ),
        fact(
            "http",
            "api",
            "GET https://api.example.com/health",
            address="203.0.113.10",
            attempts=3,
            duration_ms=812.5,
            message="GET https://api.example.com/health: status 200 in 212ms",
            details={
                "status": 200,
                "timings_ms": {"dns": 3.1, "connect": 2.0, "tls": 21.4, "first_byte": 180.2, "total": 212.4},
            },
        ),
        fact(
            "cors",
            "api",
            "https://app.example.com",
            outcome="failed",
            severity="warning",
            warned=True,
            layer="cors",
            reason="not_allowed",
            address="203.0.113.10",
            duration_ms=40.1,
            message="https://app.example.com: Access-Control-Allow-Origin missing in the preflight answer",
            details={"headers": {"access-control-allow-methods": "GET"}},
        ),
        fact("dns", "db", "A", outcome="passed", message="db.internal A: 10.0.0.5", duration_ms=3.3),
        fact(
            "tcp",
            "db",
            "5432/open",
            outcome="failed",
            layer="tcp",
            reason="filtered",
            address="10.0.0.5",
            attempts=3,
            duration_ms=6412.5,
            message="db.internal (10.0.0.5) port 5432: no answer within 2s (3 attempts); expected open",
            details={"port": 5432},
        ),
        fact(
            "tls",
            "db",
            "5432",
            outcome="failed",
            layer="tcp",
            reason="upstream",
            address="10.0.0.5",
            attempts=0,
            duration_ms=0.0,
            message="tcp[prod:db:5432/open] failed (filtered): no answer",
            details={"upstream": "tcp[prod:db:5432/open]", "upstream_reason": "filtered"},
        ),
        fact(
            "dns",
            "ghost",
            "A",
            outcome="failed",
            layer="dns",
            reason="nxdomain",
            duration_ms=8.0,
            message="ghost.example.com A: NXDOMAIN from 192.0.2.53",
            details={"resolvers": {"192.0.2.53": "NXDOMAIN"}},
        ),
        fact(
            "tcp",
            "ghost",
            "443/open",
            outcome="failed",
            layer="dns",
            reason="upstream",
            attempts=0,
            duration_ms=0.0,
            message="dns[prod:ghost:A] failed (nxdomain)",
            details={"upstream": "dns[prod:ghost:A]", "upstream_reason": "nxdomain"},
        ),
        fact(
            "http",
            "ghost",
            "GET https://ghost.example.com/",
            outcome="failed",
            layer="dns",
            reason="upstream",
            attempts=0,
            duration_ms=0.0,
            message="dns[prod:ghost:A] failed (nxdomain)",
            details={"upstream": "dns[prod:ghost:A]", "upstream_reason": "nxdomain"},
        ),
        fact(
            "tls",
            "legacy",
            "443",
            outcome="failed",
            layer="tls",
            reason="expired",
            address="198.51.100.7",
            duration_ms=61.0,
            message="198.51.100.7:443 (SNI legacy.example.com): certificate expired on 2026-10-01",
            details={
                **TLS_OK_DETAILS,
                "address": "198.51.100.7",
                "subject": "CN=legacy.example.com",
                "not_after": "2026-10-01T00:00:00Z",
                "days_left": -55,
                "version": "TLSv1.2",
            },
        ),
    ]
    for order, entry in enumerate(results):
        entry["order"] = order
    return results


def known_document(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "environment": "prod",
        "inventory": "prod.yaml",
        "started_at": "2026-11-25T02:00:00Z",
        "duration_s": 6.5,
        "results": known_results(),
        "partial": False,
    }
    args.update(kw)
    return build_document(**args)
