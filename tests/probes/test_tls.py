"""The TLS probe against real TLS servers on loopback: one negative test per reason, with positive controls.

Every certificate is made at test time (trustme, or cryptography builders for
what trustme cannot make). Plain sync tests drive the probe with asyncio.run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.tls import TlsExpectation, cert_covers_name, check_tls
from tests.fakes.tcp_servers import HAS_IPV6_LOOPBACK, refused_port
from tests.fakes.tls_server import Issued, TlsServer, make_ca, make_leaf, make_ocsp_response, pem
from tests.timing import Stopwatch

HOST = "api.example.com"
LOOPBACK = "127.0.0.1"
TIMEOUT = 3.0
NOW = dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- fixtures


class Pki:
    """A trusted root with an intermediate, plus the files the probe reads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.root = Issued.from_trustme(self.ca)
        self.intermediate = make_ca("Test Intermediate CA", issuer=self.root)
        self.bundle = self.write("trusted-ca.pem", pem(self.root))

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def leaf(self, *names: str, **kwargs: Any) -> Issued:
        """A leaf issued by the intermediate (serve it with ``[leaf, pki.intermediate]``)."""
        return make_leaf(list(names) or [HOST], issuer=self.intermediate, **kwargs)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def good_server(pki: Pki) -> Iterator[TlsServer]:
    """A correctly configured server: leaf for HOST and 127.0.0.1, chain with the intermediate."""
    leaf = pki.leaf(HOST, LOOPBACK)
    with TlsServer([leaf, pki.intermediate]) as server:
        yield server


def check(
    server_or_port: TlsServer | int,
    pki: Pki | None,
    *,
    host: str = HOST,
    address: str = LOOPBACK,
    timeout: float = TIMEOUT,
    now: dt.datetime | None = None,
    **expect: Any,
) -> Verdict:
    port = server_or_port.port if isinstance(server_or_port, TlsServer) else server_or_port
    verdict = asyncio.run(
        check_tls(
            host,
            address,
            TlsExpectation(port=port, **expect),
            timeout=timeout,
            ca_bundle=pki.bundle if pki is not None else None,
            now=now or dt.datetime.now(dt.UTC),
        )
    )
    json.dumps(verdict.details)  # always JSON-serializable
    return verdict


def assert_fails(verdict: Verdict, reason: Reason, *fragments: str, layer: Layer = Layer.TLS) -> None:
    assert not verdict.passed, verdict
    assert (verdict.layer, verdict.reason) == (layer, reason), verdict.message
    for fragment in fragments:
        assert fragment in verdict.message, verdict.message
    assert verdict.address in {LOOPBACK, "::1"}


# --------------------------------------------------------------------------- trust


def test_valid_chain_passes(pki: Pki, good_server: TlsServer) -> None:
    verdict = check(good_server, pki)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith(f"{HOST} ({LOOPBACK}) port {good_server.port}: TLSv1.3")


def test_details_content(pki: Pki, good_server: TlsServer) -> None:
    details = check(good_server, pki).details
    assert details["address"] == LOOPBACK
    assert details["port"] == good_server.port
    assert details["sni"] == HOST
    assert details["version"] == "TLSv1.3"
    assert details["cipher"].startswith("TLS_")
    assert "CN=api.example.com" in details["subject"]
    assert "CN=Test Intermediate CA" in details["issuer"]
    assert details["sans"] == [HOST, LOOPBACK]
    for key in ("not_before", "not_after"):
        assert dt.datetime.strptime(details[key], "%Y-%m-%dT%H:%M:%SZ")
    assert details["days_left"] in (363, 364)  # make_leaf: valid for 365 days from now
    assert [link["subject"].split(",")[0] for link in details["chain"]] == [
        "CN=api.example.com",
        "CN=Test Intermediate CA",
    ]
    assert details["chain"][1]["issuer"] == pki.root.cert.subject.rfc4514_string()
    assert (details["key_type"], details["key_size"], details["key_curve"]) == ("EC", 256, "secp256r1")
    assert details["signature_algorithm"] == "ecdsa-with-SHA256"
    assert details["ocsp_status"] is None
    assert details["client_cert_requested"] is False
    assert "problems" not in details


def test_self_signed_is_untrusted(pki: Pki) -> None:
    leaf = make_leaf([HOST])
    with TlsServer([leaf]) as server:
        assert_fails(check(server, pki), Reason.UNTRUSTED, "self-signed certificate 'api.example.com'")
        assert check(server, pki, verify=False).passed  # verify off: only validity counts


def test_unknown_ca_is_untrusted(pki: Pki) -> None:
    other = trustme.CA()
    other_intermediate = make_ca("Other Intermediate CA", issuer=Issued.from_trustme(other))
    leaf = make_leaf([HOST], issuer=other_intermediate)
    with TlsServer([leaf, other_intermediate]) as server:
        verdict = check(server, pki)
    assert_fails(verdict, Reason.UNTRUSTED, "unknown CA", "issuer of intermediate 'Other Intermediate CA'")
    assert not verdict.transient


def test_unknown_root_sent_by_server_is_untrusted(pki: Pki) -> None:
    private_root = make_ca("Private Root CA")
    leaf = make_leaf([HOST], issuer=private_root)
    with TlsServer([leaf, private_root]) as server:
        assert_fails(check(server, pki), Reason.UNTRUSTED, "unknown CA", "self-signed root 'Private Root CA'")


def test_missing_intermediate_is_an_incomplete_chain(pki: Pki) -> None:
    leaf = pki.leaf(HOST, aia_ca_issuers="http://127.0.0.1:9/intermediate.crt")  # never fetched
    with TlsServer([leaf]) as server:  # the intermediate is not sent
        verdict = check(server, pki)
        assert_fails(verdict, Reason.INCOMPLETE_CHAIN, "incomplete chain", "'Test Intermediate CA'", "127.0.0.1:9")
    with TlsServer([leaf, pki.intermediate]) as server:  # control: the same leaf with its chain
        assert check(server, pki).passed


def test_leaf_alone_without_issuer_hint_names_both_causes(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST)]) as server:
        assert_fails(check(server, pki), Reason.UNTRUSTED, "unknown issuer", "unknown CA", "incomplete chain")


def test_wrong_intermediate_sent(pki: Pki) -> None:
    stranger = make_ca("Unrelated Intermediate CA", issuer=pki.root)
    with TlsServer([pki.leaf(HOST), stranger]) as server:
        assert_fails(check(server, pki), Reason.INCOMPLETE_CHAIN, "incomplete chain", "wrong intermediate")


def test_ca_bundle_is_needed_for_a_private_ca(good_server: TlsServer) -> None:
    assert_fails(check(good_server, None), Reason.UNTRUSTED)  # system store only


# --------------------------------------------------------------------------- names


def test_wrong_host_is_hostname(pki: Pki, good_server: TlsServer) -> None:
    verdict = check(good_server, pki, host="www.example.org")
    assert_fails(verdict, Reason.HOSTNAME, "does not cover www.example.org", "SANs: api.example.com, 127.0.0.1")
    assert verdict.message.startswith(f"www.example.org ({LOOPBACK}) port {good_server.port}: ")
    assert check(good_server, pki, host="www.example.org", verify=False).passed


def test_sni_names_the_certificate_to_check(pki: Pki, good_server: TlsServer) -> None:
    assert check(good_server, pki, host="lb.internal", sni=HOST).passed
    assert_fails(check(good_server, pki, host=HOST, sni="other.example.com"), Reason.HOSTNAME, "(the sni)")


def test_ip_literal_with_ip_san_passes(pki: Pki, good_server: TlsServer) -> None:
    verdict = check(good_server, pki, host=LOOPBACK)
    assert verdict.passed, verdict.message
    assert verdict.details["sni"] is None  # no SNI for an IP literal
    assert verdict.message.startswith(f"{LOOPBACK} port {good_server.port}: ")


def test_ip_literal_without_ip_san_is_hostname(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST, "127.0.0.2"), pki.intermediate]) as server:
        assert_fails(check(server, pki, host=LOOPBACK), Reason.HOSTNAME, "no IP address SAN matches")


def test_wildcard_over_the_wire(pki: Pki) -> None:
    with TlsServer([pki.leaf("*.example.com"), pki.intermediate]) as server:
        assert check(server, pki, host=HOST).passed
        assert_fails(check(server, pki, host="a.api.example.com"), Reason.HOSTNAME)
        assert_fails(check(server, pki, host="example.com"), Reason.HOSTNAME)


@pytest.mark.parametrize(
    ("pattern", "name", "covered"),
    [
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "API.Example.COM.", True),  # case and a trailing dot do not matter
        ("*.example.com", "a.b.example.com", False),  # one label only
        ("*.example.com", "example.com", False),
        ("api.*.com", "api.example.com", False),  # left-most label only
        ("f*.example.com", "foo.example.com", False),  # partial wildcards are not honoured
        ("*.com", "example.com", False),  # too broad
        ("*.example.com", "127.0.0.1", False),
        ("xn--bcher-kva.example", "bücher.example", True),  # IDNA
    ],
)
def test_wildcard_rules(pattern: str, name: str, covered: bool) -> None:
    assert cert_covers_name(make_leaf([pattern]).cert, name) is covered


def test_common_name_is_never_matched() -> None:
    cn_only = make_leaf(["legacy.example.com"], san=False).cert
    assert not cert_covers_name(cn_only, "legacy.example.com")  # RFC 9525: no CN fallback
    with_san = make_leaf(["other.example.com"], common_name="legacy.example.com").cert
    assert not cert_covers_name(with_san, "legacy.example.com")  # CN ignored when SANs exist


def test_ip_san_matching() -> None:
    cert = make_leaf(["127.0.0.1", "::1", "localhost"]).cert
    assert cert_covers_name(cert, "127.0.0.1") and cert_covers_name(cert, "::1")
    assert not cert_covers_name(cert, "127.0.0.2")
    assert not cert_covers_name(make_leaf(["localhost"]).cert, "127.0.0.1")


# --------------------------------------------------------------------------- validity


def test_expired(pki: Pki) -> None:
    leaf = pki.leaf(HOST, not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=5, hours=1))
    with TlsServer([leaf, pki.intermediate]) as server:
        verdict = check(server, pki, now=NOW)
        day = (NOW - dt.timedelta(days=5, hours=1)).strftime("%Y-%m-%d")
        assert_fails(verdict, Reason.EXPIRED)
        assert verdict.message == f"{HOST} ({LOOPBACK}) port {server.port}: certificate expired on {day} (5 days ago)"
        assert not verdict.transient
        assert verdict.details["days_left"] == -6
        assert_fails(check(server, pki, now=NOW, verify=False), Reason.EXPIRED)  # validity checked without verify


def test_expired_trustme_leaf(pki: Pki) -> None:
    """trustme makes the expired leaf itself (root-issued, so the root is the whole chain)."""
    leaf = pki.ca.issue_cert(HOST, not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=1))
    with TlsServer([Issued.from_trustme(leaf)]) as server:
        assert_fails(check(server, pki, now=NOW), Reason.EXPIRED, "certificate expired on")


def test_expired_intermediate(pki: Pki) -> None:
    old = make_ca("Old Intermediate CA", issuer=pki.root, not_after=NOW - dt.timedelta(days=2))
    leaf = make_leaf([HOST], issuer=old)
    with TlsServer([leaf, old]) as server:
        assert_fails(
            check(server, pki, now=NOW), Reason.EXPIRED, "intermediate certificate 'Old Intermediate CA' expired"
        )


def test_not_yet_valid(pki: Pki) -> None:
    leaf = pki.leaf(HOST, not_before=NOW + dt.timedelta(days=3, hours=1), not_after=NOW + dt.timedelta(days=90))
    with TlsServer([leaf, pki.intermediate]) as server:
        assert_fails(check(server, pki, now=NOW), Reason.NOT_YET_VALID, "is not valid before", "(in 3 days)")


def test_expiring(pki: Pki) -> None:
    leaf = pki.leaf(HOST, not_after=NOW + dt.timedelta(days=5, minutes=10))
    with TlsServer([leaf, pki.intermediate]) as server:
        verdict = check(server, pki, now=NOW, min_days_valid=30)
        assert_fails(verdict, Reason.EXPIRING, "5 days left", "fewer than min_days_valid 30")
        assert not verdict.transient  # a definite answer: not retried
        assert check(server, pki, now=NOW, min_days_valid=3).passed
        assert_fails(check(server, pki, now=NOW, min_days_valid=30, verify=False), Reason.EXPIRING)


def test_precedence_untrusted_before_expired(pki: Pki) -> None:
    leaf = make_leaf([HOST], not_after=NOW - dt.timedelta(days=1))  # self-signed and expired
    with TlsServer([leaf]) as server:
        verdict = check(server, pki, now=NOW)
    assert_fails(verdict, Reason.UNTRUSTED, "self-signed")
    assert [p["reason"] for p in verdict.details["problems"]] == ["expired"]


def test_precedence_hostname_before_expired(pki: Pki) -> None:
    leaf = pki.leaf("other.example.com", not_after=NOW - dt.timedelta(days=1))
    with TlsServer([leaf, pki.intermediate]) as server:
        verdict = check(server, pki, now=NOW)
    assert_fails(verdict, Reason.HOSTNAME)
    assert [p["reason"] for p in verdict.details["problems"]] == ["expired"]


# --------------------------------------------------------------------------- protocol versions


def test_versions_positive_control(pki: Pki, good_server: TlsServer) -> None:
    verdict = check(good_server, pki, min_version="TLSv1.2", accept=("TLSv1.2", "TLSv1.3"))
    assert verdict.passed, verdict.message
    assert verdict.details["versions"] == {
        "TLSv1": "refused",
        "TLSv1.1": "refused",
        "TLSv1.2": "accepted",
        "TLSv1.3": "accepted",
    }


def test_tls13_only_server_refuses_tls12(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST), pki.intermediate], min_version="TLSv1.3") as server:
        verdict = check(server, pki, accept=("TLSv1.2",))
        assert_fails(verdict, Reason.PROTOCOL_UNSUPPORTED, "refuses TLSv1.2 (listed in accept)")
        assert not verdict.transient
        assert check(server, pki, accept=("TLSv1.3",)).passed


def test_server_accepting_tls10_is_old_protocol(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST), pki.intermediate], min_version="TLSv1") as server:
        verdict = check(server, pki, min_version="TLSv1.2")
        assert_fails(verdict, Reason.OLD_PROTOCOL, "accepts TLSv1 and TLSv1.1, below min_version TLSv1.2")
        assert verdict.details["versions"]["TLSv1"] == "accepted"
        assert verdict.details["version"] == "TLSv1.3"  # the main handshake still negotiates the best
        assert check(server, pki, accept=("TLSv1", "TLSv1.3")).passed
        assert server.wait_until(lambda stats: stats.versions.count("TLSv1") >= 2)


def test_server_speaking_only_tls10(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST), pki.intermediate], min_version="TLSv1", max_version="TLSv1") as server:
        assert_fails(check(server, pki, min_version="TLSv1.2"), Reason.OLD_PROTOCOL, "accepts only TLSv1")
        assert_fails(check(server, pki), Reason.HANDSHAKE, "no protocol version in common", "speaks only TLSv1")
        verdict = check(server, pki, accept=("TLSv1",))
        assert verdict.passed, verdict.message
        assert verdict.details["version"] == "TLSv1"


# --------------------------------------------------------------------------- OCSP stapling


@pytest.fixture(scope="module")
def stapled_leaf(pki: Pki) -> Issued:
    return pki.leaf(HOST)


def test_good_staple_passes_when_required(pki: Pki, stapled_leaf: Issued) -> None:
    staple = make_ocsp_response(stapled_leaf, pki.intermediate, "good")
    with TlsServer([stapled_leaf, pki.intermediate], ocsp_response=staple) as server:
        verdict = check(server, pki, ocsp_stapling="required")
        assert verdict.passed, verdict.message
        assert verdict.details["ocsp_status"] == "good"
        assert server.wait_until(lambda stats: stats.ocsp_requests >= 1)


def test_good_staple_from_a_delegated_responder(pki: Pki, stapled_leaf: Issued) -> None:
    responder = make_leaf(["OCSP responder"], issuer=pki.intermediate, ocsp_signing=True)
    staple = make_ocsp_response(stapled_leaf, pki.intermediate, "good", responder=responder)
    with TlsServer([stapled_leaf, pki.intermediate], ocsp_response=staple) as server:
        assert check(server, pki, ocsp_stapling="required").passed


def test_revoked_staple(pki: Pki, stapled_leaf: Issued) -> None:
    staple = make_ocsp_response(stapled_leaf, pki.intermediate, "revoked")
    with TlsServer([stapled_leaf, pki.intermediate], ocsp_response=staple) as server:
        for stapling in ("optional", "required"):
            verdict = check(server, pki, ocsp_stapling=stapling)
            assert_fails(verdict, Reason.REVOKED, "certificate revoked on", "key_compromise")
            assert verdict.details["ocsp_status"] == "revoked"
            assert not verdict.transient


def test_no_staple_when_required(pki: Pki, good_server: TlsServer) -> None:
    assert_fails(check(good_server, pki, ocsp_stapling="required"), Reason.NO_OCSP_STAPLE, "no OCSP staple")
    assert check(good_server, pki, ocsp_stapling="optional").passed


def test_unusable_staples_do_not_count(pki: Pki, stapled_leaf: Issued) -> None:
    someone_else = pki.leaf("other.example.com")
    impostor = make_ca("Test Intermediate CA", issuer=pki.root)  # same name, another key: not the issuer
    cases = {
        # OpenSSL 4 already drops a response about another certificate: it arrives as "no staple".
        "OCSP staple": make_ocsp_response(someone_else, pki.intermediate, "revoked"),
        "signature does not verify": make_ocsp_response(stapled_leaf, pki.intermediate, "revoked", responder=impostor),
        "stale": make_ocsp_response(
            stapled_leaf,
            pki.intermediate,
            "good",
            this_update=NOW - dt.timedelta(days=10),
            next_update=NOW - dt.timedelta(days=3),
        ),
        "cannot be parsed": b"\x30\x03\x0a\x01\x00",  # DER, but not an OCSP response
    }
    for fragment, staple in cases.items():
        with TlsServer([stapled_leaf, pki.intermediate], ocsp_response=staple) as server:
            verdict = check(server, pki, ocsp_stapling="required")
            assert_fails(verdict, Reason.NO_OCSP_STAPLE, fragment)
            assert verdict.details["ocsp_status"] in (None, "unknown")
            assert check(server, pki, ocsp_stapling="optional").passed  # a forged "revoked" is ignored


# --------------------------------------------------------------------------- client certificates (mTLS)


@pytest.fixture(scope="module")
def client_files(pki: Pki) -> tuple[Path, Path, Path]:
    """(cert+key in one PEM, cert alone, key alone) for a client certificate signed by the root."""
    client = make_leaf(["client.example.com"], issuer=pki.root)
    both = pki.write("client-both.pem", client.cert_pem() + client.key_pem())
    cert = pki.write("client-cert.pem", client.cert_pem())
    key = pki.write("client-key.pem", client.key_pem())
    return both, cert, key


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_mtls_required_and_not_given_is_handshake(pki: Pki, version: str) -> None:
    leaf = pki.leaf(HOST)
    with TlsServer([leaf, pki.intermediate], client_ca=pki.root, min_version=version, max_version=version) as server:
        verdict = check(server, pki)
    assert_fails(verdict, Reason.HANDSHAKE, "the server required a client certificate and none is configured")
    assert not verdict.transient


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_mtls_given_passes(pki: Pki, client_files: tuple[Path, Path, Path], version: str) -> None:
    both, cert, key = client_files
    leaf = pki.leaf(HOST)
    with TlsServer([leaf, pki.intermediate], client_ca=pki.root, min_version=version, max_version=version) as server:
        assert check(server, pki, client_cert=both).passed  # key in the same PEM
        verdict = check(server, pki, client_cert=cert, client_key=key, accept=(version,))
        assert verdict.passed, verdict.message
        assert server.wait_until(lambda stats: any("client.example.com" in s for s in stats.client_certs))


def test_optional_client_cert_is_noted(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST), pki.intermediate], client_ca=pki.root, require_client_cert=False) as server:
        verdict = check(server, pki)
    assert verdict.passed, verdict.message
    assert verdict.details["client_cert_requested"] is True
    assert "the server asked for a client certificate (none configured)" in verdict.message


def test_mtls_client_cert_from_another_ca_is_rejected(pki: Pki) -> None:
    stranger = make_leaf(["client.example.com"])
    path = pki.write("stranger.pem", stranger.cert_pem() + stranger.key_pem())
    with TlsServer([pki.leaf(HOST), pki.intermediate], client_ca=pki.root) as server:
        assert_fails(
            check(server, pki, client_cert=path), Reason.HANDSHAKE, "the server rejected the client certificate"
        )


def test_unreadable_client_key_is_a_setup_error(pki: Pki, good_server: TlsServer) -> None:
    verdict = check(good_server, pki, client_cert=pki.folder / "missing.pem")
    assert_fails(verdict, Reason.SETUP, "client_cert", "missing.pem")
    assert not verdict.transient
    assert_fails(check(good_server, pki, client_cert=pki.bundle), Reason.SETUP, "no private key")


def test_missing_ca_bundle_is_a_setup_error(good_server: TlsServer, tmp_path: Path) -> None:
    verdict = asyncio.run(
        check_tls(
            HOST, LOOPBACK, TlsExpectation(port=good_server.port), timeout=TIMEOUT, ca_bundle=tmp_path / "nope.pem"
        )
    )
    assert_fails(verdict, Reason.SETUP, "ca_bundle")


# --------------------------------------------------------------------------- deadlines and lower layers


def test_silent_server_times_out_within_the_deadline(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST), pki.intermediate], mode="silent") as server:
        watch = Stopwatch().start()
        verdict = check(server, pki, timeout=0.5)
        elapsed = watch.now()
    assert_fails(verdict, Reason.TIMEOUT, "did not answer the ClientHello within 500ms")
    assert verdict.transient
    assert 0.45 <= elapsed < 1.0


def test_stalled_handshake_times_out(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST), pki.intermediate], mode="stall") as server:
        watch = Stopwatch().start()
        verdict = check(server, pki, timeout=0.5)
        elapsed = watch.now()
    assert_fails(verdict, Reason.TIMEOUT, "the handshake stalled after", "read server hello")
    assert elapsed < 1.0


def test_event_loop_keeps_running_during_a_stall(pki: Pki) -> None:
    """Many probes against silent servers while a ticker measures the loop's responsiveness."""

    async def scenario(port: int) -> tuple[list[Verdict], float]:
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            for _ in range(20):
                await asyncio.sleep(0.02)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        expectation = TlsExpectation(port=port)
        probes = [check_tls(HOST, LOOPBACK, expectation, timeout=0.5, ca_bundle=pki.bundle) for _ in range(20)]
        verdicts, _ = await asyncio.gather(asyncio.gather(*probes), ticker())
        return verdicts, max(gaps)

    with TlsServer([pki.leaf(HOST)], mode="silent") as server:
        verdicts, worst_gap = asyncio.run(scenario(server.port))
    assert all(v.reason is Reason.TIMEOUT for v in verdicts)
    assert worst_gap < 0.3  # a blocked loop would show the 0.5 s timeout here


def test_connect_refused_is_tcp_layer(pki: Pki) -> None:
    with refused_port() as port:
        verdict = check(port, pki)
    assert_fails(verdict, Reason.REFUSED, "connection refused", layer=Layer.TCP)
    assert verdict.transient


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [("plain", "did not answer in TLS"), ("close", "closed the connection during the handshake")],
)
def test_broken_servers_are_handshake_failures(pki: Pki, mode: str, fragment: str) -> None:
    with TlsServer([pki.leaf(HOST)], mode=mode) as server:  # type: ignore[arg-type]
        assert_fails(check(server, pki), Reason.HANDSHAKE, fragment)


@pytest.mark.skipif(not HAS_IPV6_LOOPBACK, reason="no IPv6 loopback here")
def test_ipv6_loopback(pki: Pki) -> None:
    with TlsServer([pki.leaf(HOST, "::1"), pki.intermediate], host="::1") as server:
        verdict = check(server, pki, address="::1")
        assert verdict.passed, verdict.message
        assert verdict.message.startswith(f"{HOST} (::1) port {server.port}")
        assert check(server, pki, host="::1", address="::1").passed


def test_bad_expectations_raise() -> None:
    with pytest.raises(ValueError, match="unknown TLS version"):
        TlsExpectation(min_version="SSLv3")
    with pytest.raises(ValueError, match="ocsp_stapling"):
        TlsExpectation(ocsp_stapling="yes")
    assert TlsExpectation(accept=["TLSv1.2"]).accept == ("TLSv1.2",)  # type: ignore[arg-type]


def test_listing_an_old_version_in_accept_does_not_weaken_trust(pki: Pki) -> None:
    """Offering TLS 1.1 needs @SECLEVEL=0; a 1024-bit RSA leaf must still be refused as weak."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.fakes.tls_server import make_leaf

    weak = make_leaf([HOST, LOOPBACK], issuer=pki.intermediate, key=rsa.generate_private_key(65537, 1024))
    with TlsServer([weak, pki.intermediate], min_version="TLSv1") as server:
        strict = check(server, pki)
        lowered = check(server, pki, accept=("TLSv1.1", "TLSv1.2"))
    assert strict.reason is Reason.WEAK_KEY  # OpenSSL's security level refused it
    assert lowered.reason is Reason.WEAK_KEY  # our copy of that rule, at @SECLEVEL=0
    assert "too weak" in lowered.message and "too weak" in strict.message
