"""What a ``tls`` check expects (:class:`TlsExpectation`, the version names) and how a failure is reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from OpenSSL import SSL

if TYPE_CHECKING:
    from pytest_autoglm.probes.tls.policy import TlsPolicy

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason

#: Version names of the inventory, oldest first, and OpenSSL's numbers for them.
TLS_VERSIONS: Final[tuple[str, ...]] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


VERSION_NUMBER: Final[dict[str, int]] = {
    "TLSv1": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}


@dataclass(frozen=True)
class TlsExpectation:
    """One ``tls`` item of the inventory (inventory.md), with its defaults."""

    port: int = 443
    sni: str | None = None  # None: the host name; no SNI at all when the host is an IP literal
    verify: bool = True  # chain to an anchor AND name match; validity days are checked either way
    min_version: str | None = None  # every version below it must be refused
    accept: tuple[str, ...] = ()  # each of these must complete a handshake
    min_days_valid: int | None = None
    ocsp_stapling: str = "optional"  # "required" | "optional"
    client_cert: Path | None = None  # PEM; the key may be in the same file
    client_key: Path | None = None
    policy: TlsPolicy | None = None  # what the server may accept (versions, suites, groups, keys)
    enumerate: bool = False  # list what the server accepts in details, even without a policy
    aia_fetch: bool = False  # fetch a missing intermediate from the leaf's AIA URL, as browsers do
    revocation_ocsp: bool = False  # ask the OCSP responder when no staple came
    revocation_crl: bool = False  # fetch the CRL distribution point when no staple came

    def __post_init__(self) -> None:
        object.__setattr__(self, "accept", tuple(self.accept))
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range 1..65535")
        for version in (self.min_version, *self.accept):
            if version is not None and version not in VERSION_NUMBER:
                raise ValueError(f"unknown TLS version {version!r}; expected one of {', '.join(TLS_VERSIONS)}")
        if self.ocsp_stapling not in ("required", "optional"):
            raise ValueError(f"ocsp_stapling must be 'required' or 'optional', not {self.ocsp_stapling!r}")
        if self.min_days_valid is not None and self.min_days_valid < 0:
            raise ValueError(f"min_days_valid must be >= 0, not {self.min_days_valid}")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key given without client_cert")


def fail(
    layer: Layer, reason: Reason, where: str, text: str, address: str, details: dict[str, Any], **kw: Any
) -> Verdict:
    return Verdict.fail(layer, reason, f"{where}: {text}", address=address, details=details, **kw)
