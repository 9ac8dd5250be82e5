"""What an ``http`` check expects (inventory.md), already validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_autoglm.core.values import DEFAULT_STATUS, StatusSpec, parse_status
from pytest_autoglm.probes.http.security import HstsExpectation
from pytest_autoglm.probes.http.stream import StreamExpectation

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class HttpExpectation:
    """One entry of a target's ``http`` list (inventory.md), already validated."""

    url: str
    method: str = "GET"
    status: StatusSpec = DEFAULT_STATUS
    body_contains: str | None = None
    json: dict[str, Any] | None = None
    max_latency: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    follow_redirects: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    hsts: HstsExpectation | None = None  # the final response must carry this Strict-Transport-Security
    headers_present: tuple[str, ...] = ()  # header names the final response must carry
    headers_absent: tuple[str, ...] = ()  # header names it must not carry
    #: The request body (issue 19: e.g. a chat completion request) and the stream expected in the answer.
    content: bytes | None = None
    stream: StreamExpectation | None = None

    def __post_init__(self) -> None:
        # Convenience for hand-written expectations: ``status=200`` or ``status="2xx"``.
        if not isinstance(self.status, StatusSpec):
            object.__setattr__(self, "status", parse_status(self.status))
        object.__setattr__(self, "method", self.method.upper())
