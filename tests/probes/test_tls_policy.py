"""The policy judge, the suite table and the wire parser, against certificates and servers made here.

The nginx set (weak suites, DH groups, Mozilla profiles) is in tests/interop/test_interop_tls_policy.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tls.enumerate import Enumeration, dh_facts, enumerate_server
from pytest_autoglm.probes.tls.policy import TlsPolicy, expectation_extras, judge
from pytest_autoglm.probes.tls.suites import SUITES
from tests.fakes.tcp_servers import refused_port
from tests.fakes.tls_server import TlsServer, make_ca, make_leaf


def _cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: hashes.HashAlgorithm) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak.example")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some CA")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    signer = (
        ec.generate_private_key(ec.SECP256R1()) if algorithm.name != "sha1" else rsa.generate_private_key(65537, 2048)
    )
    return builder.sign(signer, algorithm)


def _problems(
    policy: TlsPolicy, accepted: Enumeration | None = None, chain: list[x509.Certificate] | None = None
) -> list[tuple[Reason, str]]:
    return judge(policy, accepted or Enumeration(), chain or [])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_sha1_signature_is_weak_signature(tmp_path: Path) -> None:
    """openssl makes the SHA-1 certificate (this cryptography refuses to sign with SHA-1)."""
    out = tmp_path / "sha1.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-sha1", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(out), "-subj", "/CN=weak.example", "-days", "30"],
        check=True, capture_output=True,
    )  # fmt: skip
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    problems = _problems(TlsPolicy(profile="mozilla-old"), chain=[cert])
    assert (
        Reason.WEAK_SIGNATURE,
        "the server's certificate is signed with sha1WithRSAEncryption (SHA-1 and MD5 are broken)",
    ) in problems
    good = _cert(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    assert not [p for p in _problems(TlsPolicy(profile="mozilla-old"), chain=[good]) if p[0] == Reason.WEAK_SIGNATURE]


def test_small_ec_key_is_weak_key() -> None:
    cert = _cert(ec.generate_private_key(ec.SECP224R1()), hashes.SHA256())
    problems = _problems(TlsPolicy(min_ec_bits=256), chain=[cert])
    assert problems == [
        (Reason.WEAK_KEY, "the server's certificate has a EC 224 bits, secp224r1 key, below 256 bits (key.min_ec_bits)")
    ]


def test_modern_profile_wants_an_ecdsa_certificate() -> None:
    cert = _cert(rsa.generate_private_key(65537, 2048), hashes.SHA256())
    problems = _problems(TlsPolicy(profile="mozilla-modern"), chain=[cert])
    assert [r for r, _ in problems] == [Reason.WEAK_KEY]
    assert "asks for ECDSA (P-256)" in problems[0][1]
    assert _problems(TlsPolicy(profile="mozilla-intermediate"), chain=[cert]) == []  # RSA 2048 is fine there


def test_weak_groups_and_non_forward_secret_suites() -> None:
    accepted = Enumeration(
        versions={"TLSv1.2": True}, suites={"TLSv1.2": [0x009C, 0xC02F]}, groups={"TLSv1.2": [21, 23]}
    )
    problems = _problems(TlsPolicy(require_forward_secrecy=True, min_ec_bits=256), accepted)
    assert (
        Reason.WEAK_KEY_EXCHANGE,
        "accepts TLS_RSA_WITH_AES_128_GCM_SHA256 without forward secrecy (require_forward_secrecy)",
    ) in problems
    assert any("secp224r1 (224 bits, below 256)" in text for _, text in problems)


def test_policy_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        TlsPolicy(profile="mozilla-future")
    with pytest.raises(ValueError, match="unknown cipher class"):
        TlsPolicy(forbid=("RC5",))


def test_expectation_extras_from_an_inventory_section() -> None:
    extras = expectation_extras(
        {"policy": "mozilla-intermediate", "ciphers": {"forbid": ["CBC"]}, "dh": {"min_bits": 3072, "safe_prime": True},
         "key": None, "revocation": {"ocsp": True, "crl": False}, "aia_fetch": True}
    )  # fmt: skip
    assert extras["policy"] == TlsPolicy(
        profile="mozilla-intermediate", forbid=("CBC",), dh_min_bits=3072, dh_safe_prime=True
    )
    assert (extras["aia_fetch"], extras["revocation_ocsp"], extras["revocation_crl"]) == (True, True, False)
    assert expectation_extras({})["policy"] is None


def test_dh_facts() -> None:
    safe = 2 * 1019 + 1  # 2039 = 2 * 1019 + 1, both prime
    assert dh_facts(safe, 2)[0] is True
    assert dh_facts(2 * 1021 + 1, 2) == (False, False)  # 2043 = 3 * 681
    assert dh_facts(97, 5) == (True, False)  # 97 is prime, (97 - 1) / 2 = 48 is not


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_suite_table_matches_openssl() -> None:
    listing = subprocess.run(
        ["openssl", "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    known = {int(m[1] + m[2], 16): m[3] for m in re.finditer(r"0x(..),0x(..) - (\S+)", listing)}
    assert {code: SUITES[code].name for code in SUITES if code in known} == {
        code: known[code] for code in SUITES if code in known
    }
    assert len([c for c in SUITES if c in known]) > 40


def test_enumeration_of_a_python_server() -> None:
    leaf = make_leaf(["api.example.com"], issuer=make_ca("Enum CA"))
    with TlsServer([leaf], min_version="TLSv1.2", max_version="TLSv1.2") as server:

        async def run() -> Enumeration:
            return await enumerate_server(
                "127.0.0.1", server.port, "api.example.com", asyncio.get_running_loop().time() + 5
            )

        accepted = asyncio.run(run())
    assert accepted.versions == {"TLSv1": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": False}
    assert all(SUITES[c].kx == "ECDHE" for c in accepted.suites["TLSv1.2"])  # an ECDSA key: ECDHE-ECDSA only
    assert accepted.groups["TLSv1.2"][0] in (29, 23)


def test_enumeration_of_a_closed_port_says_tcp() -> None:
    async def run(port: int) -> Enumeration:
        return await enumerate_server("127.0.0.1", port, None, asyncio.get_running_loop().time() + 2)

    with refused_port() as port:
        accepted = asyncio.run(run(port))
    assert accepted.tcp is not None and accepted.tcp[0] == Reason.REFUSED
    assert not any(accepted.versions.values())


def test_inventory_policy_reaches_the_probe(tmp_path: Path) -> None:
    """From YAML through the plan and the engine's dispatch to a verdict (a real server)."""
    from pytest_autoglm.engine import dispatch
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory
    from tests.fakes.tls_server import pem

    root = make_ca("Dispatch Root")
    leaf = make_leaf(["127.0.0.1"], issuer=root)
    (tmp_path / "ca.pem").write_bytes(pem(root))
    with TlsServer([leaf, root], min_version="TLSv1.2") as server:
        (tmp_path / "inv.yaml").write_text(
            f"version: 1\ndefaults: {{ca_bundle: ca.pem}}\ntargets:\n  - name: t\n    host: 127.0.0.1\n"
            f"    tls: {{port: {server.port}, policy: mozilla-modern, ciphers: {{forbid: [CBC]}}}}\n"
        )
        (check,) = [c for c in build_plan(load_inventory(tmp_path / "inv.yaml")) if c.kind == "tls"]
        verdict = asyncio.run(dispatch.attempt(check, "127.0.0.1"))
    assert verdict.reason == Reason.OLD_PROTOCOL, verdict.message
    assert "mozilla-modern" in verdict.message
    assert any(p["reason"] == "weak_cipher" and "(CBC)" in p["message"] for p in verdict.details["problems"])


def test_composite_dh_modulus_fails_any_policy_and_profiles_want_safe_primes() -> None:
    composite = {"bits": 2048, "prime": False, "safe_prime": False, "generator": 2, "suite": "TLS_DHE_RSA_X"}
    problems = _problems(TlsPolicy(dh_min_bits=1024), Enumeration(dh=composite))
    assert problems == [
        (
            Reason.WEAK_KEY_EXCHANGE,
            "the server's 2048-bit DH modulus p is not prime, generator 2: small-subgroup attacks are possible"
            " (any policy: a composite modulus has no security)",
        )
    ]
    nonsafe = {**composite, "prime": True, "generator": "0x" + "f" * 512}
    problems = _problems(TlsPolicy(profile="mozilla-old"), Enumeration(dh=nonsafe))
    assert [t for _, t in problems] == [
        "the server's 2048-bit DH modulus p is not a safe prime (p = 2q + 1 with q prime), generator of 2048 bits:"
        " small-subgroup attacks are possible (mozilla-old (Mozilla guidelines 5.7))"
    ]
    assert _problems(TlsPolicy(dh_min_bits=1024), Enumeration(dh=nonsafe)) == []  # size only: not asked
