"""URLs of the inventory, read with the HTTP client's own parser: the one module of this package that imports httpx.

The inventory must accept exactly the URLs the http and cors probes can send, so it parses
them with ``httpx.URL`` (a pure parser: no connection, no I/O) rather than a second grammar
that could disagree. What the rest of the package sees is :class:`UrlParts`, a plain record.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class UrlParts:
    """The parts of a URL validation and planning look at."""

    scheme: str
    host: str
    raw_host: bytes
    port: int | None
    raw_path: bytes
    query: bytes
    fragment: str

    @property
    def effective_port(self) -> int:
        """The port a connection goes to (the scheme's default when none is written)."""
        return self.port or (443 if self.scheme == "https" else 80)


def parse_url(value: str) -> UrlParts:
    """``value`` split into its parts; ValueError (httpx's words) when it is not a URL at all."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    return UrlParts(url.scheme, url.host, url.raw_host, url.port, url.raw_path, url.query, url.fragment)


def url_host_port(url: str) -> tuple[str, int]:
    """The host and port a check of ``url`` connects to."""
    parts = parse_url(url)
    return parts.host, parts.effective_port
