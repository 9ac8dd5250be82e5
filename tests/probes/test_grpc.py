"""The gRPC health probe against real grpcio servers on loopback: one test per reason, with positive controls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import trustme

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.grpc import GrpcExpectation, check_grpc
from tests.fakes.grpc_server import grpc_server
from tests.fakes.tcp_servers import refused_port

HOST = "grpc.example.test"
LOOPBACK = "127.0.0.1"
TIMEOUT = 3.0


def probe(expect: GrpcExpectation, *, timeout: float = TIMEOUT, ca_bundle: Path | None = None) -> Verdict:
    return asyncio.run(check_grpc(HOST, LOOPBACK, expect, timeout=timeout, ca_bundle=ca_bundle))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def test_serving_passes_with_keepalive_and_message_limits():
    with grpc_server() as server:
        verdict = probe(GrpcExpectation(port=server.port, keepalive=30.0, max_message=64 * 1024 * 1024))
    assert verdict.passed, verdict.message
    assert verdict.details["status"] == "SERVING"
    assert verdict.address == LOOPBACK


def test_not_serving_fails_not_serving():
    with grpc_server(status="NOT_SERVING") as server:
        verdict = probe(GrpcExpectation(port=server.port))
    assert (verdict.passed, verdict.layer, verdict.reason) == (False, Layer.GRPC, Reason.NOT_SERVING)
    assert verdict.details["status"] == "NOT_SERVING"
    assert not verdict.transient


def test_expected_not_serving_passes_and_serving_is_unexpected():
    with grpc_server(services={"maint.Drain": "NOT_SERVING"}) as server:
        draining = probe(GrpcExpectation(port=server.port, service="maint.Drain", status="NOT_SERVING"))
        serving = probe(GrpcExpectation(port=server.port, status="NOT_SERVING"))
    assert draining.passed, draining.message
    assert serving.reason is Reason.UNEXPECTED


def test_a_named_service_is_asked_for_by_name():
    with grpc_server(services={"models.Infer": "SERVING", "models.Train": "NOT_SERVING"}) as server:
        infer = probe(GrpcExpectation(port=server.port, service="models.Infer"))
        train = probe(GrpcExpectation(port=server.port, service="models.Train"))
        unknown = probe(GrpcExpectation(port=server.port, service="models.Nope"))
    assert infer.passed, infer.message
    assert train.reason is Reason.NOT_SERVING
    assert unknown.reason is Reason.NOT_SERVING
    assert unknown.details["code"] == "NOT_FOUND"


def test_no_health_service_is_unimplemented():
    with grpc_server("none") as server:
        verdict = probe(GrpcExpectation(port=server.port))
    assert (verdict.layer, verdict.reason) == (Layer.GRPC, Reason.UNIMPLEMENTED)


def test_a_slow_health_service_past_the_deadline_is_deadline():
    with grpc_server("slow", delay=3.0) as server:
        verdict = probe(GrpcExpectation(port=server.port), timeout=0.5)
        control = probe(GrpcExpectation(port=server.port), timeout=6.0)
    assert verdict.reason is Reason.DEADLINE
    assert verdict.transient
    assert control.passed, control.message


def test_nothing_listening_is_unavailable():
    with refused_port() as port:
        verdict = probe(GrpcExpectation(port=port))
    assert (verdict.layer, verdict.reason) == (Layer.GRPC, Reason.UNAVAILABLE)


def test_tls_serving_passes_with_the_ca_bundle_and_fails_without(ca, ca_file):
    with grpc_server(ca=ca, server_name=HOST) as server:
        good = probe(GrpcExpectation(port=server.port, tls=True), ca_bundle=ca_file)
        untrusted = probe(GrpcExpectation(port=server.port, tls=True))
        plain = probe(GrpcExpectation(port=server.port))
    assert good.passed, good.message
    assert untrusted.reason is Reason.UNAVAILABLE
    assert plain.reason is Reason.UNAVAILABLE


def test_tls_sni_names_the_certificate(ca, ca_file):
    with grpc_server(ca=ca, server_name="other.example.test") as server:
        wrong = probe(GrpcExpectation(port=server.port, tls=True), ca_bundle=ca_file)
        right = probe(GrpcExpectation(port=server.port, tls=True, sni="other.example.test"), ca_bundle=ca_file)
    assert wrong.reason is Reason.UNAVAILABLE
    assert right.passed, right.message


def test_client_certificate_is_presented(ca, ca_file, tmp_path):
    client = ca.issue_cert("client.example.test")
    cert = tmp_path / "client.pem"
    key = tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    with grpc_server(ca=ca, server_name=HOST, require_client_cert=True) as server:
        with_cert = probe(
            GrpcExpectation(port=server.port, tls=True, client_cert=cert, client_key=key), ca_bundle=ca_file
        )
        without = probe(GrpcExpectation(port=server.port, tls=True), ca_bundle=ca_file)
    assert with_cert.passed, with_cert.message
    assert without.reason is Reason.UNAVAILABLE


def test_unreadable_files_are_setup_and_verify_false_is_refused(tmp_path):
    missing = probe(GrpcExpectation(port=1, tls=True), ca_bundle=tmp_path / "nope.pem")
    assert (missing.reason, missing.layer) == (Reason.SETUP, Layer.GRPC)
    unverified = probe(GrpcExpectation(port=1, tls=True, verify=False))
    assert unverified.reason is Reason.SETUP


def test_grpc_items_through_the_plugin(pytester):
    with grpc_server(services={"models.Infer": "NOT_SERVING"}) as server, grpc_server("none") as bare:
        (pytester.path / "rpc.yaml").write_text(
            f"""\
version: 1
defaults: {{timeout: 2s, retries: 0}}
targets:
  - name: api
    host: 127.0.0.1
    tcp: {{open: [{server.port}]}}
    grpc:
      - {{port: {server.port}, keepalive: 30s, max_message: 64MiB}}
      - {{port: {server.port}, service: models.Infer}}
  - name: bare
    host: 127.0.0.1
    grpc: {{port: {bare.port}}}
"""
        )
        result = pytester.runpytest("--autoglm-target", "rpc.yaml", "-m", "grpc or tcp")
    doc = json.loads((pytester.path / "reports" / "rpc.json").read_text())
    by_id = {r["id"]: r for r in doc["results"]}
    serving = by_id[f"grpc[rpc:api:{server.port}]"]
    assert serving["outcome"] == "passed", serving["message"]
    assert by_id[f"grpc[rpc:api:{server.port}/models.Infer]"]["reason"] == "not_serving"
    assert by_id[f"grpc[rpc:bare:{bare.port}]"]["reason"] == "unimplemented"
    result.assert_outcomes(passed=2, failed=2)


def test_grpc_item_is_upstream_of_a_refused_port(pytester):
    with refused_port() as port:
        (pytester.path / "down.yaml").write_text(
            f"version: 1\ndefaults: {{timeout: 1s, retries: 0}}\ntargets:\n  - name: api\n    host: 127.0.0.1\n"
            f"    tcp: {{open: [{port}]}}\n    grpc: {{port: {port}}}\n"
        )
        result = pytester.runpytest("--autoglm-target", "down.yaml")
    result.assert_outcomes(failed=2)
    doc = json.loads((pytester.path / "reports" / "down.json").read_text())
    grpc = next(r for r in doc["results"] if r["check"] == "grpc")
    assert (grpc["layer"], grpc["reason"]) == ("tcp", "upstream")
