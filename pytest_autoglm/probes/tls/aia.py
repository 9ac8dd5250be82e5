"""Fetching a missing intermediate from the leaf's Authority Information Access URL, as browsers do.

Chrome, Edge and Safari complete a chain the server sent incompletely by downloading the
issuer named in the leaf's AIA "CA Issuers" URL; Firefox does not (it ships intermediates).
With ``aia_fetch: true`` the probe does the same, within the attempt's deadline, and says
so; without it an incomplete chain is ``incomplete_chain``. The URL is the certificate's,
so only ``http://`` is followed (RFC 5280 4.2.2.1), and at most 64 KiB are read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from cryptography import x509

from pytest_autoglm.probes.tls.chain import aia_issuer_url, load_der

_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fetched:
    url: str
    certificate: x509.Certificate | None
    note: str  # what happened, for details and messages


async def fetch_issuer(leaf: x509.Certificate, deadline: float) -> Fetched | None:
    """The issuer certificate at the leaf's AIA URL (DER, or PEM as some CAs serve); None: no URL."""
    url = aia_issuer_url(leaf)
    if url is None:
        return None
    if not url.lower().startswith("http://"):
        return Fetched(url, None, f"not fetched: only http:// AIA URLs are followed ({url})")
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return Fetched(url, None, "not fetched: no time left in the attempt")
    try:
        async with httpx.AsyncClient(timeout=remaining, follow_redirects=False, trust_env=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return Fetched(url, None, f"fetching {url} failed: {type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Fetched(url, None, f"fetching {url} answered HTTP {response.status_code}")
    body = response.content[:_MAX_BYTES]
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(body)
        else:
            cert = load_der(body)
    except ValueError:
        return Fetched(url, None, f"{url} did not serve a certificate")
    return Fetched(url, cert, f"fetched the intermediate from {url}")
