"""Cipher suites and key-exchange groups by code point, with the properties policies are written in.

The code points and IANA names are from the IANA "TLS Cipher Suites" and "TLS Supported
Groups" registries; the properties (key exchange, cipher, MAC) are read from the IANA name,
so the table is one line per suite. ``tests/probes/test_tls_policy.py`` checks every code
point against ``openssl ciphers -V -stdname`` where this OpenSSL knows the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The classes of ``ciphers.forbid`` (inventory.md), each a property of a suite.
CIPHER_CLASSES: Final[tuple[str, ...]] = (
    "CBC",
    "DHE",
    "RSA_KX",
    "3DES",
    "RC4",
    "NULL",
    "EXPORT",
    "SHA1_MAC",
    "ANON",
    "MD5",
)


@dataclass(frozen=True)
class Suite:
    code: int
    name: str  # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    kx: str  # ECDHE | DHE | RSA | ANY (TLS 1.3) | DH_anon | ECDH_anon | ...
    cipher: str  # AES_128_GCM, CHACHA20_POLY1305, AES_128_CBC, 3DES_EDE_CBC, RC4_128, NULL, ...
    mac: str  # SHA256, SHA384 (AEAD PRF hashes) or SHA, SHA256, SHA384, MD5 (HMAC)
    tls13: bool

    @property
    def classes(self) -> frozenset[str]:
        """The ``ciphers.forbid`` classes this suite falls in."""
        found = set()
        aead = any(mode in self.cipher for mode in ("GCM", "CCM", "POLY1305"))
        if "CBC" in self.cipher:
            found.add("CBC")
        if self.kx.startswith("DHE"):
            found.add("DHE")
        if self.kx in ("RSA", "RSA_EXPORT"):
            found.add("RSA_KX")
        if "3DES" in self.cipher:
            found.add("3DES")
        if "RC4" in self.cipher:
            found.add("RC4")
        if self.cipher == "NULL":
            found.add("NULL")
        if "EXPORT" in self.kx or "40" in self.cipher:
            found.add("EXPORT")
        if not aead and self.mac == "SHA":
            found.add("SHA1_MAC")
        if not aead and self.mac == "MD5":
            found.add("MD5")
        if "anon" in self.kx:
            found.add("ANON")
        return frozenset(found)

    @property
    def forward_secret(self) -> bool:
        return self.tls13 or self.kx.startswith(("ECDHE", "DHE"))


def _suite(code: int, name: str) -> Suite:
    if code >> 8 == 0x13:
        body = name.removeprefix("TLS_")
        cipher, _, mac = body.rpartition("_")
        return Suite(code, name, "ANY", cipher, mac, True)
    kx, _, rest = name.removeprefix("TLS_").partition("_WITH_")
    cipher, _, mac = rest.rpartition("_")
    if mac in ("CCM", "8"):  # TLS_RSA_WITH_AES_128_CCM(_8): no MAC part in the name
        cipher, mac = rest, "SHA256"
    return Suite(code, name, kx.replace("_RSA", "").replace("_ECDSA", "").replace("_DSS", "") or kx, cipher, mac, False)


_TABLE: Final[tuple[tuple[int, str], ...]] = (
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0x1304, "TLS_AES_128_CCM_SHA256"),
    (0x1305, "TLS_AES_128_CCM_8_SHA256"),
    (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0x00A2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"),
    (0x00A3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"),
    (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    (0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
    (0xC09E, "TLS_DHE_RSA_WITH_AES_128_CCM"),
    (0xC09F, "TLS_DHE_RSA_WITH_AES_256_CCM"),
    (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256"),
    (0x006A, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256"),
    (0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"),
    (0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA"),
    (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0xC09C, "TLS_RSA_WITH_AES_128_CCM"),
    (0xC09D, "TLS_RSA_WITH_AES_256_CCM"),
    (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"),
    (0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA"),
    (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    (0x0009, "TLS_RSA_WITH_DES_CBC_SHA"),
    (0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"),
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
    (0x003A, "TLS_DH_anon_WITH_AES_256_CBC_SHA"),
    (0xC018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
    (0xC019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"),
    (0xC006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA"),
    (0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA"),
    (0x003B, "TLS_RSA_WITH_NULL_SHA256"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    (0x0001, "TLS_RSA_WITH_NULL_MD5"),
)

SUITES: Final[dict[int, Suite]] = {code: _suite(code, name) for code, name in _TABLE}

#: Suites offered in a TLS 1.3 hello, and in a TLS 1.0-1.2 one (a TLS 1.2-only suite in a
#: TLS 1.0 hello is ignored by servers, so one list serves the three).
TLS13_SUITES: Final[tuple[int, ...]] = tuple(c for c, s in SUITES.items() if s.tls13)
LEGACY_SUITES: Final[tuple[int, ...]] = tuple(c for c, s in SUITES.items() if not s.tls13)

#: Named groups (IANA "TLS Supported Groups"): code -> (name, size in bits of security-relevant parameter).
GROUPS: Final[dict[int, tuple[str, int]]] = {
    29: ("x25519", 256),
    23: ("secp256r1", 256),
    24: ("secp384r1", 384),
    25: ("secp521r1", 521),
    30: ("x448", 448),
    21: ("secp224r1", 224),
    19: ("secp192r1", 192),
    26: ("brainpoolP256r1", 256),
    27: ("brainpoolP384r1", 384),
    28: ("brainpoolP512r1", 512),
    256: ("ffdhe2048", 2048),
    257: ("ffdhe3072", 3072),
    258: ("ffdhe4096", 4096),
    259: ("ffdhe6144", 6144),
    260: ("ffdhe8192", 8192),
}
#: Groups over elliptic curves (the rest are finite-field DH groups).
EC_GROUPS: Final = frozenset(c for c, (name, _) in GROUPS.items() if not name.startswith("ffdhe"))


def suite_name(code: int) -> str:
    suite = SUITES.get(code)
    return suite.name if suite is not None else f"0x{code:04X}"


def group_name(code: int) -> str:
    return GROUPS[code][0] if code in GROUPS else f"group 0x{code:04X}"
