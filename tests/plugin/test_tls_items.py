"""TLS items through the whole plugin: trust via ca_bundle, hostname per target, layered on tcp."""

from __future__ import annotations

import json

import pytest
import trustme

from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.tcp_servers import free_port
from tests.fakes.tls_server import Issued, TlsServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_tls_items_verify_against_the_inventory_ca_bundle(pytester, ca):
    leaf = Issued.from_trustme(ca.issue_cert("secure.test"))
    ca.cert_pem.write_to_path(str(pytester.path / "ca.pem"))
    with TlsServer([leaf]) as server:
        zone = {"secure.test.": {"A": ["127.0.0.1"]}, "other.test.": {"A": ["127.0.0.1"]}}
        with FakeDnsServer(zone) as dns_server:
            (pytester.path / "tls.yaml").write_text(
                f"""\
version: 1
defaults: {{timeout: 2s, retries: 0, resolvers: ["{dns_server.address}"]}}
targets:
  - name: good
    host: secure.test
    ca_bundle: ca.pem
    tcp: {{open: [{server.port}]}}
    tls: {{port: {server.port}, min_days_valid: 30, accept: [TLSv1.2, TLSv1.3]}}
  - name: wrongname
    host: other.test
    ca_bundle: ca.pem
    tls: {{port: {server.port}}}
  - name: notrust
    host: secure.test
    tls: {{port: {server.port}}}
"""
            )
            result = pytester.runpytest("--autoglm-target", "tls.yaml")
    doc = json.loads((pytester.path / "reports" / "tls.json").read_text())
    by_id = {r["id"]: r for r in doc["results"]}
    good = by_id[f"tls[tls:good:{server.port}]"]
    assert good["outcome"] == "passed", good["message"]
    assert good["details"]["days_left"] >= 30
    assert good["address"] == "127.0.0.1"
    assert by_id[f"tls[tls:wrongname:{server.port}]"]["reason"] == "hostname"
    assert by_id[f"tls[tls:notrust:{server.port}]"]["reason"] == "untrusted"
    result.assert_outcomes(passed=2, failed=2)


def test_tls_item_fails_upstream_of_a_refused_port(pytester):
    port = free_port()
    (pytester.path / "down.yaml").write_text(
        f"version: 1\ndefaults: {{timeout: 1s, retries: 0}}\ntargets:\n  - name: api\n    host: 127.0.0.1\n"
        f"    tcp: {{open: [{port}]}}\n    tls: {{port: {port}}}\n"
    )
    result = pytester.runpytest("--autoglm-target", "down.yaml")
    result.assert_outcomes(failed=2)
    doc = json.loads((pytester.path / "reports" / "down.json").read_text())
    tls = next(r for r in doc["results"] if r["check"] == "tls")
    assert (tls["layer"], tls["reason"]) == ("tcp", "upstream")
