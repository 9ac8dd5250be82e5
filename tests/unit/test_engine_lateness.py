"""The engine knows when it was late: a loop blocked by the checker's own work (a real blocking call
on the engine's loop, as a starved CI runner does to it) never turns into a verdict against the target."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_autoglm.core.vocabulary import Outcome, Reason
from pytest_autoglm.engine.lateness import LatenessMeter, tolerance
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.plan import Check, build_plan
from pytest_autoglm.inventory.validate import load_inventory


@contextmanager
def _silent_http() -> Iterator[int]:
    """Accepts connections and never answers: an honest ``http/timeout``."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=3)
        for conn in held:
            conn.close()
        listener.close()


def _check(tmp_path: Path, port: int, timeout: str = "300ms") -> Check:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "version: 1\n"
        f"defaults: {{timeout: {timeout}, retries: 0}}\n"
        "targets:\n"
        "  - name: t\n"
        "    host: 127.0.0.1\n"
        f"    http: [{{url: 'http://127.0.0.1:{port}/'}}]\n"
    )
    return build_plan(load_inventory(inventory))[0]


def _block_loop(engine: Engine, seconds: float, every: float | None = None, until: float = 0.0) -> None:
    """Block the engine's loop with a plain sleep (now, or every ``every`` s until ``until``)."""

    async def block() -> None:
        loop = asyncio.get_running_loop()

        def stall() -> None:
            time.sleep(seconds)
            if every is not None and time.monotonic() < until:
                loop.call_later(every, stall)

        loop.call_later(0.05, stall)

    engine.run(block())


def test_a_stall_during_an_attempt_is_repeated_then_judged(tmp_path: Path) -> None:
    with _silent_http() as port:
        check = _check(tmp_path, port)
        engine = Engine()
        try:
            engine.schedule([check])
            _block_loop(engine, 0.5)  # lands inside the first attempt
            result = engine.result(check)
        finally:
            engine.close()
    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.TIMEOUT), result.message
    assert result.details.get("spoiled_attempts") == 1 and engine.spoiled_attempts == 1, result.details
    assert result.attempts == 1  # a spoiled attempt is not a retry


def test_a_checker_late_on_every_attempt_says_overloaded_not_timeout(tmp_path: Path) -> None:
    with _silent_http() as port:
        check = _check(tmp_path, port)
        engine = Engine()
        try:
            engine.start()
            _block_loop(engine, 0.25, every=0.05, until=time.monotonic() + 30)
            engine.schedule([check])
            result = engine.result(check)
        finally:
            engine.close()
    assert (result.outcome, result.reason) == (Outcome.ERROR, Reason.OVERLOADED), result.message
    assert "too busy" in result.message and "late by" in result.message and "ms" in result.message
    assert result.details["spoiled_attempts"] == 3 and len(result.details["lag_ms"]) == 3
    assert all(lag > tolerance(0.3) * 1000 for lag in result.details["lag_ms"])


def test_a_quiet_loop_spoils_nothing(tmp_path: Path) -> None:
    """The negative control: an honest timeout stays a timeout at once."""
    with _silent_http() as port:
        check = _check(tmp_path, port)
        engine = Engine()
        try:
            engine.schedule([check])
            result = engine.result(check)
        finally:
            engine.close()
    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.TIMEOUT), result.message
    assert "spoiled_attempts" not in result.details and engine.spoiled_attempts == 0


def test_the_meter_sees_a_blocked_loop() -> None:
    async def main() -> float:
        meter = LatenessMeter()
        meter.start()
        try:
            await asyncio.sleep(0.05)
            mark = meter.mark()
            time.sleep(0.3)  # the loop cannot tick
            await asyncio.sleep(0)
            return meter.since(mark)
        finally:
            meter.stop()

    assert asyncio.run(main()) >= 0.25


def test_the_summary_counts_spoiled_attempts() -> None:
    from pytest_autoglm.reporting.records import spoiled_attempts

    entries = [{"details": {"spoiled_attempts": 2}}, {"details": {}}, {"details": {"spoiled_attempts": 1}}, {}]
    assert spoiled_attempts(entries) == 3


def test_a_repeat_gets_the_whole_timeout(tmp_path: Path) -> None:
    """The spoiled attempt's time is not the item's: the repeat waits the full timeout, as a quiet run would."""
    with _silent_http() as port:
        check = _check(tmp_path, port, timeout="400ms")
        engine = Engine()
        try:
            engine.schedule([check])
            _block_loop(engine, 0.6)  # longer than the attempt's whole budget
            result = engine.result(check)
        finally:
            engine.close()
    assert (result.reason, result.details.get("spoiled_attempts")) == (Reason.TIMEOUT, 1), result.message
    assert "within 400ms" in result.message, result.message
