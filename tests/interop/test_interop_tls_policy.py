"""TLS policy against real nginx servers (a badssl-like set), cross-checked with ``openssl s_client``.

Each server has a negative case (the policy it breaks, the reason and the words naming the
offender) and the Mozilla servers a positive control. Where ``openssl s_client`` disagrees
(the 10,000-name certificate, the certificate without a subjectAltName) the test pins both
answers and the docstring says which one is right.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tls import TlsExpectation, TlsPolicy, check_tls
from tests.interop.daemons import DaemonFailed, missing_tool
from tests.interop.tls_policy_lab import HOST, PolicyLab, policy_lab

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyLab]:
    reason = missing_tool("nginx", "openssl")
    if reason:
        pytest.skip(reason)
    try:
        with policy_lab(tmp_path_factory.mktemp("tls-policy")) as running:
            yield running
    except DaemonFailed as exc:
        pytest.skip(f"nginx did not start: {exc}")


def _check(lab: PolicyLab, server: str, **expect: Any) -> Verdict:
    return asyncio.run(
        check_tls(
            HOST, "127.0.0.1", TlsExpectation(port=lab.ports[server], **expect), timeout=TIMEOUT, ca_bundle=lab.root_pem
        )
    )


CASES = [
    # (id, server, policy, expected reason or None, words in the message)
    ("cbc-forbidden", "cbc_only", TlsPolicy(forbid=("CBC",)), Reason.WEAK_CIPHER, ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "(CBC)", "ciphers.forbid"]),
    ("cbc-sha1-mac", "cbc_only", TlsPolicy(forbid=("SHA1_MAC",)), Reason.WEAK_CIPHER, ["(SHA1_MAC)"]),
    ("cbc-not-intermediate", "cbc_only", TlsPolicy(profile="mozilla-intermediate"), Reason.WEAK_CIPHER, ["not in mozilla-intermediate's cipher suites", "5.7"]),
    ("cbc-allowed-by-gcm-only-rule", "cbc_only", TlsPolicy(forbid=("RC4", "3DES")), None, []),
    ("dhe-1024", "dhe_1024", TlsPolicy(dh_min_bits=2048), Reason.WEAK_KEY_EXCHANGE, ["1024-bit DH group", "below 2048", "dh.min_bits"]),
    ("dhe-1024-intermediate", "dhe_1024", TlsPolicy(profile="mozilla-intermediate"), Reason.WEAK_KEY_EXCHANGE, ["1024-bit", "mozilla-intermediate"]),
    ("dhe-1024-forbid-dhe", "dhe_1024", TlsPolicy(forbid=("DHE",)), Reason.WEAK_CIPHER, ["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "(DHE)"]),
    ("dhe-nonsafe", "dhe_nonsafe", TlsPolicy(dh_safe_prime=True), Reason.WEAK_KEY_EXCHANGE, ["not a safe prime", "dh.safe_prime"]),
    ("dhe-nonsafe-intermediate", "dhe_nonsafe", TlsPolicy(profile="mozilla-intermediate"), Reason.WEAK_KEY_EXCHANGE, ["not a safe prime", "mozilla-intermediate"]),
    ("dhe-nonsafe-size-ok", "dhe_nonsafe", TlsPolicy(dh_min_bits=2048), None, []),
    ("dhe-ffdhe2048-safe", "dhe_ffdhe2048", TlsPolicy(dh_min_bits=2048, dh_safe_prime=True), None, []),
    ("tls10-intermediate", "tls10", TlsPolicy(profile="mozilla-intermediate"), Reason.OLD_PROTOCOL, ["accepts TLSv1 and TLSv1.1", "allows only TLSv1.2, TLSv1.3"]),
    ("static-rsa-no-fs", "static_rsa", TlsPolicy(require_forward_secrecy=True), Reason.WEAK_KEY_EXCHANGE, ["TLS_RSA_WITH_AES_128_GCM_SHA256", "require_forward_secrecy"]),
    ("static-rsa-forbid-rsa-kx", "static_rsa", TlsPolicy(forbid=("RSA_KX",)), Reason.WEAK_CIPHER, ["(RSA_KX)"]),
    ("rsa-key-floor", "static_rsa", TlsPolicy(min_rsa_bits=3072), Reason.WEAK_KEY, ["the server's certificate has a RSA 2048 bits key", "key.min_rsa_bits"]),
    ("modern-passes-modern", "mozilla_modern", TlsPolicy(profile="mozilla-modern"), None, []),
    ("intermediate-passes-intermediate", "mozilla_intermediate", TlsPolicy(profile="mozilla-intermediate"), None, []),
    ("intermediate-fails-modern", "mozilla_intermediate", TlsPolicy(profile="mozilla-modern"), Reason.OLD_PROTOCOL, ["accepts TLSv1.2", "mozilla-modern"]),
    ("old-passes-old", "mozilla_old", TlsPolicy(profile="mozilla-old"), None, []),
    ("old-fails-intermediate", "mozilla_old", TlsPolicy(profile="mozilla-intermediate"), Reason.OLD_PROTOCOL, ["accepts TLSv1 and TLSv1.1"]),
    ("modern-rsa-certificate", "mozilla_old", TlsPolicy(profile="mozilla-modern"), Reason.OLD_PROTOCOL, []),
]  # fmt: skip


@pytest.mark.parametrize(("server", "policy", "reason", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_policy(lab: PolicyLab, server: str, policy: TlsPolicy, reason: Reason | None, words: list[str]) -> None:
    verdict = _check(lab, server, policy=policy)
    if reason is None:
        assert verdict.passed, verdict.message
    else:
        assert verdict.reason == reason, verdict.message
        for word in words:
            assert word in verdict.message, verdict.message
    assert "accepted" in verdict.details


def test_enumeration_details(lab: PolicyLab) -> None:
    accepted = _check(lab, "mozilla_old", enumerate=True).details["accepted"]
    assert accepted["versions"] == {"TLSv1": True, "TLSv1.1": True, "TLSv1.2": True, "TLSv1.3": True}
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in accepted["suites"]["TLSv1.2"]
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" not in accepted["suites"]["TLSv1"]  # a TLS 1.2-only suite
    assert len(accepted["suites"]["TLSv1.3"]) == 3
    assert set(accepted["groups"]["TLSv1.3"]) == {"x25519", "secp256r1", "secp384r1"}
    assert accepted["dh"]["bits"] == 1024 and accepted["dh"]["safe_prime"] is True
    keys = _check(lab, "mozilla_old", enumerate=True).details["chain_keys"]
    assert [(k["depth"], k["key_type"], k["key_size"]) for k in keys] == [(0, "RSA", 2048), (1, "EC", 256)]
    assert keys[0]["signature_algorithm"] == "ecdsa-with-SHA256"


# --------------------------------------------------------------------------- openssl s_client cross-checks


def _s_client(lab: PolicyLab, server: str, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [
        "openssl", "s_client", "-connect", f"127.0.0.1:{lab.ports[server]}", "-servername", HOST,
        "-CAfile", str(lab.root_pem), "-verify_return_error", "-verify_hostname", HOST, *extra,
    ]  # fmt: skip
    return subprocess.run(argv, input="", capture_output=True, text=True, timeout=20, check=False)


def test_s_client_agrees_on_dh_size(lab: PolicyLab) -> None:
    tool = _s_client(lab, "dhe_1024", "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")
    assert "Server Temp Key: DH, 1024 bits" in tool.stdout, tool.stdout[-1500:]
    assert _check(lab, "dhe_1024", enumerate=True).details["accepted"]["dh"]["bits"] == 1024


def test_s_client_agrees_tls10_is_accepted(lab: PolicyLab) -> None:
    tool = _s_client(lab, "tls10", "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert tool.returncode == 0 and "Protocol  : TLSv1" in tool.stdout, tool.stdout[-1500:]
    assert _check(lab, "tls10", enumerate=True).details["accepted"]["versions"]["TLSv1"] is True


def test_s_client_agrees_cbc_only_refuses_gcm(lab: PolicyLab) -> None:
    assert _s_client(lab, "cbc_only", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256").returncode != 0
    assert _s_client(lab, "cbc_only", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA").returncode == 0
    suites = _check(lab, "cbc_only", enumerate=True).details["accepted"]["suites"]
    assert set(suites["TLSv1.2"]) == {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"}


def test_big_certificate_s_client_fails_we_judge_it(lab: PolicyLab) -> None:
    """s_client (OpenSSL 3.0, 100 KiB max_cert_list) fails; browsers accept ~210 KiB chains: we side with them."""
    tool = _s_client(lab, "bigsan")
    assert tool.returncode != 0 and "excessive message size" in (tool.stdout + tool.stderr).lower()
    verdict = _check(lab, "bigsan")
    assert verdict.passed, verdict.message
    assert verdict.details["sans_count"] == 10_000


def test_no_san_s_client_accepts_we_refuse(lab: PolicyLab) -> None:
    """OpenSSL's X509_check_host falls back to the CN when there is no SAN; RFC 9525, the CA/B Forum and
    browsers do not: we are right to fail ``hostname``."""
    tool = _s_client(lab, "nosan")
    assert tool.returncode == 0 and "Verify return code: 0 (ok)" in tool.stdout, tool.stdout[-1500:]
    verdict = _check(lab, "nosan")
    assert verdict.reason == Reason.HOSTNAME and "no subjectAltName" in verdict.message


def test_full_policy_check_handshake_budget(lab: PolicyLab) -> None:
    """One policy check of the widest server stays a bounded number of connections (figures: docs/performance.md)."""
    verdict = _check(lab, "mozilla_old", policy=TlsPolicy(profile="mozilla-old"))
    assert verdict.passed, verdict.message
    assert verdict.details["accepted"]["handshakes"] <= 60


def test_incomplete_chain_with_aia_against_nginx(lab: PolicyLab) -> None:
    """nginx sends the leaf alone; the leaf's AIA URL is served by nginx over plain HTTP.

    s_client fails to verify (it never fetches), as Firefox would; Chrome fetches. We say
    ``incomplete_chain`` by default and, with ``aia_fetch``, pass and say what we fetched.
    """
    tool = _s_client(lab, "incomplete_aia")
    assert tool.returncode != 0 and "unable to" in (tool.stdout + tool.stderr), tool.stdout[-800:]
    verdict = _check(lab, "incomplete_aia")
    assert verdict.reason == Reason.INCOMPLETE_CHAIN, verdict.message
    assert f"published at http://127.0.0.1:{lab.aia_port}/inter.crt" in verdict.message
    fetched = _check(lab, "incomplete_aia", aia_fetch=True)
    assert fetched.passed, fetched.message
    assert f"fetched from http://127.0.0.1:{lab.aia_port}/inter.crt" in fetched.message


def test_weak_leaf_key_is_weak_key(lab: PolicyLab) -> None:
    """OpenSSL's default security level refuses a 1024-bit RSA leaf: a sound chain with a weak key (Chrome: ERR_CERT_WEAK_KEY)."""
    verdict = _check(lab, "rsa1024")
    assert verdict.reason == Reason.WEAK_KEY, verdict.message
    assert "the server's certificate's key is too weak" in verdict.message
    with_policy = _check(lab, "rsa1024", policy=TlsPolicy(min_rsa_bits=2048))
    assert any("RSA 1024 bits key, below 2048 bits" in p["message"] for p in with_policy.details["problems"])


def test_sha1_signed_leaf_is_weak_signature(lab: PolicyLab) -> None:
    verdict = _check(lab, "sha1_leaf")
    assert verdict.reason == Reason.WEAK_SIGNATURE, verdict.message
    assert "the server's certificate's signature algorithm is too weak" in verdict.message
    tool = _s_client(lab, "sha1_leaf")
    assert tool.returncode != 0  # s_client at the default security level refuses it too


def test_dh_key_too_small_is_a_definite_answer(lab: PolicyLab) -> None:
    """A server offering only 1024-bit DHE: this machine's OpenSSL refuses the group ("dh key too
    small") during the handshake. That is an answer, not a lost packet, so the engine must not
    retry it (issue 15: definite answers are never retried)."""
    from pytest_autoglm.core.vocabulary import worth_retrying

    verdict = _check(lab, "dhe_1024")
    assert (verdict.passed, verdict.reason) == (False, Reason.HANDSHAKE), verdict
    assert "dh key too small" in verdict.message
    assert not worth_retrying(verdict.reason, verdict.transient), verdict
