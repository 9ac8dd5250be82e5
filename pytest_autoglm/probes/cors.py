"""The ``cors`` probe: send what a browser sends, judge as the Fetch standard's CORS check does.

For each declared method, a request that is not *simple* (method not GET/HEAD/POST, or a
declared header that is not CORS-safelisted) first gets a preflight ``OPTIONS`` with
``Origin``, ``Access-Control-Request-Method`` and ``Access-Control-Request-Headers``
(lower-case, sorted, comma-joined, as browsers send it); if the browser would accept the
preflight, the actual request follows with ``Origin``. Neither carries credentials or the
declared headers' values; no body is read. The actual request is always a GET or HEAD: a
checker must not POST, PUT or DELETE against a live service, and the CORS headers of the
response are judged the same whatever its status. One exception keeps the real method's rules:
before standing in with a GET for a preflighted method, the probe asks with a method token no
server implements (``METHOD_CHECK``); a 405 whose ``Allow`` lacks the real method is what the
actual request would get (a browser fails on it unless it carries CORS headers), so that answer
is judged instead.

Judged as Fetch does:

- ``Access-Control-Allow-Origin`` must equal the serialized origin byte for byte, or be
  ``*`` - and ``*`` never counts for a credentialed request;
- with credentials, ``Access-Control-Allow-Credentials`` must be exactly ``true``;
- preflight methods: compared case-sensitively with the request method after Fetch's
  normalisation (delete/get/head/options/post/put are upper-cased, anything else is sent
  as written); GET/HEAD/POST need no permission; ``*`` counts only without credentials;
- preflight headers: names compared case-insensitively; ``*`` counts only without
  credentials. The Fetch standard excludes ``Authorization`` from ``*``, but Chromium lets
  ``*`` cover it: the probe judges as the browser does and says so in the message; Accept, Accept-Language and
  Content-Language need no permission, nor does a ``Content-Type`` declared with a safelisted
  value (``Content-Type: text/plain``, ``application/x-www-form-urlencoded``,
  ``multipart/form-data``). A ``Content-Type`` declared by name only is treated as needing
  permission, because a declared content type is almost always one such as ``application/json``;
- the preflight must answer 2xx.

Redirects are not followed (a preflight may not redirect; the actual response is judged
as it comes). Network failures map to lower layers exactly as in the ``http`` probe.

Reasons (results.md): ``not_allowed``, ``allowed``, ``credentials``, ``preflight``,
``reflects_any_origin``, ``wildcard_credentials``; a 5xx actual response without CORS
headers is ``http/status`` (transient). This module adds one code:

- ``vary_missing`` (cors): the allowed origin is echoed in
  ``Access-Control-Allow-Origin`` but the response lacks ``Vary: Origin``, so a shared
  cache can serve one origin's answer to another. Meant for warning severity
  (``CORS_HOLE_SEVERITY``): ``Reason.VARY_MISSING``.

Hole probes (``CORS_HOLES``), each its own check:

- ``reflect_any_origin``: a random origin is echoed back -> ``reflects_any_origin``;
- ``null_origin``: ``Origin: null`` is allowed -> ``allowed``;
- ``suffix_bypass``: ``https://app.example.com.evil.test`` allowed when
  ``https://app.example.com`` is (a prefix/"starts with" check) -> ``allowed``;
- ``prefix_bypass``: ``https://evilapp.example.com`` allowed (an "ends with" check)
  -> ``allowed``;
- ``wildcard_credentials``: ``*`` sent together with ``Allow-Credentials: true``
  -> ``wildcard_credentials``;
- ``vary_origin``: see ``vary_missing`` above.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from typing_extensions import Unpack
from urllib.parse import urlsplit

import httpx

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import CORS_HOLES, Layer, Reason
from pytest_autoglm.probes.http import ConnectionOptions, Hop, HttpAttempt

__all__ = [
    "CORS_HOLES",
    "CORS_HOLE_SEVERITY",
    "VARY_MISSING",
    "CorsExpectation",
    "check_cors_hole",
    "check_cors_origin",
    "serialize_origin",
]


VARY_MISSING = Reason.VARY_MISSING

#: Suggested severity per hole; ``vary_origin`` is a caching hazard rather than an open door.
CORS_HOLE_SEVERITY: dict[str, str] = {hole: "critical" for hole in CORS_HOLES} | {"vary_origin": "warning"}

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
_NORMALIZED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language"})
#: Fetch: a Content-Type whose MIME type essence is one of these is a CORS-safelisted request header.
SAFELISTED_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
#: Fetch's CORS-unsafe request-header bytes (besides controls other than tab).
_UNSAFE_BYTES = frozenset('"():<>?@[\\]{}\x7f')
_NON_WILDCARD_HEADERS = frozenset({"authorization"})
_EVIL_SUFFIX = "evil.test"
_EVIL_PREFIX = "evil"


@dataclass(frozen=True)
class CorsExpectation:
    """One ``cors`` entry without its origins (the engine makes one item per origin)."""

    url: str
    methods: tuple[str, ...] = ("GET",)
    headers: tuple[str, ...] = ()
    credentials: bool = False


def normalize_method(method: str) -> str:
    """Fetch's method normalisation: only the six well-known methods are upper-cased."""
    upper = method.upper()
    return upper if upper in _NORMALIZED_METHODS else method


def serialize_origin(origin: str) -> str:
    """The origin as a browser sends it: lower-case scheme and host, no default port, no path."""
    if origin.strip() == "null":
        return "null"
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.hostname:
        return origin.strip()
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return origin.strip()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host}{suffix}"


@dataclass
class _Judgement:
    allowed: bool
    message: str
    reason: Reason | None = None
    layer: Layer = Layer.CORS
    transient: bool = False


@dataclass
class _Exchange:
    kind: str  # "preflight" | "actual"
    origin: str
    method: str
    request_headers: dict[str, str]
    hop: Hop

    def header(self, name: str) -> str | None:
        values = self.hop.headers.get_list(name)
        return ", ".join(values) if values else None

    def details(self) -> dict[str, Any]:
        headers = self.hop.headers
        received = {
            k: ", ".join(headers.get_list(k))
            for k in dict.fromkeys(k.lower() for k in headers)
            if k.startswith("access-control-") or k == "vary"
        }
        return {
            "kind": self.kind,
            "method": self.method,
            "request_headers": self.request_headers,
            "status": self.hop.status,
            "response_headers": received,
        }


def _safelisted(name: str, value: str | None) -> bool:
    """Fetch's "CORS-safelisted request-header": such a header needs no Access-Control-Allow-Headers.

    Without a value (the inventory gave only the name) ``Content-Type`` counts as unsafe: a declared
    content type is almost always one like ``application/json``.
    """
    if value is None:
        return name in SAFELISTED_HEADERS
    if len(value) > 128:
        return False
    if name == "content-type":
        if any(c in _UNSAFE_BYTES or (ord(c) < 0x20 and c != "\t") for c in value):
            return False
        essence = value.split(";", 1)[0].strip().lower()
        return essence in SAFELISTED_CONTENT_TYPES
    if name == "accept":
        return not any(c in _UNSAFE_BYTES or (ord(c) < 0x20 and c != "\t") for c in value)
    if name in ("accept-language", "content-language"):
        return all(c.isalnum() or c in " *,-.;=" for c in value)
    return False


def parse_headers(entries: Sequence[str]) -> dict[str, str | None]:
    """Declared request headers (``Name`` or ``Name: value``) by lower-case name."""
    out: dict[str, str | None] = {}
    for entry in entries:
        name, sep, value = entry.partition(":")
        out[name.strip().lower()] = value.strip() if sep else None
    return out


def _split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _cors_check(ex: _Exchange, origin: str, credentials: bool) -> _Judgement:
    """Fetch's CORS check on one response (origin and credentials)."""
    acao = ex.header("access-control-allow-origin")
    acac = ex.header("access-control-allow-credentials")
    if acao is None:
        return _Judgement(False, f"{ex.kind} response has no Access-Control-Allow-Origin", Reason.NOT_ALLOWED)
    if acao == "*":
        if not credentials:
            return _Judgement(True, "Access-Control-Allow-Origin: *")
        if acac is not None and acac.strip().lower() == "true":
            msg = f"{ex.kind} response sends Access-Control-Allow-Origin: * with Allow-Credentials: true"
            return _Judgement(
                False, msg + "; browsers refuse '*' for credentialed requests", Reason.WILDCARD_CREDENTIALS
            )
        msg = f"{ex.kind} response allows any origin with '*', which never counts for credentialed requests"
        return _Judgement(False, msg, Reason.CREDENTIALS)
    if acao != origin:
        return _Judgement(False, f"{ex.kind} response has Access-Control-Allow-Origin: {acao}", Reason.NOT_ALLOWED)
    if credentials and acac != "true":
        got = "is missing" if acac is None else f"is {acac!r}"
        return _Judgement(False, f"Access-Control-Allow-Credentials {got} (must be exactly 'true')", Reason.CREDENTIALS)
    return _Judgement(True, f"Access-Control-Allow-Origin: {acao}" + (", credentials" if credentials else ""))


def _judge_preflight(ex: _Exchange, origin: str, method: str, unsafe: list[str], credentials: bool) -> _Judgement:
    status = ex.hop.status
    ok_status = 200 <= status <= 299
    if not any(k.lower().startswith("access-control-allow-") for k in ex.hop.headers):
        msg = f"the preflight (OPTIONS) answered {status} without any CORS headers"
        if ok_status:  # the usual answer to an origin outside the policy: that origin is the cause
            return _Judgement(False, f"{msg}: the origin is not in the server's CORS policy", Reason.NOT_ALLOWED)
        return _Judgement(False, msg, Reason.PREFLIGHT, transient=status >= 500)
    check = _cors_check(ex, origin, credentials)
    if not check.allowed:
        return check
    methods = _split_list(ex.header("access-control-allow-methods"))
    wildcard_ok = not credentials
    if method not in methods and method not in SAFELISTED_METHODS and not (wildcard_ok and "*" in methods):
        msg = f"method {method} is not in Access-Control-Allow-Methods: {', '.join(methods) or '(none)'}"
        if "*" in methods:
            msg += " ('*' does not count for credentialed requests)"
        elif method.upper() in methods:
            msg += " (methods are case-sensitive)"
        return _Judgement(False, msg, Reason.NOT_ALLOWED)
    names = {h.lower() for h in _split_list(ex.header("access-control-allow-headers"))}
    notes: list[str] = []
    for name in unsafe:
        if name in names or (wildcard_ok and "*" in names):
            if name in _NON_WILDCARD_HEADERS and name not in names:
                notes.append(
                    f"{name} is allowed only by '*' (Chromium accepts that; the Fetch standard and Firefox do not)"
                )
            continue
        msg = f"request header {name} is not in Access-Control-Allow-Headers: {', '.join(sorted(names)) or '(none)'}"
        if "*" in names:
            msg += " ('*' does not cover credentialed requests)"
        return _Judgement(False, msg, Reason.NOT_ALLOWED)
    if not ok_status:
        msg = f"the preflight (OPTIONS) answered {status}; browsers need a 2xx status"
        return _Judgement(False, msg, Reason.PREFLIGHT, transient=status >= 500)
    return _Judgement(True, "; ".join(["preflight allowed", *notes]))


def _judge_actual(ex: _Exchange, origin: str, credentials: bool) -> _Judgement:
    check = _cors_check(ex, origin, credentials)
    if not check.allowed and ex.hop.status == 405 and ex.header("allow") is not None:
        allow = ex.header("allow")
        msg = f"the server does not serve {ex.method} here (405, Allow: {allow}), and {check.message}"
        return _Judgement(False, msg, check.reason)
    if not check.allowed and ex.hop.status >= 500:
        msg = f"the actual request got status {ex.hop.status} ({check.message})"
        return _Judgement(False, msg, Reason.STATUS, layer=Layer.HTTP, transient=True)
    return check


async def _browser_fetch(
    attempt: HttpAttempt, expect: CorsExpectation, origin: str, method: str, log: list[_Exchange]
) -> _Judgement:
    """What a browser does for one cross-origin ``fetch(url, {method, headers})``."""
    url = httpx.URL(expect.url)
    unsafe = sorted(n for n, v in parse_headers(expect.headers).items() if not _safelisted(n, v))
    if method not in SAFELISTED_METHODS or unsafe:
        sent = {"Origin": origin, "Access-Control-Request-Method": method}
        if unsafe:
            sent["Access-Control-Request-Headers"] = ",".join(unsafe)
        hop = await attempt.exchange(url, "OPTIONS", sent, max_body=0)
        log.append(pre := _Exchange("preflight", origin, method, sent, hop))
        judgement = _judge_preflight(pre, origin, method, unsafe, expect.credentials)
        if not judgement.allowed:
            return judgement
    sent = {"Origin": origin}
    if method not in SAFELISTED_METHODS:
        routed = await _method_routed(attempt, url, origin, method, log)
        if routed is not None:  # the actual request would get this 405: judge its CORS headers
            return _judge_actual(routed, origin, expect.credentials)
    # Never send a state-changing method to a live service: the CORS headers of the actual
    # response are judged the same whatever its status, so a GET stands in for POST/PUT/DELETE.
    hop = await attempt.exchange(url, method if method in ("GET", "HEAD") else "GET", sent, max_body=0)
    log.append(actual := _Exchange("actual", origin, method, sent, hop))
    return _judge_actual(actual, origin, expect.credentials)


#: A method token no server implements: asking with it is safe (nothing can act on it), and a server
#: that routes by method answers 405 with the methods it serves in ``Allow`` (RFC 9110 15.5.6).
METHOD_CHECK = "AUTOGLM-METHOD-CHECK"


async def _method_routed(
    attempt: HttpAttempt, url: httpx.URL, origin: str, method: str, log: list[_Exchange]
) -> _Exchange | None:
    """Whether the actual ``method`` would be refused with a 405, learned without sending it.

    A preflight can allow a method the resource does not serve (a route for ``PATCH`` but not the
    ``patch`` a page sends): the browser then gets a 405, usually without CORS headers, and fails.
    The probe asks with :data:`METHOD_CHECK` instead: a 405 whose ``Allow`` lacks ``method``
    (compared case-sensitively, as servers route) is what the actual request would get, and is
    returned as its stand-in; anything else (the method listed, no ``Allow``, no 405) says nothing.
    """
    sent = {"Origin": origin}
    hop = await attempt.exchange(url, METHOD_CHECK, sent, max_body=0)
    ex = _Exchange("method check", origin, method, sent, hop)
    log.append(ex)
    allow = ex.header("allow")
    if hop.status != 405 or allow is None or method in _split_list(allow):
        return None
    return _Exchange("actual", origin, method, sent, hop)


def _details(attempt: HttpAttempt, expect: CorsExpectation, log: list[_Exchange], **extra: Any) -> dict[str, Any]:
    details = attempt.base_details()
    details.update(extra)
    details["credentials"] = expect.credentials
    details["exchanges"] = [ex.details() for ex in log]
    return details


async def check_cors_origin(
    expect: CorsExpectation,
    origin: str,
    *,
    should_allow: bool,
    timeout: float,
    **connection: Unpack[ConnectionOptions],
) -> Verdict:
    """One attempt: is ``origin`` allowed (``should_allow``) or refused, for every declared method?"""
    attempt = HttpAttempt(expect.url, timeout=timeout, **connection)
    origin = serialize_origin(origin)
    if (setup := attempt.prepare()) is not None:
        return setup
    log: list[_Exchange] = []
    results: list[tuple[str, _Judgement]] = []
    try:
        async with asyncio.timeout(timeout):
            for raw_method in expect.methods:
                method = normalize_method(raw_method)
                judgement = await _browser_fetch(attempt, expect, origin, method, log)
                results.append((method, judgement))
                if judgement.allowed != should_allow or judgement.layer is not Layer.CORS:
                    break
    except Exception as exc:  # classified by phase; anything unknown is a bug and re-raised
        verdict = attempt.failure(exc, {"origin": origin, "exchanges": [ex.details() for ex in log]})
        if verdict is None:
            raise
        return verdict
    details = _details(attempt, expect, log, origin=origin, should_allow=should_allow)
    url = expect.url
    for method, j in results:
        if j.layer is not Layer.CORS:  # a server error: cannot tell, let the engine retry
            msg = f"{method} {url} from {origin}: {j.message}"
            return attempt.verdict(j.layer, cast(Reason, j.reason), msg, details=details, transient=j.transient)
        if should_allow and not j.allowed:
            msg = f"{origin} is not allowed to {method} {url}: {j.message}"
            return attempt.verdict(Layer.CORS, cast(Reason, j.reason), msg, details=details, transient=j.transient)
        if not should_allow and j.allowed:
            msg = f"{origin} must not be allowed, but may {method} {url}: {j.message}"
            return attempt.verdict(Layer.CORS, Reason.ALLOWED, msg, details=details)
    methods = ", ".join(m for m, _ in results)
    if should_allow:
        return attempt.ok(f"{origin} is allowed to {methods} {url}", details)
    return attempt.ok(f"{origin} is not allowed to {methods} {url}, as expected", details)


# --------------------------------------------------------------------------- holes


def _random_origin() -> str:
    return f"https://autoglm-{secrets.token_hex(6)}.{_EVIL_SUFFIX}"


def _usable(origins: Sequence[str]) -> list[str]:
    """Allowed origins with a host name to derive from (not ``null``, not IPv6 literals)."""
    out = []
    for origin in origins:
        serialized = serialize_origin(origin)
        host = urlsplit(serialized).hostname
        if serialized != "null" and host and ":" not in host:
            out.append(serialized)
    return out


def _derive(origin: str, hole: str) -> str:
    parts = urlsplit(origin)
    host = cast(str, parts.hostname)
    port = f":{parts.port}" if parts.port is not None else ""
    if hole == "suffix_bypass":
        return f"{parts.scheme}://{host}.{_EVIL_SUFFIX}{port}"
    return f"{parts.scheme}://{_EVIL_PREFIX}{host}{port}"


def _probe_origins(hole: str, allowed: list[str]) -> list[str]:
    if hole == "reflect_any_origin":
        return [_random_origin()]
    if hole == "null_origin":
        return ["null"]
    if hole in ("suffix_bypass", "prefix_bypass"):
        return [_derive(o, hole) for o in allowed]
    return [allowed[0] if allowed else _random_origin()]


def _vary_has_origin(ex: _Exchange) -> bool:
    names = {v.lower() for v in _split_list(ex.header("vary"))}
    return "origin" in names or "*" in names


def _hole_finding(hole: str, origin: str, log: list[_Exchange]) -> tuple[Reason, str] | None:
    """The misconfiguration the exchanges show, if any."""
    for ex in log:
        acao = ex.header("access-control-allow-origin")
        acac = (ex.header("access-control-allow-credentials") or "").strip().lower() == "true"
        creds = " together with Allow-Credentials: true" if acac else ""
        if hole == "reflect_any_origin" and acao == origin:
            return Reason.REFLECTS_ANY_ORIGIN, f"echoes an arbitrary Origin ({origin}) in the {ex.kind} response{creds}"
        if hole == "null_origin" and acao == "null":
            msg = f"allows Origin: null in the {ex.kind} response{creds} (sandboxed iframes and file: pages send it)"
            return Reason.ALLOWED, msg
        if hole in ("suffix_bypass", "prefix_bypass") and acao == origin:
            kind = "a suffix appended to" if hole == "suffix_bypass" else "a prefix added to"
            msg = f"allows {origin} ({kind} an allowed origin's host) in the {ex.kind} response{creds}"
            return Reason.ALLOWED, msg
        if hole == "wildcard_credentials" and acao == "*" and acac:
            msg = f"the {ex.kind} response sends Access-Control-Allow-Origin: * with Allow-Credentials: true"
            return Reason.WILDCARD_CREDENTIALS, msg
        if hole == "vary_origin" and ex.kind == "actual" and acao not in (None, "*") and not _vary_has_origin(ex):
            vary = ex.header("vary") or "(none)"
            msg = f"Access-Control-Allow-Origin: {acao} varies with the Origin, but Vary is {vary}"
            return VARY_MISSING, msg
    return None


async def check_cors_hole(
    expect: CorsExpectation,
    hole: str,
    allowed_origins: Sequence[str],
    *,
    timeout: float,
    **connection: Unpack[ConnectionOptions],
) -> Verdict:
    """One attempt of one classic misconfiguration probe (``hole`` in ``CORS_HOLES``).

    The bypass probes derive their origins from ``allowed_origins``; with none to derive
    from they pass with ``details["not_applicable"] = True``.
    """
    if hole not in CORS_HOLES:
        raise ValueError(f"unknown CORS hole {hole!r}; expected one of {', '.join(CORS_HOLES)}")
    attempt = HttpAttempt(expect.url, timeout=timeout, **connection)
    if (setup := attempt.prepare()) is not None:
        return setup
    origins = _probe_origins(hole, _usable(allowed_origins))
    if not origins:
        details = _details(attempt, expect, [], hole=hole, not_applicable=True)
        return attempt.ok(f"{hole}: no allowed origin with a host name to derive a bypass from", details)
    log: list[_Exchange] = []
    try:
        async with asyncio.timeout(timeout):
            for origin in origins:
                start = len(log)
                for raw_method in expect.methods:
                    judgement = await _browser_fetch(attempt, expect, origin, normalize_method(raw_method), log)
                    if judgement.layer is not Layer.CORS:
                        details = _details(attempt, expect, log, hole=hole, probe_origins=origins)
                        msg = f"{hole}: {expect.url} from {origin}: {judgement.message}"
                        reason = cast(Reason, judgement.reason)
                        return attempt.verdict(judgement.layer, reason, msg, details=details, transient=True)
                finding = _hole_finding(hole, origin, log[start:])
                if finding is not None:
                    reason, what = finding
                    details = _details(attempt, expect, log, hole=hole, probe_origins=origins)
                    return attempt.verdict(Layer.CORS, reason, f"{hole}: {expect.url} {what}", details=details)
    except Exception as exc:  # classified by phase; anything unknown is a bug and re-raised
        verdict = attempt.failure(exc, {"hole": hole, "exchanges": [ex.details() for ex in log]})
        if verdict is None:
            raise
        return verdict
    details = _details(attempt, expect, log, hole=hole, probe_origins=origins)
    return attempt.ok(f"{hole}: {expect.url} shows no such misconfiguration", details)
