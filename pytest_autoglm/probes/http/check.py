"""One HTTP check attempt: the expectation, the hops, and the verdict on status, body, JSON and latency."""

from __future__ import annotations

import asyncio
import json as _json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack


from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.http.attempt import REDIRECT_CODES, ConnectionOptions, HttpAttempt
from pytest_autoglm.probes.http.exchange import INTERESTING_HEADERS, Hop, phase_timings
from pytest_autoglm.probes.http.expectation import HttpExpectation
from pytest_autoglm.probes.http.redirects import Stop, request_hops
from pytest_autoglm.probes.http.security import header_problems, hsts_problem
from pytest_autoglm.probes.http.stream import StreamReader, judge_stream

_SNIPPET_CHARS = 200


def _json_mismatch(expected: Any, actual: Any, path: str) -> str | None:
    """Where ``expected`` is not a subset of ``actual`` (None if it is).

    Objects: every expected key present and matching, recursively. Lists: every
    expected element matches some element of the actual list (order ignored).
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {_short(actual)}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            if (found := _json_mismatch(value, actual[key], f"{path}.{key}")) is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {_short(actual)}"
        for i, item in enumerate(expected):
            if not any(_json_mismatch(item, a, path) is None for a in actual):
                return f"{path}[{i}]: no element matches {_short(item)}"
        return None
    same = (
        expected == actual and isinstance(actual, bool)
        if isinstance(expected, bool) or isinstance(actual, bool)
        else expected == actual
    )
    return None if same else f"{path}: expected {_short(expected)}, got {_short(actual)}"


def _short(value: Any) -> str:
    text = _json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _hop_details(attempt: HttpAttempt, hops: list[Hop], total: float) -> dict[str, Any]:
    final = hops[-1]
    details = attempt.base_details()
    details.update(
        {
            "method": final.method,
            "status": final.status,
            "http_version": final.http_version,
            "headers": {k: ", ".join(final.headers.get_list(k)) for k in INTERESTING_HEADERS if k in final.headers},
            "timings_ms": phase_timings(final.timings, total),
            "bytes_read": len(final.body),
            "bytes_downloaded": final.bytes_downloaded,
            "truncated": final.truncated,
        }
    )
    if final.tls_version:
        details["tls_version"] = final.tls_version
    if len(hops) > 1:
        details["final_url"] = str(final.url)
        details["redirects"] = [f"{h.status} {h.url}" for h in hops[:-1]]
    return details


def _judge(attempt: HttpAttempt, expect: HttpExpectation, hops: list[Hop], total: float) -> Verdict:
    final = hops[-1]
    details = _hop_details(attempt, hops, total)
    where = attempt.where(expect.method, expect.url)
    status = final.status
    if not expect.status.matches(status):
        got = f"status {status} {final.reason_phrase}".rstrip()
        if len(hops) > 1:
            got += f" (after redirects, at {final.url})"
        if status in (401, 407):
            who = "the proxy" if status == 407 else "the server"
            msg = f"{where}: {got}: {who} requires authentication; expected {expect.status.describe()}"
            return attempt.verdict(Layer.HTTP, Reason.AUTH, msg, details=details)
        msg = f"{where}: {got}, expected {expect.status.describe()}"
        if status in REDIRECT_CODES and "location" in final.headers and not expect.follow_redirects:
            msg += f" (redirect to {final.headers['location']} not followed: follow_redirects is false)"
        return attempt.verdict(Layer.HTTP, Reason.STATUS, msg, details=details, transient=status >= 500)
    cap_note = f" (only the first {len(final.body)} bytes were read)" if final.truncated else ""
    if expect.body_contains is not None and expect.body_contains not in final.text():
        details["body_snippet"] = final.text()[:_SNIPPET_CHARS]
        msg = f"{where}: the body does not contain {expect.body_contains!r}{cap_note}"
        return attempt.verdict(Layer.HTTP, Reason.BODY, msg, details=details)
    if expect.json is not None:
        problem = _json_problem(expect.json, final)
        if problem is not None:
            details["body_snippet"] = final.text()[:_SNIPPET_CHARS]
            return attempt.verdict(Layer.HTTP, Reason.BODY, f"{where}: {problem}{cap_note}", details=details)
    security = _security_problem(expect, final, details)
    if security is not None:
        return attempt.verdict(Layer.HTTP, security[0], f"{where}: {security[1]}", details=details)
    if expect.max_latency is not None and total > expect.max_latency:
        msg = f"{where}: took {format_duration(total)}, more than max_latency {format_duration(expect.max_latency)}"
        return attempt.verdict(Layer.HTTP, Reason.SLOW, msg, details=details)
    return attempt.ok(f"{where}: status {status} in {format_duration(total)}", details)


def _security_problem(expect: HttpExpectation, hop: Hop, details: dict[str, Any]) -> tuple[Reason, str] | None:
    """HSTS first (it protects every later request), then the header lists; the rest go to details."""
    names = [*(["strict-transport-security"] if expect.hsts else []), *expect.headers_present, *expect.headers_absent]
    if not names:
        return None
    details["security_headers"] = {n.lower(): ", ".join(hop.headers.get_list(n)) or None for n in names}
    problems: list[tuple[Reason, str]] = []
    if expect.hsts is not None:
        text = hsts_problem(expect.hsts, hop.headers.get_list("strict-transport-security"), hop.url.scheme == "https")
        if text is not None:
            problems.append((Reason.HSTS, text))
    problems += header_problems(expect.headers_present, expect.headers_absent, hop.headers.get_list)
    if not problems:
        return None
    if len(problems) > 1:
        details["problems"] = [{"reason": r.value, "message": t} for r, t in problems[1:]]
    return problems[0]


def _json_problem(expected: dict[str, Any], hop: Hop) -> str | None:
    if hop.truncated:
        return "the body is larger than the read cap, so its JSON cannot be checked"
    try:
        document = _json.loads(hop.text())
    except ValueError as exc:
        return f"the body is not JSON ({exc})"
    mismatch = _json_mismatch(expected, document, "$")
    return None if mismatch is None else f"JSON body does not match: {mismatch}"


async def check_http(
    expect: HttpExpectation,
    *,
    timeout: float,
    **connection: Unpack[ConnectionOptions],
) -> Verdict:
    """One attempt of ``expect``, bounded by ``timeout`` as a whole. Never raises for a verdict."""
    attempt = HttpAttempt(expect.url, timeout=timeout, **connection)
    attempt.current = (expect.method, expect.url)
    if (setup := attempt.prepare()) is not None:
        return setup
    reader = None
    if expect.stream is not None:
        reader = StreamReader(expect.stream, deadline=attempt.started + timeout, cap=expect.max_body_bytes)
    try:
        async with asyncio.timeout(timeout):
            hops = await request_hops(attempt, expect, reader)
    except Stop as stop:
        return stop.verdict
    except Exception as exc:  # classified by phase; anything unknown is a bug and re-raised
        verdict = attempt.failure(exc)
        if verdict is None:
            raise
        return verdict
    verdict = _judge(attempt, expect, hops, attempt.elapsed())
    if reader is not None and verdict.passed:
        return _judge_stream(attempt, expect, reader, verdict)
    if reader is not None:
        verdict.details["stream"] = reader.log.details()
    return verdict


def _judge_stream(attempt: HttpAttempt, expect: HttpExpectation, reader: StreamReader, verdict: Verdict) -> Verdict:
    """An answer that passed every other expectation, judged on its stream (issue 19)."""
    details = {**verdict.details, "stream": reader.log.details()}
    where = attempt.where(expect.method, expect.url)
    problem = judge_stream(reader.expect, reader.log)
    if problem is not None:
        reason, what = problem
        return attempt.verdict(Layer.HTTP, reason, f"{where}: {what}", details=details)
    log = reader.log
    first = "" if log.first_event_s is None else f", first after {format_duration(log.first_event_s)}"
    return attempt.ok(f"{verdict.message}; {log.events} events{first}", details)
