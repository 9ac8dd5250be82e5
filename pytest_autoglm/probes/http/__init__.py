"""The ``http`` probe: one attempt of one HTTP expectation, judged into a ``Verdict``.

Why it is built this way:

- **One deadline for everything.** httpx's timeouts apply per read, so a server that
  trickles a byte a second never trips them. The whole attempt (name lookup, connect,
  TLS, request, headers, body, every redirect hop) runs under one ``asyncio.timeout``.
- **The body read is capped** (``max_body_bytes``, 1 MiB by default): a 10 GB body costs
  1 MiB and is reported as ``truncated``.
- **Redirects are followed here**, hop by hop, so each hop stays inside the deadline and
  is pinned to the engine's address only while it stays on the URL's host; headers the
  user set are not forwarded to another origin (they may carry secrets).
- **Pinned addresses** (``address=``): the engine resolved the host itself, so we connect
  to that address but keep the URL's host in ``Host`` and in TLS SNI and certificate
  verification (httpcore's ``sni_hostname`` request extension). Through a proxy the
  proxy resolves the name, so ``address`` is only reported then.
- **Failures are classified by phase** (from httpcore's ``trace`` extension): a refused
  port is ``tcp/refused``, a dropped one ``tcp/filtered``, a bad chain ``tls/untrusted``,
  a silent server ``http/timeout``, garbage or a reset mid-body ``http/protocol``.

``details["timings_ms"]`` holds durations per phase in ms: ``dns`` (our own lookup just
before connecting, which also puts a name that does not resolve in the dns layer; None when
the address was given, the host is an IP literal or a proxy resolves; the connection then
resolves again through the same system resolver, which lets anyio try every address),
``connect``, ``tls``, ``first_byte`` (request sent -> response headers received), ``body``
when one was read, and ``total`` (the whole attempt, every hop and the body read; this is
what ``max_latency`` is compared with). A phase not gone through is None.

Secrets: every message and every string in ``details`` goes through ``redact``.

The parts: ``expectation`` (what is expected), ``attempt`` (connection settings shared by the
hops), ``exchange`` (one measured request), ``redirects`` (hops followed by hand), ``classify``
(exceptions become reasons, in one place) and ``check`` (one attempt judged).
"""

from pytest_autoglm.probes.http.attempt import ConnectionOptions, HttpAttempt
from pytest_autoglm.probes.http.check import check_http
from pytest_autoglm.probes.http.exchange import Hop
from pytest_autoglm.probes.http.expectation import DEFAULT_MAX_BODY_BYTES, HttpExpectation
from pytest_autoglm.probes.http.security import HstsExpectation, expectation_extras

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ConnectionOptions",
    "Hop",
    "HstsExpectation",
    "HttpAttempt",
    "HttpExpectation",
    "check_http",
    "expectation_extras",
]
