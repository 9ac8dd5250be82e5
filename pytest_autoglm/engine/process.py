"""Running the inventory's checks in a child process, so probing gets a core and a GIL of its own.

In one process, pytest's per-item work on the main thread and the engine's event loop share
one interpreter lock: the run is as slow as their sum, and a probe waiting for the lock reads
its answer late. Forked after collection, a child runs the same :class:`Engine` on every
scheduled check and streams each result back through a pipe as it comes; the parent's
items wait on those results exactly as they wait on an in-process engine's.

Fork, not spawn: the child starts with the plan, the loaded probe modules and the frozen
collection already in memory (copy-on-write), so it costs milliseconds instead of a second of
imports. It never returns into pytest: it leaves with ``os._exit``. Where fork is not
available or not safe (not Linux, or other threads already run in the pytest process, whose
locks the child could inherit held), the checks run on the in-process engine instead.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Outcome, Reason
from pytest_autoglm.engine import dispatch
from pytest_autoglm.engine.runner import DEFAULT_TLS_CONCURRENCY, Engine, EngineStopped, stall_limit
from pytest_autoglm.inventory.plan import Check

#: Exit code of a child whose engine broke (a bug); the parent reports the checks still open as errors.
_CHILD_FAILED = 70
_HEADER = 4  # bytes of length before each pickled batch
_CHILD_ERROR = "\0child-error"  # not a check id (ids never hold NUL): the child's engine broke
#: How long the child lets finished results gather before sending them: per-result pickles and
#: wake-ups of both processes cost more CPU than a few milliseconds of latency.
BATCH_WAIT_S = 0.005


#: From this many checks, ``--autoglm-engine auto`` forks. Measured on 2 cores with 10% dropped
#: ports (docs/performance.md), the child, walked as its results arrive, was faster: 2.97 s
#: against 3.05-3.16 s at 210 checks, 3.46 against 3.76 at 1,050, at 2,100 faster or within the
#: VM's noise, 14.78 against 17.34 at 10,500, where the in-process engine, starved of the
#: interpreter lock by pytest's own work, read about half of the HTTP answers as timeouts.
#: Below this, a run is small enough that a stable terminal order (the in-process engine walks
#: items in collection order) is worth more.
AUTO_PROCESS_MIN_CHECKS = 200


def fork_available() -> bool:
    """Linux only: elsewhere fork is either missing or unsafe with the system's libraries."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def fork_is_safe() -> bool:
    """No other thread runs now (a lock one of them holds would stay held in the child).

    The kernel's count, not :mod:`threading`'s: threads started from C or with ``_thread``
    (execnet's, in an xdist worker) are not in ``threading.active_count()``.
    """
    if not fork_available():
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return threading.active_count() == 1


class ProcessRunner:
    """The checks of a run, probed in a forked child; thread-safe ``result`` for pytest's items.

    Checks it was not given (a user's ``probe`` call, an item scheduled late) go to ``fallback``,
    the in-process engine.
    """

    def __init__(
        self,
        fallback: Engine,
        *,
        concurrency: int = 256,
        tls_concurrency: int = DEFAULT_TLS_CONCURRENCY,
        min_checks: int = 0,
        stall_limit_s: float | None = None,
    ) -> None:
        """``min_checks``: fewer scheduled checks than this run on ``fallback`` (the fork does not pay off);
        ``stall_limit_s`` replaces :func:`~pytest_autoglm.engine.runner.stall_limit` (for tests)."""
        self.fallback = fallback
        self.min_checks = min_checks
        self._fixed_stall_limit = stall_limit_s
        self._stall_limit = 0.0
        self._last_progress = time.monotonic()  # of the child: set by the reader on each batch
        self.concurrency = concurrency
        self.tls_concurrency = tls_concurrency
        self._futures: dict[str, concurrent.futures.Future[CheckResult]] = {}
        self._checks: dict[str, Check] = {}
        self._pid: int | None = None
        self._tried = False  # one fork per run, whether it worked or not
        self._reader: threading.Thread | None = None
        self._child_error = ""  # the last line of the child's traceback, if its engine broke
        self._fallback_reason = ""

    def schedule(self, checks: Sequence[Check]) -> None:
        """Fork the child for ``checks`` (once per run; later calls go to the fallback engine).

        If the fork cannot be made (no fds, no processes, no threads left), the checks run on
        the fallback engine: a failed fork must never leave items waiting for a child.
        """
        if self._tried or len(checks) < self.min_checks or not fork_is_safe():
            if not self._tried and checks:
                self._fallback_reason = (
                    f"{len(checks)} checks, fewer than {self.min_checks}"
                    if len(checks) < self.min_checks
                    else "another thread runs in this process, so forking is not safe"
                )
            self.fallback.schedule([c for c in checks if c.id not in self._futures])
            return
        if not checks:
            return
        self._tried = True
        dispatch.warm_up(checks)  # imported once here, shared with the child
        for check in checks:  # before the reader starts: a result must always find its future
            self._futures[check.id] = concurrent.futures.Future()
            self._checks[check.id] = check
        self._stall_limit = self._fixed_stall_limit if self._fixed_stall_limit is not None else stall_limit(checks)
        self._last_progress = time.monotonic()
        pid = self._fork(checks)
        if pid is None:
            self._futures.clear()  # nobody holds them yet: items ask only after this returns
            self._checks.clear()
            self._fallback_reason = "the child process could not be started"
            self.fallback.schedule(checks)
            return
        self._pid = pid

    def _fork(self, checks: Sequence[Check]) -> int | None:
        """The child's PID with its reader running, or None (nothing left behind) if that failed."""
        try:
            read_fd, write_fd = os.pipe()
        except OSError:
            return None
        # Ctrl-C between fork() and the bookkeeping below would leave a child nobody stops.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the child: probe, stream the results, leave without running any of pytest's exit code
            code = _CHILD_FAILED
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(read_fd)
                _probe_and_stream(checks, write_fd, self.concurrency, self.tls_concurrency)
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        reader = threading.Thread(target=self._read, args=(read_fd,), name="autoglm-results", daemon=True)
        try:
            reader.start()
        except RuntimeError:  # no thread left: stop the child we just made
            _kill_and_reap(pid)
            os.close(read_fd)
            return None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self._reader = reader
        return pid

    def lookup(self, check_id: str) -> tuple[Check, concurrent.futures.Future[CheckResult]] | None:
        """A scheduled check and its future result (for the fallback engine's upstream rule)."""
        future = self._futures.get(check_id)
        return None if future is None else (self._checks[check_id], future)

    def result(self, check: Check) -> CheckResult:
        future = self._futures.get(check.id)
        if future is None:
            return self.fallback.result(check)
        try:
            while True:  # the reader settles every future, at the latest when the child is gone
                try:
                    return future.result(timeout=1.0)
                except concurrent.futures.TimeoutError:
                    self.alive()  # stops a stuck child, after which the reader settles the rest
        except EngineStopped as exc:
            return CheckResult(Outcome.ERROR, check.kind, Reason.SETUP, str(exc))

    def when_done(self, check: Check, callback: Callable[[concurrent.futures.Future[CheckResult]], None]) -> None:
        """Call ``callback`` with the scheduled check's future once it is settled (in the reader's thread)."""
        future = self._futures.get(check.id)
        if future is None:
            self.fallback.when_done(check, callback)
        else:
            future.add_done_callback(callback)

    def alive(self) -> bool:
        """Whether results can still come (the reader settles every future before it ends).

        A child that sends nothing for the stall limit while checks are open is stuck (alive
        but blocked): it is stopped, and the reader then turns the open checks into errors.
        """
        if not self._futures:
            return self.fallback.alive()
        if self._reader is None or not self._reader.is_alive():
            return False
        pid = self._pid
        if pid is not None and time.monotonic() - self._last_progress > self._stall_limit:
            if not self._child_error:
                self._child_error = f"it sent no result for {self._stall_limit:.0f}s and was stopped as stuck"
            self._pid = None
            _kill_and_reap(pid)
            return False
        return True

    @property
    def fallback_reason(self) -> str:
        """Why the checks did not go to a child ("" if they did or none were scheduled)."""
        return self._fallback_reason

    @property
    def forked(self) -> bool:
        """Whether the run's checks went to a child process (for the terminal summary)."""
        return bool(self._futures)

    def close(self) -> None:
        """Stop the child (ours, by its PID) if it still runs, and the reader."""
        if self._pid is not None:
            _kill_and_reap(self._pid)
            self._pid = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        self.fallback.close()

    def _read(self, fd: int) -> None:
        try:
            with os.fdopen(fd, "rb") as pipe:
                while True:
                    header = pipe.read(_HEADER)
                    if len(header) < _HEADER:
                        break
                    size = int.from_bytes(header, "big")
                    payload = pipe.read(size)
                    if len(payload) < size:
                        break
                    self._last_progress = time.monotonic()
                    for check_id, result in pickle.loads(payload):
                        if check_id == _CHILD_ERROR:
                            self._child_error = str(result)
                            continue
                        future = self._futures.get(check_id)
                        if future is not None and not future.done():
                            future.set_result(result)
        finally:
            why = f" ({self._child_error})" if self._child_error else ""
            stopped = EngineStopped(f"the probe process stopped before this check finished{why}")
            for future in self._futures.values():
                if not future.done():
                    future.set_exception(stopped)


def _kill_and_reap(pid: int) -> None:
    """Stop our child (by its PID) and collect its exit status, so no zombie is left."""
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _probe_and_stream(checks: Sequence[Check], fd: int, concurrency: int, tls_concurrency: int) -> None:
    """In the child: run every check on an engine; write results in batches as they finish.

    If the engine breaks (a bug), the last line of the traceback goes to the parent, which
    puts it in the message of every check still open.
    """
    try:
        _stream(checks, fd, concurrency, tls_concurrency)
    except BaseException as exc:
        text = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with contextlib.suppress(Exception):
            payload = pickle.dumps([(_CHILD_ERROR, text)])
            os.write(fd, len(payload).to_bytes(_HEADER, "big") + payload)
        raise


def _stream(checks: Sequence[Check], fd: int, concurrency: int, tls_concurrency: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole process group: just go
    engine = Engine(concurrency=concurrency, tls_concurrency=tls_concurrency)
    finished: queue.SimpleQueue[tuple[Check, concurrent.futures.Future[CheckResult]]] = queue.SimpleQueue()
    engine.schedule(checks)
    for check in checks:
        engine.when_done(check, functools.partial(_finished, finished, check))
    remaining = len(checks)
    with os.fdopen(fd, "wb", closefd=False) as pipe:
        while remaining:
            try:
                batch = [finished.get(timeout=1.0)]
            except queue.Empty:
                if not engine.alive():
                    raise EngineStopped("the probe engine stopped") from None
                continue
            time.sleep(BATCH_WAIT_S)  # let results gather: one pickle and one write for many
            while True:
                try:
                    batch.append(finished.get_nowait())
                except queue.Empty:
                    break
            remaining -= len(batch)
            payload = pickle_batch([(check.id, settled_result(check, future)) for check, future in batch])
            pipe.write(len(payload).to_bytes(_HEADER, "big") + payload)
            pipe.flush()
    engine.close()


def _finished(
    finished: queue.SimpleQueue[tuple[Check, concurrent.futures.Future[CheckResult]]],
    check: Check,
    future: concurrent.futures.Future[CheckResult],
) -> None:
    finished.put((check, future))


def settled_result(check: Check, future: concurrent.futures.Future[CheckResult]) -> CheckResult:
    """A settled future's result; a cancelled or failed probe is the check's ``setup`` error (also at a vantage)."""
    if future.cancelled():
        return CheckResult(Outcome.ERROR, check.kind, Reason.SETUP, "the probe was cancelled")
    error = future.exception()
    if error is not None:
        return CheckResult(Outcome.ERROR, check.kind, Reason.SETUP, f"{type(error).__name__}: {error}")
    return future.result()


def pickle_batch(batch: list[tuple[str, CheckResult]]) -> bytes:
    """The batch; a result that cannot be pickled (a bug) is sent as an error of its check (also at a vantage)."""
    try:
        return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        safe = []
        for check_id, result in batch:
            try:
                pickle.dumps(result)
            except Exception as exc:
                safe.append(
                    (check_id, CheckResult(Outcome.ERROR, None, Reason.SETUP, f"result not transferable: {exc}"))
                )
            else:
                safe.append((check_id, result))
        return pickle.dumps(safe, protocol=pickle.HIGHEST_PROTOCOL)
