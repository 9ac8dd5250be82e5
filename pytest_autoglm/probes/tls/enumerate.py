"""What a server accepts: protocol versions, cipher suites per version, groups, DH parameters.

Each question is a ClientHello of our own (:mod:`.wire`) answered by a ServerHello: no key
exchange, one round trip. Suites are found the way scanners do: offer every suite of a
version, note the one the server picks, offer the rest again, until it refuses. Groups the
same way (TLS 1.3: an empty key_share, so the HelloRetryRequest names the group; TLS 1.2:
the ServerKeyExchange names the curve). The DH group of a DHE suite is read from the
ServerKeyExchange and tested for size and for being a safe prime (p = 2q + 1, q prime:
otherwise a generator may lie in a small subgroup). Every loop runs at once (one task per
version and per question), all within the caller's deadline.
"""

from __future__ import annotations

import asyncio
import random
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.utils import CryptographyDeprecationWarning

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tls.expectation import TLS_VERSIONS
from pytest_autoglm.probes.tls.suites import (
    EC_GROUPS,
    GROUPS,
    LEGACY_SUITES,
    SUITES,
    TLS13_SUITES,
    group_name,
    suite_name,
)
from pytest_autoglm.probes.tls.wire import Hello, client_hello, server_hello

#: Miller-Rabin rounds (a composite passes one with probability at most 1/4); only used when OpenSSL
#: has already refused the group, so this decides "prime but not safe" versus "not prime".
_ROUNDS: Final = 8


@dataclass
class Enumeration:
    """What the server accepted, and what could not be asked (errors)."""

    versions: dict[str, bool] = field(default_factory=dict)
    suites: dict[str, list[int]] = field(default_factory=dict)  # version -> accepted suites, server order
    groups: dict[str, list[int]] = field(default_factory=dict)  # "TLSv1.3" / "TLSv1.2" -> accepted groups
    dh: dict[str, Any] | None = None  # bits, safe_prime, prime, generator, version
    errors: list[str] = field(default_factory=list)
    tcp: tuple[Reason, str] | None = None
    handshakes: int = 0

    def as_details(self) -> dict[str, Any]:
        """JSON-ready, for ``details["accepted"]`` (the HTML report shows it as a table)."""
        return {
            "versions": {v: self.versions.get(v) for v in TLS_VERSIONS},
            "suites": {v: [suite_name(c) for c in self.suites[v]] for v in TLS_VERSIONS if v in self.suites},
            "groups": {v: [group_name(c) for c in self.groups[v]] for v in TLS_VERSIONS if v in self.groups},
            "dh": self.dh,
            "handshakes": self.handshakes,
            **({"errors": self.errors} if self.errors else {}),
        }


def _probable_prime(n: int) -> bool:
    if n < 2:
        return False
    for small in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    rng = random.Random(n)  # deterministic per number: the same verdict every run
    for _ in range(_ROUNDS):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


@lru_cache(maxsize=64)
def dh_facts(p: int, g: int) -> tuple[bool, bool]:
    """(p is prime, p is a safe prime). Cached: servers share a handful of groups.

    OpenSSL's own check first (through ``cryptography``: ``DH_check`` accepts a group without
    q only when p is a safe prime and g suits it; RFC 7919 groups are known by value): C speed.
    When it refuses, Miller-Rabin here says whether p is at least prime.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # FFDH is deprecated there
            dh.DHParameterNumbers(p, g).parameters()
        return True, True
    except (ValueError, UnsupportedAlgorithm):
        pass
    prime = _probable_prime(p)
    return prime, prime and _probable_prime((p - 1) // 2)


class _Asker:
    """One server, one deadline; counts handshakes and keeps the first TCP failure."""

    def __init__(self, address: str, port: int, sni: str | None, deadline: float, out: Enumeration) -> None:
        self.address, self.port, self.sni, self.deadline, self.out = address, port, sni, deadline, out

    async def ask(self, version: str, suites: tuple[int, ...], groups: tuple[int, ...], *, full: bool = False) -> Hello:
        self.out.handshakes += 1
        hello = client_hello(version, suites, groups, self.sni)
        answer = await server_hello(self.address, self.port, hello, self.deadline, full_flight=full)
        if answer.tcp is not None and self.out.tcp is None:
            self.out.tcp = answer.tcp
        if answer.error and answer.error.startswith(("no answer", "not a TLS")):
            self.out.errors.append(f"{version}: {answer.error}")  # silence is not a refusal: say so
        return answer

    async def suites_of(self, version: str) -> None:
        offered = list(TLS13_SUITES if version == "TLSv1.3" else LEGACY_SUITES)
        groups = tuple(GROUPS)
        found: list[int] = []
        while offered:
            answer = await self.ask(version, tuple(offered), groups)
            if answer.version != version or answer.suite not in offered:
                break
            found.append(answer.suite)
            offered.remove(answer.suite)
        self.out.versions[version] = bool(found)
        if found:
            self.out.suites[version] = found

    async def groups_of_tls13(self) -> None:
        offered = list(GROUPS)
        found: list[int] = []
        while offered:
            answer = await self.ask("TLSv1.3", TLS13_SUITES, tuple(offered))
            if answer.version != "TLSv1.3" or answer.group not in offered:
                break
            found.append(answer.group)
            offered.remove(answer.group)
        if found:
            self.out.groups["TLSv1.3"] = found

    async def groups_of_legacy(self, version: str, ecdhe: tuple[int, ...]) -> None:
        offered = [g for g in GROUPS if g in EC_GROUPS]
        found: list[int] = []
        while offered:
            answer = await self.ask(version, ecdhe, tuple(offered), full=True)
            if answer.version != version or answer.group not in offered:
                break
            found.append(answer.group)
            offered.remove(answer.group)
        if found:
            self.out.groups[version] = found

    async def dh_of(self, version: str, dhe: tuple[int, ...]) -> None:
        answer = await self.ask(version, dhe, (), full=True)
        if answer.dh_p is None or answer.dh_g is None:
            return
        prime, safe = await asyncio.to_thread(dh_facts, answer.dh_p, answer.dh_g)
        self.out.dh = {
            "version": version,
            "suite": suite_name(answer.suite or 0),
            "bits": answer.dh_p.bit_length(),
            # small generators as numbers; a large one (a DSA-style group) as hex: JSON readers lose big ints
            "generator": answer.dh_g if answer.dh_g < 2**32 else f"0x{answer.dh_g:x}",
            "prime": prime,
            "safe_prime": safe,
        }


async def enumerate_server(address: str, port: int, sni: str | None, deadline: float) -> Enumeration:
    """Everything the server accepts, asked concurrently within ``deadline`` (loop time)."""
    out = Enumeration()
    asker = _Asker(address, port, sni, deadline, out)
    await asyncio.gather(*(asker.suites_of(v) for v in TLS_VERSIONS), asker.groups_of_tls13())
    legacy = [v for v in ("TLSv1.2", "TLSv1.1", "TLSv1") if out.versions.get(v)]
    follow_ups = []
    if legacy:
        best = legacy[0]
        accepted = [c for v in legacy for c in out.suites.get(v, [])]
        ecdhe = tuple(dict.fromkeys(c for c in accepted if SUITES[c].kx == "ECDHE"))
        dhe = tuple(dict.fromkeys(c for c in accepted if SUITES[c].kx.startswith("DHE")))
        if ecdhe:
            version = next(v for v in legacy if any(c in ecdhe for c in out.suites.get(v, [])))
            follow_ups.append(asker.groups_of_legacy(version, ecdhe))
        if dhe:
            version = next((v for v in legacy if any(c in dhe for c in out.suites.get(v, []))), best)
            follow_ups.append(asker.dh_of(version, dhe))
    if follow_ups:
        await asyncio.gather(*follow_ups)
    return out
