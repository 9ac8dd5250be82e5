"""How late the checker itself was during an attempt: event-loop lag and CPU starvation.

A time-based verdict (``timeout``, ``filtered``, ``slow``) is a claim about the wire; it holds only
if the checker was listening. A starved event loop (a loaded CI runner, the GIL held by pytest's
thread, a CPU quota) sees an answer late, so the engine measures, per attempt:

- **loop lag**: a tick every :data:`TICK_S`; how late each tick fires is summed, so the lag
  during an attempt is the growth of that sum (plus a tick overdue right now);
- **run-queue wait** of the loop's thread (``/proc/thread-self/schedstat``, second field: time
  runnable but not running), which shows CPU starvation in the forked child as in a thread.

Both are cheap: one timer every 20 ms, and one ``pread`` of a small procfs file per attempt.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Final

#: How often the loop's lag is sampled.
TICK_S: Final = 0.02
#: Part of an attempt's timeout the checker may lose before a time-based verdict no longer counts: with
#: half the time left for the wire, "no answer" still means no answer (a 1000-check burst on a busy
#: 2-core machine costs ~0.3 s of loop time; a starved runner costs seconds).
TOLERANCE_SHARE: Final = 0.5
#: ... plus this much, so that the ordinary jitter of a busy loop never spoils an attempt.
TOLERANCE_FLOOR_S: Final = 0.05


def tolerance(timeout: float) -> float:
    """Seconds of the checker's own lateness an attempt of ``timeout`` absorbs and still judges time."""
    return TOLERANCE_SHARE * timeout + TOLERANCE_FLOOR_S


class LatenessMeter:
    """Loop-side sampler; create it and call :meth:`start` on the loop's thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expected = 0.0
        self._late_total = 0.0
        self._schedstat: int | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._schedstat = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
        except OSError:  # not Linux, or no schedstat: loop lag alone
            self._schedstat = None
        self._expected = self._loop.time() + TICK_S
        self._handle = self._loop.call_at(self._expected, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self._late_total += max(0.0, now - self._expected)
        self._expected = now + TICK_S
        self._handle = self._loop.call_at(self._expected, self._tick)

    def mark(self) -> tuple[float, float]:
        """A reading to compare a later one with (:meth:`since`)."""
        return self._lag_now(), self._run_delay()

    def since(self, mark: tuple[float, float]) -> float:
        """Seconds the checker was late since ``mark``: the larger of loop lag and run-queue wait."""
        lag, delay = self.mark()
        return max(lag - mark[0], delay - mark[1])

    def _lag_now(self) -> float:
        if self._loop is None:
            return 0.0
        return self._late_total + max(0.0, self._loop.time() - self._expected)

    def _run_delay(self) -> float:
        if self._schedstat is None:
            return 0.0
        try:
            fields = os.pread(self._schedstat, 96, 0).split()
            return int(fields[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0
