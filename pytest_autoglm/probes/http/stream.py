"""Streams on ``http`` items: a ``text/event-stream`` answer read event by event and timed.

What users of a streaming model API feel is the time to the first event and the pauses
between events, and whether the stream finishes (the OpenAI-compatible ``data: [DONE]``).
The reader replaces the capped body read of one hop: it parses Server-Sent Events as they
arrive, stops on the ``done`` event, on a pause longer than ``max_gap`` or when the attempt's
own deadline is near (so the verdict says ``stream_slow`` or ``stream_incomplete``, never a
bare timeout), and keeps the first ``cap`` bytes as the body for ``body_contains``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from pytest_autoglm.core.values import format_duration
from pytest_autoglm.core.vocabulary import Reason

#: Stop reading this long before the attempt's deadline, so the verdict is ours, not a timeout.
DEADLINE_MARGIN_S = 0.05


@dataclass(frozen=True, slots=True)
class StreamExpectation:
    """An item's ``stream`` mapping (inventory.md), validated."""

    kind: str = "sse"
    first_event_within: float | None = None
    min_events: int = 1
    done: str | None = None
    max_gap: float | None = None


@dataclass
class StreamLog:
    """What the reader saw: events with their times (seconds since the request was sent) and how it ended."""

    content_type: str = ""
    events: int = 0
    first_event_s: float | None = None
    gaps: list[float] = field(default_factory=list)
    done: bool = False
    #: ``done`` (the done event came), ``closed`` (the server ended the body), ``stalled`` (a pause
    #: past max_gap), ``deadline`` (the attempt's time ran out), ``cap`` (the read cap was reached).
    ended: str = "closed"
    last_data: str | None = None

    def details(self) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "events": self.events,
            "first_event_ms": None if self.first_event_s is None else round(self.first_event_s * 1000, 1),
            "max_gap_ms": round(max(self.gaps) * 1000, 1) if self.gaps else None,
            "done": self.done,
            "ended": self.ended,
        }


class SseParser:
    """Incremental Server-Sent Events parsing (WHATWG): an event is dispatched by a blank line
    after at least one ``data`` line; comments (``:``) and other fields only keep a stream alive."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._after_cr = False  # the last line ended with CR at a chunk's end: a LF next belongs to it

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event completed by ``chunk``."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = False
        self._buffer += chunk
        events: list[str] = []
        while True:
            cut = min((i for i in (self._buffer.find(b"\n"), self._buffer.find(b"\r")) if i >= 0), default=-1)
            if cut < 0:
                return events
            line = self._buffer[:cut].decode("utf-8", errors="replace")
            rest = self._buffer[cut + 1 :]
            if self._buffer[cut : cut + 1] == b"\r":
                if rest.startswith(b"\n"):
                    rest = rest[1:]
                elif not rest:
                    self._after_cr = True
            self._buffer = rest
            if line == "":
                if self._data:
                    events.append("\n".join(self._data))
                self._data = []
                continue
            name, _, value = line.partition(":")
            if name == "data":
                self._data.append(value[1:] if value.startswith(" ") else value)


class StreamReader:
    """Reads one hop's body as an event stream (``HttpAttempt.exchange``'s ``reader``)."""

    def __init__(self, expect: StreamExpectation, *, deadline: float, cap: int) -> None:
        """``deadline``: ``time.perf_counter()`` value by which reading must stop."""
        self.expect = expect
        self.deadline = deadline
        self.cap = cap
        self.log = StreamLog()

    async def __call__(self, response: httpx.Response, first_byte_s: float) -> tuple[bytes, bool]:
        """Read until done, closed, stalled, deadline or cap; ``first_byte_s``: request sent -> headers."""
        log = self.log
        log.content_type = response.headers.get("content-type", "")
        if not log.content_type.lower().startswith("text/event-stream"):
            return await _read_some(response, self.cap)
        parser = SseParser()
        origin = time.perf_counter() - first_byte_s  # when the request was sent
        last = origin
        body = bytearray()
        chunks = response.aiter_bytes().__aiter__()
        while True:
            now = time.perf_counter()
            left = self.deadline - DEADLINE_MARGIN_S - now
            wait = left if self.expect.max_gap is None else min(left, self.expect.max_gap - (now - last))
            if left <= 0:
                log.ended = "deadline"
                break
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                log.ended = "closed"
                break
            except TimeoutError:
                log.ended = "deadline" if wait >= left else "stalled"
                if log.ended == "stalled":
                    log.gaps.append(time.perf_counter() - last)
                break
            if len(body) < self.cap:
                body += chunk[: self.cap - len(body)]
            for data in parser.feed(chunk):
                now = time.perf_counter()
                if self.expect.done is not None and data.strip() == self.expect.done:
                    log.done = True
                    break
                log.events += 1
                log.last_data = data
                if log.first_event_s is None:
                    log.first_event_s = now - origin
                else:
                    log.gaps.append(now - last)
                last = now
            if log.done:
                log.ended = "done"
                break
            if len(body) >= self.cap and self.expect.done is None:
                log.ended = "cap"
                break
        return bytes(body), log.ended == "cap"


async def _read_some(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            break
    return bytes(body[:cap]), len(body) > cap


def judge_stream(expect: StreamExpectation, log: StreamLog) -> tuple[Reason, str] | None:
    """The stream's reason and what went wrong, or None when it met every expectation."""
    if not log.content_type.lower().startswith("text/event-stream"):
        return (
            Reason.STREAM_INCOMPLETE,
            f"the answer is not an event stream (Content-Type {log.content_type or 'none'!r})",
        )
    within = expect.first_event_within
    if log.first_event_s is None and log.ended in ("stalled", "deadline") and within is not None:
        return Reason.STREAM_SLOW, f"no event within {format_duration(within)}"
    if within is not None and log.first_event_s is not None and log.first_event_s > within:
        return (
            Reason.STREAM_SLOW,
            f"the first event came after {format_duration(log.first_event_s)}, more than first_event_within "
            f"{format_duration(within)}",
        )
    if expect.max_gap is not None and log.gaps and max(log.gaps) > expect.max_gap:
        pause = "stopped for" if log.ended == "stalled" else "paused"
        return (
            Reason.STREAM_SLOW,
            f"the stream {pause} {format_duration(max(log.gaps))} after {log.events} events, more than max_gap "
            f"{format_duration(expect.max_gap)}",
        )
    if log.events < expect.min_events:
        return Reason.STREAM_INCOMPLETE, f"{log.events} events, expected at least {expect.min_events} ({log.ended})"
    if expect.done is not None and not log.done:
        how = {"closed": "the server ended it", "deadline": "the timeout came", "cap": "the read cap was reached"}
        return (
            Reason.STREAM_INCOMPLETE,
            f"the stream ended without {expect.done!r} after {log.events} events ({how.get(log.ended, log.ended)})",
        )
    if log.ended == "deadline":
        return Reason.STREAM_INCOMPLETE, f"the stream did not end within the timeout ({log.events} events)"
    return None
