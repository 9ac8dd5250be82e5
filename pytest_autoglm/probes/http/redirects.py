"""Following redirects by hand, so every hop is recorded and secrets never cross to another origin."""

from __future__ import annotations

import httpx

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.http.attempt import REDIRECT_CODES, BodyReader, HttpAttempt
from pytest_autoglm.probes.http.exchange import Hop
from pytest_autoglm.probes.http.expectation import HttpExpectation

MAX_REDIRECTS = 10


#: User headers that may follow a redirect to another origin; everything else may be a secret.
_CROSS_ORIGIN_SAFE_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type", "user-agent"})


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), port


class Stop(Exception):
    """A redirect chain that cannot go on; carries the Verdict."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict


async def request_hops(attempt: HttpAttempt, expect: HttpExpectation, reader: BodyReader | None = None) -> list[Hop]:
    """Send the request and, when asked, follow redirects as a browser would."""
    url = httpx.URL(expect.url)
    first = _origin(url)
    method = expect.method
    headers = dict(expect.headers)
    hops: list[Hop] = []
    while True:
        following = expect.follow_redirects and len(hops) < MAX_REDIRECTS
        hop = await attempt.exchange(
            url,
            method,
            headers,
            max_body=expect.max_body_bytes,
            skip_redirect_body=following,
            content=expect.content if method == expect.method else None,  # a 303 (or 301/302 of a POST) drops it
            reader=reader,
        )
        hops.append(hop)
        location = hop.headers.get("location")
        if not expect.follow_redirects or hop.status not in REDIRECT_CODES or location is None:
            return hops
        if len(hops) > MAX_REDIRECTS:
            raise Stop(
                attempt.verdict(
                    Layer.HTTP,
                    Reason.STATUS,
                    f"{attempt.where()}: more than {MAX_REDIRECTS} redirects",
                    details={**attempt.base_details(), "redirects": [str(h.url) for h in hops]},
                )
            )
        try:
            nxt = url.join(location)
        except httpx.InvalidURL as exc:
            nxt = None
            problem = f"invalid Location {location!r}: {exc}"
        else:
            problem = f"redirect to unsupported URL {location!r}"
        if nxt is None or nxt.scheme not in ("http", "https") or not nxt.host:
            raise Stop(
                attempt.verdict(
                    Layer.HTTP,
                    Reason.PROTOCOL,
                    f"{attempt.where()}: {problem}",
                    details={**attempt.base_details(), "status": hop.status},
                    transient=False,
                )
            )
        if (hop.status == 303 and method != "HEAD") or (hop.status in (301, 302) and method == "POST"):
            method = "GET"
        if _origin(nxt) != first:
            headers = {k: v for k, v in headers.items() if k.lower() in _CROSS_ORIGIN_SAFE_HEADERS}
        url = nxt
