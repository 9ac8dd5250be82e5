"""Retry policy: which failures are retried and how long to wait (exponential backoff, full jitter)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.core.vocabulary import worth_retrying


def backoff_delay(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, base * 2**attempt] (attempt 0 is the wait after the first try)."""
    ceiling = base * (2**attempt)
    return (rng or random).uniform(0.0, ceiling)


async def with_retries(
    attempt_once: Callable[[], Awaitable[Verdict]],
    *,
    retries: int,
    backoff: float,
    rng: random.Random | None = None,
    time_left: Callable[[], float] | None = None,
) -> tuple[Verdict, int]:
    """Run ``attempt_once`` until it passes, fails definitely, retries run out, or time does.

    ``time_left`` (seconds of the check's budget) stops retrying once the backoff would use it
    all up. Returns the last verdict and how many attempts were made.
    """
    attempt = 0
    while True:
        verdict = await attempt_once()
        attempt += 1
        if verdict.passed or not worth_retrying(verdict.reason, verdict.transient) or attempt > retries:
            return verdict, attempt
        delay = backoff_delay(attempt - 1, backoff, rng)
        if time_left is not None and time_left() - delay <= 0:
            return verdict, attempt
        await asyncio.sleep(delay)
