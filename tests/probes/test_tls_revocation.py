"""Revocation beyond stapling: a real ``openssl ocsp`` responder and a CRL served over loopback HTTP.

The responder is started per module and checked ready with a real OCSP request (a bare TCP
connect can make ``openssl ocsp`` spin: lab-facts); it is stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tls import TlsExpectation, check_tls
from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.tls_server import Issued, TlsServer, make_ca, pem
from tests.interop.daemons import free_ports

HOST = "api.example.com"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _leaf(issuer: Issued, *, ocsp_url: str | None = None, crl_url: str | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
    )
    if ocsp_url:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


@dataclass
class Ca:
    dir: Path
    root: Issued
    inter: Issued
    bundle: Path
    ocsp_port: int
    crl_base: str
    good: Issued
    revoked: Issued
    crl_good: Issued
    crl_revoked: Issued


class _Files(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:
        return


def _index_line(cert: x509.Certificate, revoked: bool) -> str:
    expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).strftime("%y%m%d%H%M%SZ") if revoked else ""
    return "\t".join(["R" if revoked else "V", expiry, when, f"{cert.serial_number:X}", "unknown", f"/CN={HOST}"])


def _ocsp_ready(port: int, leaf: Issued, issuer: Issued) -> bool:
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, issuer.cert, hashes.SHA1()).build()
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/",
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
            timeout=1.0,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ca]:
    folder = tmp_path_factory.mktemp("revocation")
    root = Issued.from_trustme(trustme.CA())
    inter = make_ca("Revocation Intermediate", issuer=root)
    bundle = folder / "root.pem"
    bundle.write_bytes(pem(root))
    ocsp_port = free_ports(1)[0]
    files = type("Files", (_Files,), {"files": {}})
    http = ThreadingHTTPServer(("127.0.0.1", 0), files)
    crl_base = f"http://127.0.0.1:{http.server_address[1]}"
    ocsp_url = f"http://127.0.0.1:{ocsp_port}/"
    good, revoked = _leaf(inter, ocsp_url=ocsp_url), _leaf(inter, ocsp_url=ocsp_url)
    crl_good, crl_revoked = _leaf(inter, crl_url=f"{crl_base}/ca.crl"), _leaf(inter, crl_url=f"{crl_base}/ca.crl")
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(inter.cert.subject)
        .last_update(now - dt.timedelta(hours=1))
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(crl_revoked.cert.serial_number)
            .revocation_date(now - dt.timedelta(days=3))
            .build()
        )
        .sign(inter.key, hashes.SHA256())
    )
    files.files["/ca.crl"] = crl.public_bytes(serialization.Encoding.DER)
    (folder / "index.txt").write_text(_index_line(good.cert, False) + "\n" + _index_line(revoked.cert, True) + "\n")
    (folder / "inter.pem").write_bytes(pem(inter))
    (folder / "inter.key").write_bytes(inter.key_pem())
    argv = [
        "openssl", "ocsp", "-port", str(ocsp_port), "-index", str(folder / "index.txt"),
        "-CA", str(folder / "inter.pem"), "-rsigner", str(folder / "inter.pem"), "-rkey", str(folder / "inter.key"),
        "-ndays", "1",
    ]  # fmt: skip
    log = open(folder / "ocsp.log", "wb")
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(100):  # readiness: a real OCSP request (bounded)
            if proc.poll() is not None or _ocsp_ready(ocsp_port, good, inter):
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.fail(f"openssl ocsp exited: {(folder / 'ocsp.log').read_text(errors='replace')[-500:]}")
        yield Ca(folder, root, inter, bundle, ocsp_port, crl_base, good, revoked, crl_good, crl_revoked)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(5)
        log.close()
        http.shutdown()
        http.server_close()


def _check(ca: Ca, leaf: Issued, **expect: Any) -> Any:
    with TlsServer([leaf, ca.inter]) as server:
        return asyncio.run(
            check_tls(HOST, "127.0.0.1", TlsExpectation(port=server.port, **expect), timeout=5.0, ca_bundle=ca.bundle)
        )


def test_ocsp_responder_says_revoked(ca: Ca) -> None:
    verdict = _check(ca, ca.revoked, revocation_ocsp=True)
    assert verdict.reason == Reason.REVOKED, verdict.message
    assert verdict.severity is None  # the check's own severity (critical by default)
    assert f"per the OCSP responder http://127.0.0.1:{ca.ocsp_port}/" in verdict.message


def test_ocsp_responder_says_good(ca: Ca) -> None:
    verdict = _check(ca, ca.good, revocation_ocsp=True)
    assert verdict.passed, verdict.message
    assert verdict.details["revocation"][0]["status"] == "good"
    assert "warnings" not in verdict.details


def test_revoked_but_not_asked_passes(ca: Ca) -> None:
    assert _check(ca, ca.revoked).passed  # control: nothing asked without `revocation`


def test_crl_lists_the_certificate(ca: Ca) -> None:
    verdict = _check(ca, ca.crl_revoked, revocation_crl=True)
    assert verdict.reason == Reason.REVOKED, verdict.message
    assert f"per the CRL at {ca.crl_base}/ca.crl" in verdict.message


def test_crl_does_not_list_the_certificate(ca: Ca) -> None:
    verdict = _check(ca, ca.crl_good, revocation_crl=True)
    assert verdict.passed, verdict.message
    assert verdict.details["revocation"][0]["status"] == "good"


def test_no_answer_is_a_warning_not_a_failure(ca: Ca) -> None:
    dead = free_ports(1)[0]  # nothing listens there
    leaf = _leaf(ca.inter, ocsp_url=f"http://127.0.0.1:{dead}/", crl_url=f"{ca.crl_base}/missing.crl")
    verdict = _check(ca, leaf, revocation_ocsp=True, revocation_crl=True)
    assert not verdict.passed and verdict.reason == Reason.REVOCATION_UNKNOWN, verdict.message
    assert verdict.severity == "warning"  # a warning whatever the check's severity
    assert verdict.details["warnings"][0]["reason"] == Reason.REVOCATION_UNKNOWN
    assert "no revocation answer" in verdict.message
    assert "HTTP 404" in verdict.message


def _run(pytester: pytest.Pytester, ca: Ca, leaf: Issued, *extra: str) -> tuple[dict[str, Any], pytest.RunResult]:
    """A real run of one tls item asking the responder and the CRL (severity critical)."""
    with TlsServer([leaf, ca.inter]) as server, FakeDnsServer({f"{HOST}.": {"A": ["127.0.0.1"]}}) as dns:
        (pytester.path / "rev.yaml").write_text(
            f"""\
version: 1
defaults: {{timeout: 5s, retries: 0, resolvers: ["{dns.address}"], severity: critical}}
targets:
  - name: api
    host: {HOST}
    ca_bundle: {ca.bundle}
    tls: {{port: {server.port}, revocation: {{ocsp: true, crl: true}}}}
"""
        )
        result = pytester.runpytest("--autoglm-target", "rev.yaml", "-m", "tls", *extra)
    doc = json.loads((pytester.path / "reports" / "rev.json").read_text())
    (entry,) = [r for r in doc["results"] if r["check"] == "tls"]
    return entry, result


def test_a_run_warns_when_the_responder_is_down(pytester: pytest.Pytester, ca: Ca) -> None:
    dead = free_ports(1)[0]
    leaf = _leaf(ca.inter, ocsp_url=f"http://127.0.0.1:{dead}/", crl_url=f"{ca.crl_base}/missing.crl")
    entry, result = _run(pytester, ca, leaf)
    assert (entry["outcome"], entry["reason"], entry["severity"], entry.get("warned")) == (
        "failed",
        "revocation_unknown",
        "warning",
        True,
    ), entry["message"]
    assert result.parseoutcomes() == {"warned": 1}
    assert result.ret == 0
    entry, result = _run(pytester, ca, leaf, "--autoglm-fail-on", "warning")
    assert entry.get("warned") is None and result.ret == 1


def test_a_run_fails_a_revoked_certificate(pytester: pytest.Pytester, ca: Ca) -> None:
    entry, result = _run(pytester, ca, ca.revoked)
    assert (entry["outcome"], entry["reason"], entry["severity"], entry.get("warned")) == (
        "failed",
        "revoked",
        "critical",
        None,
    ), entry["message"]
    assert result.ret == 1
