"""Names by subjectAltName only, and chains over OpenSSL's certificate-list limit, against real servers.

Certificates are made at test time; the servers are pyOpenSSL servers on loopback
(``tests/fakes/tls_server.py``). nginx and ``openssl s_client`` cross-checks are in
``tests/interop/test_interop_tls_policy.py``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tls import TlsExpectation, check_tls
from pytest_autoglm.probes.tls.chain import load_der, serial_text
from tests.fakes.tls_server import Issued, TlsServer, make_ca, make_leaf, pem

HOST = "api.example.com"
LOOPBACK = "127.0.0.1"
MANY = 10_000


class _Pki:
    def __init__(self, folder: Path) -> None:
        self.root = Issued.from_trustme(trustme.CA())
        self.intermediate = make_ca("Names Intermediate", issuer=self.root)
        self.bundle = folder / "ca.pem"
        self.bundle.write_bytes(pem(self.root))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> _Pki:
    return _Pki(tmp_path_factory.mktemp("names"))


def _check(server: TlsServer, pki: _Pki, host: str = HOST, timeout: float = 5.0, **expect: Any) -> Verdict:
    verdict = asyncio.run(
        check_tls(host, LOOPBACK, TlsExpectation(port=server.port, **expect), timeout=timeout, ca_bundle=pki.bundle)
    )
    json.dumps(verdict.details)
    return verdict


def test_certificate_without_san_fails_hostname_even_when_the_cn_matches(pki: _Pki) -> None:
    leaf = make_leaf([HOST], issuer=pki.intermediate, san=False)  # CN=api.example.com, no SAN
    with TlsServer([leaf, pki.intermediate]) as server:
        verdict = _check(server, pki)
    assert verdict.reason == Reason.HOSTNAME, verdict.message
    assert "no subjectAltName extension" in verdict.message
    assert f"subject CN '{HOST}' is not used" in verdict.message


def test_positive_control_same_name_in_san_passes(pki: _Pki) -> None:
    leaf = make_leaf([HOST], issuer=pki.intermediate)
    with TlsServer([leaf, pki.intermediate]) as server:
        assert _check(server, pki).passed


@pytest.fixture(scope="module")
def big_leaf(pki: _Pki) -> Issued:
    """A certificate with 10,000 DNS SANs (about 210 KiB of DER), the host name last."""
    return make_leaf([*(f"host{i}.example.net" for i in range(MANY - 1)), HOST], issuer=pki.intermediate)


@pytest.fixture(scope="module")
def big_server(pki: _Pki, big_leaf: Issued) -> Iterator[TlsServer]:
    with TlsServer([big_leaf, pki.intermediate]) as server:
        yield server


def test_ten_thousand_san_certificate_is_judged(pki: _Pki, big_leaf: Issued, big_server: TlsServer) -> None:
    size = len(big_leaf.cert.tbs_certificate_bytes)
    assert size > 200 * 1024  # over OpenSSL's 100 KiB max_cert_list
    verdict = _check(big_server, pki)
    assert verdict.passed, verdict.message
    assert "read from the wire" in verdict.message
    assert verdict.details["sans_count"] == MANY
    assert verdict.details["certificate_list_bytes"] > 200 * 1024


def test_ten_thousand_san_certificate_name_not_covered(pki: _Pki, big_server: TlsServer) -> None:
    verdict = _check(big_server, pki, host="other.example.org")
    assert verdict.reason == Reason.HOSTNAME, verdict.message
    assert "and 9994 more" in verdict.message


def test_ten_thousand_san_certificate_untrusted_root(big_server: TlsServer, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(pem(make_ca("Unrelated Root")))
    verdict = asyncio.run(check_tls(HOST, LOOPBACK, TlsExpectation(port=big_server.port), timeout=5.0, ca_bundle=other))
    assert verdict.reason == Reason.UNTRUSTED, verdict.message


def test_big_certificate_on_tls13_only_server_says_why(pki: _Pki, big_leaf: Issued) -> None:
    with TlsServer([big_leaf, pki.intermediate], min_version="TLSv1.3") as server:
        verdict = _check(server, pki)
    assert verdict.reason == Reason.HANDSHAKE
    assert "exceeds OpenSSL's 100 KiB limit" in verdict.message and "TLS 1.3 only?" in verdict.message


def test_negative_serial_number_is_judged_without_warning(tmp_path: Path) -> None:
    """openssl makes the certificate (cryptography's builder refuses negative serials)."""
    cert_pem, key_pem = tmp_path / "neg.pem", tmp_path / "neg.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key_pem), "-out", str(cert_pem), "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=DNS:{HOST}", "-set_serial", "-12345", "-days", "30"],
        check=True, capture_output=True,
    )  # fmt: skip
    cert = load_der(ssl.PEM_cert_to_DER_cert(cert_pem.read_text()))
    key = serialization.load_pem_private_key(key_pem.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    with TlsServer([cert], key) as server, warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = asyncio.run(
            check_tls(HOST, LOOPBACK, TlsExpectation(port=server.port), timeout=5.0, ca_bundle=cert_pem)
        )
    assert verdict.passed, verdict.message
    assert verdict.details["serial"] == "-3039 (negative: RFC 5280 forbids it)"
    assert serial_text(0xABC) == "abc"


def test_ca_certificate_served_as_the_leaf_says_so(pki: _Pki) -> None:
    with TlsServer([pki.intermediate]) as server:
        verdict = _check(server, pki)
    assert verdict.reason == Reason.UNTRUSTED, verdict.message
    assert "the server's certificate 'Names Intermediate' is a CA certificate" in verdict.message
    assert "extended key usage" not in verdict.message


# --------------------------------------------------------------------------- incomplete chains and AIA


class _Served(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        status = 200 if self.path == "/issuer.crt" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/pkix-cert")
        self.send_header("Content-Length", str(len(self.body) if status == 200 else 0))
        self.end_headers()
        if status == 200:
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def aia_server(pki: _Pki) -> Iterator[str]:
    """A loopback HTTP server publishing the intermediate (DER) at /issuer.crt; yields its base URL."""
    handler = type("Handler", (_Served,), {"body": pki.intermediate.cert.public_bytes(serialization.Encoding.DER)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_incomplete_chain_is_its_own_reason(pki: _Pki, aia_server: str) -> None:
    leaf = make_leaf([HOST], issuer=pki.intermediate, aia_ca_issuers=f"{aia_server}/issuer.crt")
    with TlsServer([leaf]) as server:
        verdict = _check(server, pki)
    assert verdict.reason == Reason.INCOMPLETE_CHAIN, verdict.message
    assert "aia_fetch" not in verdict.details  # nothing fetched unless asked


def test_aia_fetch_completes_the_chain_and_says_so(pki: _Pki, aia_server: str) -> None:
    leaf = make_leaf([HOST], issuer=pki.intermediate, aia_ca_issuers=f"{aia_server}/issuer.crt")
    with TlsServer([leaf]) as server:
        verdict = _check(server, pki, aia_fetch=True)
    assert verdict.passed, verdict.message
    assert f"fetched from {aia_server}/issuer.crt" in verdict.message
    assert "the chain verifies with it" in verdict.details["aia_fetch"]["note"]


def test_aia_fetch_of_a_missing_file_keeps_the_incomplete_chain(pki: _Pki, aia_server: str) -> None:
    leaf = make_leaf([HOST], issuer=pki.intermediate, aia_ca_issuers=f"{aia_server}/gone.crt")
    with TlsServer([leaf]) as server:
        verdict = _check(server, pki, aia_fetch=True)
    assert verdict.reason == Reason.INCOMPLETE_CHAIN, verdict.message
    assert "HTTP 404" in verdict.details["aia_fetch"]["note"]


def test_unknown_ca_stays_untrusted_with_aia_fetch(pki: _Pki, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(pem(make_ca("Unrelated Root")))
    leaf = make_leaf([HOST], issuer=pki.intermediate)
    with TlsServer([leaf, pki.intermediate]) as server:
        verdict = asyncio.run(
            check_tls(HOST, LOOPBACK, TlsExpectation(port=server.port, aia_fetch=True), timeout=5.0, ca_bundle=other)
        )
    assert verdict.reason == Reason.UNTRUSTED, verdict.message


def test_ten_thousand_san_certificate_is_judged_by_policy(pki: _Pki, big_server: TlsServer) -> None:
    from pytest_autoglm.probes.tls import TlsPolicy

    verdict = _check(big_server, pki, policy=TlsPolicy(profile="mozilla-modern"))
    assert verdict.reason == Reason.OLD_PROTOCOL, verdict.message  # the server also speaks TLS 1.2
    assert verdict.details["chain_keys"][0]["key_type"] == "EC"
