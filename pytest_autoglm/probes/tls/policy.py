"""TLS policy as code: Mozilla's profiles and explicit rules, judged against what the server accepts.

The profiles transcribe Mozilla's Server Side TLS guidelines, **version 5.7**
(https://wiki.mozilla.org/Security/Server_Side_TLS, JSON at
https://ssl-config.mozilla.org/guidelines/5.7.json): the facts only, written here as our own
table. Explicit rules (``ciphers.forbid``, ``require_forward_secrecy``, ``key``, ``dh``)
refine a profile (a stricter number wins over the profile's) or stand alone.

Every finding names what the server accepts and the rule it breaks; the reasons are
``old_protocol`` (a version the policy does not allow), ``weak_cipher`` (a suite),
``weak_key_exchange`` (no forward secrecy, a group, DH size or a DH group that is not a safe
prime), ``weak_key`` (a certificate key) and ``weak_signature`` (a certificate signature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tls.chain import key_info, short_name, signature_algorithm
from pytest_autoglm.probes.tls.enumerate import Enumeration
from pytest_autoglm.probes.tls.expectation import TLS_VERSIONS
from pytest_autoglm.probes.tls.suites import CIPHER_CLASSES, GROUPS, SUITES, suite_name

MOZILLA_VERSION: Final = "5.7"

_TLS13_SUITES: Final = frozenset({0x1301, 0x1302, 0x1303})
_MOZ_GROUPS: Final = frozenset({29, 23, 24})  # X25519, prime256v1, secp384r1
#: Intermediate's TLS 1.2 suites (5.7): ECDHE-{ECDSA,RSA} AES-GCM and ChaCha20, DHE-RSA AES-GCM and ChaCha20.
_INTERMEDIATE_12: Final = frozenset({0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009E, 0x009F, 0xCCAA})
#: Old's TLS 1.0-1.2 suites (5.7): intermediate's plus ECDHE/DHE CBC, RSA key exchange, and 3DES.
_OLD_12: Final = _INTERMEDIATE_12 | frozenset(
    {0xC023, 0xC027, 0xC009, 0xC013, 0xC024, 0xC028, 0xC00A, 0xC014, 0x0067, 0x006B}
    | {0x009C, 0x009D, 0x003C, 0x003D, 0x002F, 0x0035, 0x000A}
)


@dataclass(frozen=True)
class Profile:
    name: str
    versions: frozenset[str]
    suites: frozenset[int]  # every version's suites together
    groups: frozenset[int]
    key_types: frozenset[str]  # certificate key types
    min_rsa_bits: int
    min_ec_bits: int
    min_dh_bits: int | None  # None: DHE not allowed at all


PROFILES: Final[dict[str, Profile]] = {
    "mozilla-modern": Profile(
        "mozilla-modern", frozenset({"TLSv1.3"}), _TLS13_SUITES, _MOZ_GROUPS, frozenset({"EC"}), 2048, 256, None
    ),
    "mozilla-intermediate": Profile(
        "mozilla-intermediate",
        frozenset({"TLSv1.2", "TLSv1.3"}),
        _TLS13_SUITES | _INTERMEDIATE_12,
        _MOZ_GROUPS,
        frozenset({"EC", "RSA"}),
        2048,
        256,
        2048,
    ),
    "mozilla-old": Profile(
        "mozilla-old",
        frozenset(TLS_VERSIONS),
        _TLS13_SUITES | _OLD_12,
        _MOZ_GROUPS,
        frozenset({"RSA", "EC"}),
        2048,
        256,
        1024,
    ),
}

_WEAK_HASHES: Final = ("md5", "sha1")


@dataclass(frozen=True)
class TlsPolicy:
    """One ``tls`` item's policy (inventory.md "TLS policy"); every field optional."""

    profile: str | None = None  # a key of PROFILES
    forbid: tuple[str, ...] = ()  # CIPHER_CLASSES
    require_forward_secrecy: bool = False
    min_rsa_bits: int | None = None
    min_ec_bits: int | None = None
    dh_min_bits: int | None = None
    dh_safe_prime: bool = False

    def __post_init__(self) -> None:
        if self.profile is not None and self.profile not in PROFILES:
            raise ValueError(f"unknown policy {self.profile!r}; expected one of {', '.join(PROFILES)}")
        for name in self.forbid:
            if name not in CIPHER_CLASSES:
                raise ValueError(f"unknown cipher class {name!r}; expected one of {', '.join(CIPHER_CLASSES)}")


Problems = list[tuple[Reason, str]]


def _rule(policy: TlsPolicy, explicit: str) -> str:
    return (
        explicit if policy.profile is None else f"{explicit} ({policy.profile}, Mozilla guidelines {MOZILLA_VERSION})"
    )


def _listing(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def judge(policy: TlsPolicy, accepted: Enumeration, chain: Sequence[x509.Certificate]) -> Problems:
    """Every way the server breaks ``policy``: one problem per rule, naming what offends."""
    profile = PROFILES[policy.profile] if policy.profile else None
    problems: Problems = []
    problems += _versions(profile, accepted)
    problems += _suites(policy, profile, accepted)
    problems += _key_exchange(policy, profile, accepted)
    problems += _keys(policy, profile, chain)
    problems += _signatures(policy, chain)
    return problems


def _versions(profile: Profile | None, accepted: Enumeration) -> Problems:
    if profile is None:
        return []
    extra = [v for v in TLS_VERSIONS if accepted.versions.get(v) and v not in profile.versions]
    if not extra:
        return []
    allowed = ", ".join(v for v in TLS_VERSIONS if v in profile.versions)
    text = f"accepts {' and '.join(extra)}; {profile.name} (Mozilla guidelines {MOZILLA_VERSION}) allows only {allowed}"
    return [(Reason.OLD_PROTOCOL, text)]


def _accepted_suites(accepted: Enumeration) -> list[tuple[str, int]]:
    return [(v, c) for v in TLS_VERSIONS for c in accepted.suites.get(v, [])]


def _suites(policy: TlsPolicy, profile: Profile | None, accepted: Enumeration) -> Problems:
    problems: Problems = []
    pairs = _accepted_suites(accepted)
    if profile is not None:
        outside = list(
            dict.fromkeys(suite_name(c) for v, c in pairs if c not in profile.suites and v in profile.versions)
        )
        if outside:
            problems.append(
                (
                    Reason.WEAK_CIPHER,
                    f"accepts {_listing(outside)}, not in {profile.name}'s cipher suites"
                    f" (Mozilla guidelines {MOZILLA_VERSION})",
                )
            )
    if policy.forbid:
        found: dict[str, list[str]] = {}
        for _, code in pairs:
            for cls in sorted(SUITES[code].classes & set(policy.forbid)):
                found.setdefault(cls, [])
                if suite_name(code) not in found[cls]:
                    found[cls].append(suite_name(code))
        for cls, names in found.items():
            problems.append((Reason.WEAK_CIPHER, f"accepts {_listing(names)} ({cls}), forbidden by ciphers.forbid"))
    return problems


def _key_exchange(policy: TlsPolicy, profile: Profile | None, accepted: Enumeration) -> Problems:
    problems: Problems = []
    pairs = _accepted_suites(accepted)
    if policy.require_forward_secrecy:
        static = list(dict.fromkeys(suite_name(c) for _, c in pairs if not SUITES[c].forward_secret))
        if static:
            problems.append(
                (
                    Reason.WEAK_KEY_EXCHANGE,
                    f"accepts {_listing(static)} without forward secrecy (require_forward_secrecy)",
                )
            )
    groups = list(dict.fromkeys(g for codes in accepted.groups.values() for g in codes))
    ec_floor = max(filter(None, [policy.min_ec_bits, profile.min_ec_bits if profile else None]), default=None)
    ff_floor = max(filter(None, [policy.dh_min_bits, profile.min_dh_bits if profile else None]), default=None)
    weak = []
    for group in groups:
        name, bits = GROUPS.get(group, (f"0x{group:04X}", 0))
        floor = ff_floor if name.startswith("ffdhe") else ec_floor
        if floor is not None and bits < floor:
            weak.append(f"{name} ({bits} bits, below {floor})")
    if weak:
        rule = (
            "key.min_ec_bits / dh.min_bits"
            if profile is None
            else f"{profile.name} (Mozilla guidelines {MOZILLA_VERSION})"
        )
        problems.append((Reason.WEAK_KEY_EXCHANGE, f"accepts group {_listing(weak)} ({rule})"))
    dh = accepted.dh
    if dh is not None:
        problems += _dh(policy, profile, dh)
    return problems


def _dh(policy: TlsPolicy, profile: Profile | None, dh: dict[str, Any]) -> Problems:
    problems: Problems = []
    floor = policy.dh_min_bits
    rule = "dh.min_bits"
    if profile is not None:
        if profile.min_dh_bits is None:
            what = f"{dh['suite']} with a {dh['bits']}-bit DH group"
            text = f"accepts {what}; {profile.name} (Mozilla guidelines {MOZILLA_VERSION}) allows no DHE suite"
            problems.append((Reason.WEAK_KEY_EXCHANGE, text))
        elif floor is None or profile.min_dh_bits > floor:
            floor, rule = profile.min_dh_bits, f"{profile.name} (Mozilla guidelines {MOZILLA_VERSION})"
    if floor is not None and dh["bits"] < floor:
        problems.append(
            (Reason.WEAK_KEY_EXCHANGE, f"DHE uses a {dh['bits']}-bit DH group ({dh['suite']}), below {floor} ({rule})")
        )
    # A profile's DH groups are safe primes (ffdhe2048, or ``openssl dhparam`` output); a composite
    # modulus is broken under any policy.
    rules = [r for r, on in (("dh.safe_prime", policy.dh_safe_prime), (_profile_rule(profile), profile)) if on]
    if not dh["prime"]:
        rules = rules or ["any policy: a composite modulus has no security"]
    if rules and not dh["safe_prime"]:
        what = "is not prime" if not dh["prime"] else "is not a safe prime (p = 2q + 1 with q prime)"
        generator = dh["generator"]
        if isinstance(generator, str):  # hex of a large generator: its size says enough
            generator = f"of {(len(generator) - 2) * 4} bits"
        problems.append(
            (
                Reason.WEAK_KEY_EXCHANGE,
                f"the server's {dh['bits']}-bit DH modulus p {what}, generator {generator}:"
                f" small-subgroup attacks are possible ({rules[0]})",
            )
        )
    return problems


def _profile_rule(profile: Profile | None) -> str:
    return "" if profile is None else f"{profile.name} (Mozilla guidelines {MOZILLA_VERSION})"


def _keys(policy: TlsPolicy, profile: Profile | None, chain: Sequence[x509.Certificate]) -> Problems:
    problems: Problems = []
    rsa_floor = max(filter(None, [policy.min_rsa_bits, profile.min_rsa_bits if profile else None]), default=None)
    ec_floor = max(filter(None, [policy.min_ec_bits, profile.min_ec_bits if profile else None]), default=None)
    for depth, cert in enumerate(chain):
        kind, bits, curve = key_info(cert)
        whose = "the server's certificate" if depth == 0 else f"CA certificate '{short_name(cert.subject)}'"
        floor = {"RSA": rsa_floor, "DSA": rsa_floor, "EC": ec_floor}.get(kind)
        if bits is not None and floor is not None and bits < floor:
            rule = "key.min_rsa_bits" if kind in ("RSA", "DSA") else "key.min_ec_bits"
            if profile is not None and floor == (profile.min_rsa_bits if kind != "EC" else profile.min_ec_bits):
                rule = f"{profile.name} (Mozilla guidelines {MOZILLA_VERSION})"
            shown = f"{kind} {bits} bits" + (f", {curve}" if curve else "")
            problems.append((Reason.WEAK_KEY, f"{whose} has a {shown} key, below {floor} bits ({rule})"))
        if depth == 0 and profile is not None and kind not in profile.key_types:
            wanted = " or ".join("ECDSA (P-256)" if t == "EC" else "RSA (2048 bits)" for t in sorted(profile.key_types))
            problems.append(
                (
                    Reason.WEAK_KEY,
                    f"the server's certificate has a {kind} key; {profile.name} (Mozilla guidelines"
                    f" {MOZILLA_VERSION}) asks for {wanted}",
                )
            )
    return problems


def _signatures(policy: TlsPolicy, chain: Sequence[x509.Certificate]) -> Problems:
    """SHA-1 and MD5 signatures below the root (a root's own signature is not checked by anyone)."""
    if policy == TlsPolicy():
        return []
    problems: Problems = []
    for depth, cert in enumerate(chain):
        if cert.issuer == cert.subject and depth > 0:
            continue
        algorithm = signature_algorithm(cert)
        if any(weak in algorithm.lower() for weak in _WEAK_HASHES):
            whose = "the server's certificate" if depth == 0 else f"CA certificate '{short_name(cert.subject)}'"
            problems.append((Reason.WEAK_SIGNATURE, f"{whose} is signed with {algorithm} (SHA-1 and MD5 are broken)"))
    return problems


def chain_keys(chain: Sequence[x509.Certificate]) -> list[dict[str, Any]]:
    """Key and signature algorithm of every certificate the server sent, for ``details``."""
    rows = []
    for depth, cert in enumerate(chain):
        kind, bits, curve = key_info(cert)
        rows.append(
            {
                "depth": depth,
                "subject": short_name(cert.subject),
                "key_type": kind,
                "key_size": bits,
                "key_curve": curve,
                "signature_algorithm": signature_algorithm(cert),
            }
        )
    return rows


def expectation_extras(section: dict[str, Any]) -> dict[str, Any]:
    """``TlsExpectation`` keywords for the policy keys of an inventory tls group (its ``model_dump()``).

    Here rather than in the engine so a new policy key touches the probe and the inventory only.
    """
    ciphers = section.get("ciphers") or {}
    key = section.get("key") or {}
    dh = section.get("dh") or {}
    revocation = section.get("revocation") or {}
    policy = TlsPolicy(
        profile=section.get("policy"),
        forbid=tuple(ciphers.get("forbid") or ()),
        require_forward_secrecy=bool(section.get("require_forward_secrecy")),
        min_rsa_bits=key.get("min_rsa_bits"),
        min_ec_bits=key.get("min_ec_bits"),
        dh_min_bits=dh.get("min_bits"),
        dh_safe_prime=bool(dh.get("safe_prime")),
    )
    return {
        "policy": None if policy == TlsPolicy() else policy,
        "enumerate": bool(section.get("enumerate")),
        "aia_fetch": bool(section.get("aia_fetch")),
        "revocation_ocsp": bool(revocation.get("ocsp")),
        "revocation_crl": bool(revocation.get("crl")),
    }
