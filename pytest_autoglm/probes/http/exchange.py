"""One request and its response, measured: :class:`Hop`, httpcore's trace events per phase, a capped body."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

#: Response headers kept in ``details["headers"]``.
INTERESTING_HEADERS = (
    "server",
    "content-type",
    "content-length",
    "location",
    "www-authenticate",
    "proxy-authenticate",
    "retry-after",
)


@dataclass
class Hop:
    """One request and its response (no redirects), body read up to a cap."""

    url: httpx.URL
    method: str
    status: int
    reason_phrase: str
    http_version: str
    headers: httpx.Headers
    body: bytes
    truncated: bool
    bytes_downloaded: int
    charset: str | None
    peer: str | None
    tls_version: str | None
    timings: dict[str, float]

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset from the server
            return self.body.decode("utf-8", errors="replace")


class Trace:
    """Follows httpcore's trace events: the phase we are in (to classify a failure)
    and how long each phase took."""

    _PHASES: ClassVar[dict[str, str]] = {
        "connect_tcp": "connect",
        "start_tls": "tls",
        "send_request_headers": "request",
        "receive_response_headers": "wait",
        "receive_response_body": "body",
    }

    def __init__(self) -> None:
        self.phase = "start"
        self.peer: str | None = None
        self.tls_version: str | None = None
        self.ms: dict[str, float] = {}
        self._t: dict[str, float] = {}
        self._tcp_streams: list[Any] = []  # httpcore's network streams, for orphans_closed()

    def begin(self, phase: str) -> None:
        self.phase = phase
        self._t[phase] = time.perf_counter()

    def end(self, phase: str, key: str | None = None, since: str | None = None) -> None:
        started = self._t.get(since or phase)
        if started is not None:
            self.ms[key or phase] = round((time.perf_counter() - started) * 1000, 1)

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        step, _, state = name.rpartition(".")
        phase = self._PHASES.get(step.rpartition(".")[2])
        if phase is None:
            return
        if state == "started":
            self.begin(phase)
        elif state == "complete":
            if phase in ("connect", "tls"):
                self.end(phase)
                self._note_stream(info.get("return_value"))
                if phase == "connect" and info.get("return_value") is not None:
                    self._tcp_streams.append(info["return_value"])
            elif phase == "wait":
                self.end(phase, "first_byte", since="request")

    @asynccontextmanager
    async def orphans_closed(self) -> AsyncIterator[None]:
        """Around ``client.send``: if it fails, close every TCP connection it opened (closing twice is harmless).

        Workaround for httpcore 1.0.9: ``AnyIOStream.start_tls`` closes the TCP stream on ``Exception``
        only, so a cancellation (our deadline) during the TLS handshake drops it unclosed, held by no
        connection; the garbage collector then finds the socket during some later, unrelated test
        (ResourceWarning). No upstream issue names this path; related: encode/httpcore#443 (the same
        orphan on handshake errors) and #642/#726 (closing on cancellation). Once ``send`` returns,
        the connection pool owns the stream and the client's exit closes it.
        """
        try:
            yield
        except BaseException:
            streams, self._tcp_streams = self._tcp_streams, []
            for stream in streams:
                with suppress(Exception):  # a broken stream is closed all the same
                    await stream.aclose()
            raise

    def _note_stream(self, stream: Any) -> None:
        if stream is None:
            return
        addr = stream.get_extra_info("server_addr")
        if isinstance(addr, tuple) and addr:
            self.peer = str(addr[0])
        ssl_object = stream.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls_version = ssl_object.version()


def phase_timings(ms: Mapping[str, float], total_s: float) -> dict[str, float | None]:
    """Every phase key present (None: phase not gone through), plus the total."""
    out: dict[str, float | None] = {k: ms.get(k) for k in ("dns", "connect", "tls", "first_byte")}
    if "body" in ms:
        out["body"] = ms["body"]
    out["total"] = round(total_s * 1000, 1)
    return out


async def read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the (decoded) body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    body = b"".join(chunks)
    return body[:cap], len(body) > cap
