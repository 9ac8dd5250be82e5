"""Streams on http items against a real SSE server (Starlette under uvicorn): streams, stalls, stops early."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import Layer, Reason
from pytest_autoglm.probes.http import HttpExpectation, check_http
from pytest_autoglm.probes.http.stream import SseParser, StreamExpectation
from tests.fakes.http_servers import UvicornServer
from tests.fakes.sse_server import REPLY, sse_app

WORDS = len(REPLY.split())
CHAT = json.dumps({"model": "autoglm", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornServer]:
    with UvicornServer(sse_app()) as running:
        yield running


def probe(server: UvicornServer, query: str, stream: StreamExpectation, *, timeout: float = 3.0) -> Verdict:
    expect = HttpExpectation(
        url=server.url(f"/v1/chat/completions{query}"), method="POST", headers=HEADERS, content=CHAT, stream=stream
    )
    return asyncio.run(check_http(expect, timeout=timeout))


DONE = StreamExpectation(first_event_within=1.0, min_events=1, done="[DONE]", max_gap=1.0)


def test_a_full_stream_passes_and_is_measured(server):
    verdict = probe(server, "?gap=0.01", DONE)
    assert verdict.passed, verdict.message
    stream = verdict.details["stream"]
    assert stream["events"] == WORDS
    assert stream["done"] is True and stream["ended"] == "done"
    assert 0 <= stream["first_event_ms"] <= 1000
    assert stream["max_gap_ms"] is not None


def test_a_late_first_event_is_stream_slow(server):
    verdict = probe(server, "?first=0.6", StreamExpectation(first_event_within=0.2, done="[DONE]"))
    assert (verdict.layer, verdict.reason) == (Layer.HTTP, Reason.STREAM_SLOW)
    assert verdict.details["stream"]["first_event_ms"] >= 200
    control = probe(server, "?first=0.6", StreamExpectation(first_event_within=2.0, done="[DONE]"))
    assert control.passed, control.message


def test_a_stall_past_max_gap_is_stream_slow_before_the_timeout(server):
    verdict = probe(server, "?stall_after=2", StreamExpectation(done="[DONE]", max_gap=0.3), timeout=5.0)
    assert verdict.reason is Reason.STREAM_SLOW
    assert verdict.details["stream"]["ended"] == "stalled"
    assert verdict.details["stream"]["events"] == 2
    assert verdict.details["timings_ms"]["total"] < 5000


def test_a_stall_without_max_gap_is_incomplete_at_the_timeout(server):
    verdict = probe(server, "?stall_after=2", StreamExpectation(done="[DONE]"), timeout=0.8)
    assert verdict.reason is Reason.STREAM_INCOMPLETE
    assert verdict.details["stream"]["ended"] == "deadline"


def test_a_stream_that_stops_early_is_incomplete(server):
    verdict = probe(server, "?stop_after=3", DONE)
    assert verdict.reason is Reason.STREAM_INCOMPLETE
    assert "[DONE]" in verdict.message
    assert verdict.details["stream"] == {**verdict.details["stream"], "events": 3, "done": False, "ended": "closed"}
    without_done = probe(server, "?stop_after=3", StreamExpectation(min_events=3))
    assert without_done.passed, without_done.message
    too_few = probe(server, "?stop_after=3", StreamExpectation(min_events=4))
    assert too_few.reason is Reason.STREAM_INCOMPLETE


def test_no_stream_at_all_is_incomplete(server):
    expect = HttpExpectation(url=server.url("/plain"), stream=DONE)
    verdict = asyncio.run(check_http(expect, timeout=3.0))
    assert verdict.reason is Reason.STREAM_INCOMPLETE
    assert "text/plain" in verdict.message


def test_status_is_judged_before_the_stream(server):
    expect = HttpExpectation(
        url=server.url("/v1/chat/completions"),
        method="POST",
        headers=HEADERS,
        content=b'{"messages": []}',
        stream=DONE,
    )
    verdict = asyncio.run(check_http(expect, timeout=3.0))
    assert verdict.reason is Reason.STATUS


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=20), st.sampled_from(["\n", "\r\n", "\r"]))
def test_sse_parsing_does_not_depend_on_chunking(cuts, newline):
    text = newline.join([": hello", "event: x", "data: one", "data:two", "", "id: 3", "data: [DONE]", "", ""])
    raw = text.encode()
    whole = SseParser().feed(raw)
    parser, got, at = SseParser(), [], 0
    for cut in cuts:
        got += parser.feed(raw[at : at + cut])
        at += cut
    got += parser.feed(raw[at:])
    assert whole == ["one\ntwo", "[DONE]"]
    assert got == whole


def test_stream_items_through_the_plugin(pytester, server):
    url = server.url("/v1/chat/completions")
    (pytester.path / "chat.yaml").write_text(
        f"""\
version: 1
defaults: {{timeout: 3s, retries: 0}}
targets:
  - name: gateway
    host: 127.0.0.1
    http:
      - url: {url}
        method: POST
        body: {{model: autoglm, stream: true, messages: [{{role: user, content: hi}}]}}
        stream: {{kind: sse, first_event_within: 2s, min_events: 1, done: "[DONE]", max_gap: 1s}}
      - url: {url}?stop_after=2
        method: POST
        body: {{model: autoglm, stream: true, messages: [{{role: user, content: hi}}]}}
        stream: {{done: "[DONE]"}}
"""
    )
    result = pytester.runpytest("--autoglm-target", "chat.yaml")
    doc = json.loads((pytester.path / "reports" / "chat.json").read_text())
    reasons = [r["reason"] for r in doc["results"]]
    assert reasons == [None, "stream_incomplete"], [r["message"] for r in doc["results"]]
    assert doc["results"][0]["details"]["stream"]["events"] == WORDS
    result.assert_outcomes(passed=1, failed=1)
