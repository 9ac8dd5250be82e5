"""The load-aware time bounds of tests/timing.py."""

from __future__ import annotations

import threading
import time

from tests.timing import Seconds, Stopwatch


def test_upper_bounds_leave_out_cpu_waits_lower_bounds_do_not() -> None:
    elapsed = Seconds(1.2, 0.5)
    assert elapsed < 1.0 and elapsed <= 0.7  # 0.7 s of our own
    assert not elapsed < 0.6
    assert 1.1 <= elapsed and elapsed > 1.1  # waited at least that long, busy or not
    assert not 1.3 <= elapsed


def test_a_stopwatch_measures_wall_time_and_cpu_waits() -> None:
    with Stopwatch() as watch:
        threads = [threading.Thread(target=lambda: sum(range(300_000))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.05)
    assert 0.05 <= watch.elapsed and watch.elapsed.starved >= 0.0
    assert watch.elapsed.own() <= float(watch.elapsed)
