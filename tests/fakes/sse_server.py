"""A streaming, OpenAI-compatible chat API (Starlette StreamingResponse under uvicorn, see http_servers).

``POST /v1/chat/completions`` with ``"stream": true`` answers ``text/event-stream``: one
``data: {...chunk...}`` event per word of the reply, then ``data: [DONE]``. Query parameters
make it misbehave: ``first=`` delay before the first event, ``gap=`` between events,
``stall_after=N`` (stop sending after N events and keep the connection open), ``stop_after=N``
(end the body after N events, without ``[DONE]``). Without ``"stream": true`` it answers one
JSON completion; ``GET /plain`` is a text/plain answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

REPLY = "the model is up and streaming"


async def _events(
    words: list[str], first: float, gap: float, stall_after: int | None, stop_after: int | None
) -> AsyncIterator[bytes]:
    await asyncio.sleep(first)
    yield b": keep-alive comment, not an event\n\n"
    for n, word in enumerate(words):
        if stop_after is not None and n >= stop_after:
            return
        if stall_after is not None and n >= stall_after:
            await asyncio.sleep(3600)
        if n:
            await asyncio.sleep(gap)
        chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": word + " "}}]}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _number(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    return None if value is None else float(value)


async def _chat(request: Request) -> Response:
    payload = await request.json()
    if not isinstance(payload, dict) or not payload.get("messages"):
        return JSONResponse({"error": {"message": "messages is required"}}, status_code=400)
    if not payload.get("stream"):
        return JSONResponse({"object": "chat.completion", "choices": [{"message": {"content": REPLY}}]})
    stall, stop = _number(request, "stall_after"), _number(request, "stop_after")
    return StreamingResponse(
        _events(
            REPLY.split(),
            _number(request, "first") or 0.0,
            _number(request, "gap") or 0.0,
            None if stall is None else int(stall),
            None if stop is None else int(stop),
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _plain(request: Request) -> Response:
    return PlainTextResponse("not a stream")


def sse_app() -> Starlette:
    return Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"]), Route("/plain", _plain)])
