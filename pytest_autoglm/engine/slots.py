"""Concurrency slots where a check that has begun goes before one that has not.

With a plain FIFO semaphore and thousands of checks scheduled at once, every check's first
step (a DNS question, an address lookup) queues before any check's second step (the connect
after its lookup), so no connection starts until all names are resolved, and a dropped port's
timeout starts late. Finishing what has begun first lets slow steps start early and overlap.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class Slots:
    """At most ``size`` holders; waiters marked ``urgent`` are served before the others, each kind in order."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._free = size
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @property
    def in_use(self) -> int:
        return self.size - self._free

    def hold(self, *, urgent: bool) -> _Held:
        """``async with slots.hold(urgent=...)``: one slot for the block."""
        return _Held(self, urgent)

    async def acquire(self, *, urgent: bool) -> None:
        if self._free > 0 and not self._urgent and not self._normal:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # a slot was handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """Hand the slot to the next live waiter (urgent first), or free it."""
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():  # a cancelled waiter is skipped here, never searched for
                    waiter.set_result(None)
                    return
        self._free += 1


class _Held:
    def __init__(self, slots: Slots, urgent: bool) -> None:
        self._slots = slots
        self._urgent = urgent

    async def __aenter__(self) -> None:
        await self._slots.acquire(urgent=self._urgent)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._slots.release()
