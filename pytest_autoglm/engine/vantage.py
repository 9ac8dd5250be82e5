"""One remote vantage (issue 17): its checks run at the other end of one execnet gateway.

A :class:`GatewayRunner` is a :class:`~pytest_autoglm.engine.runner.Runner` for the checks of one
vantage. On its first ``schedule`` a driver thread opens ONE gateway (``execnet.makegateway(spec)``,
the strings pytest-xdist's ``--tx`` takes), bounded by ``open_timeout_s``, and runs
:mod:`pytest_autoglm.engine.remote` there. The handshake compares the remote's pytest-autoglm
version with ours; then the checks go over pickled, the remote runs them on its own in-process
engine, all at once, and streams the results back in small batches as they finish.

Whatever goes wrong resolves every open check of the vantage *at once* to ``error`` with reason
``vantage_unreachable`` and a message that says what happened and, where it can, what to do:
the gateway does not open, the remote lacks pytest-autoglm or has another version of it, the
gateway dies midway (execnet calls the channel's end marker), or it sends nothing for longer
than :func:`~pytest_autoglm.engine.runner.stall_limit` (a stuck remote: the gateway is then
stopped). Later checks of that vantage get the same error without a new attempt. Every wait
is bounded, and ``close`` ends the gateway (exit, then kill) within :data:`CLOSE_TIMEOUT_S`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import pickle
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Outcome, Reason
from pytest_autoglm.engine import remote
from pytest_autoglm.engine.runner import DEFAULT_TLS_CONCURRENCY, stall_limit
from pytest_autoglm.inventory.plan import Check
from pytest_autoglm.inventory.vantages import mask_spec

if TYPE_CHECKING:
    import execnet  # imported when the first gateway opens: a run without vantages never pays for it

#: A gateway that has not opened (process started, execnet bootstrapped) within this is unreachable.
OPEN_TIMEOUT_S = 30.0
#: The remote's answer to the handshake (it imports pytest-autoglm first) must come within this.
HANDSHAKE_TIMEOUT_S = 30.0
#: ``close``: how long the gateway gets to exit before its process is killed.
CLOSE_TIMEOUT_S = 5.0
#: A stuck remote (see the stall watchdog) gets this long to exit before it is killed.
STUCK_EXIT_S = 0.5
#: How often the driver thread looks for new checks to send and for a stalled remote.
POLL_S = 0.5

_END = object()  # execnet's end marker for our channel: the channel closed (or the gateway died)


class _Unreachable(Exception):
    """The vantage cannot run its checks; the message says why (and what to install)."""


def _our_version() -> str:
    """This run's pytest-autoglm version: the root package's ``__version__``.

    Looked up by name: the root package imports pytest only lazily (for ``pytest_autoglm.dns``
    and the other markers), but a static import of it would read as engine -> pytest.
    """
    return str(importlib.import_module("pytest_autoglm").__version__)


def install_hint(python: str, version: str) -> str:
    """What to run on the vantage so that it can run this run's checks."""
    return f"install it there: {python} -m pip install pytest-autoglm=={version}"


class GatewayRunner:
    """The checks of one remote vantage, probed at the other end of an execnet gateway."""

    def __init__(
        self,
        name: str,
        spec: str,
        *,
        concurrency: int = 256,
        tls_concurrency: int = DEFAULT_TLS_CONCURRENCY,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        stall_limit_s: float | None = None,
    ) -> None:
        """``stall_limit_s`` replaces :func:`~pytest_autoglm.engine.runner.stall_limit` (for tests)."""
        self.name = name
        self.spec = spec
        self._shown_spec = mask_spec(spec)  # in messages: //env: values as ***, as in the header
        self.concurrency = concurrency
        self.tls_concurrency = tls_concurrency
        self.open_timeout_s = open_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self._fixed_stall_limit = stall_limit_s
        self._stall_limit = 0.0
        self._last_progress = time.monotonic()
        self._lock = threading.Lock()
        self._futures: dict[str, concurrent.futures.Future[CheckResult]] = {}
        self._checks: dict[str, Check] = {}
        self._outbox: list[Check] = []  # scheduled, not yet sent to the remote
        self._wake = threading.Event()
        self._driver: threading.Thread | None = None
        self._group: execnet.Group | None = None
        self._channel: execnet.Channel | None = None
        self._closing = False
        self._abandoned = False  # the gateway did not open in time: if it opens later, close it at once
        self._remote_error = ""
        self._stuck = False
        #: Why the vantage cannot run its checks ("" while it can): the message of each of its errors.
        self.failure = ""
        #: The remote interpreter and its PID, once the handshake told them.
        self.remote_python = ""
        self.remote_pid: int | None = None

    # -- Runner --------------------------------------------------------------------------------------------------

    def schedule(self, checks: Sequence[Check]) -> None:
        """Send the given checks to the vantage (opening its gateway the first time); never blocks on it."""
        failed = ""
        with self._lock:
            fresh = [c for c in checks if c.id not in self._futures]
            if not fresh:
                return
            for check in fresh:
                self._futures[check.id] = concurrent.futures.Future()
                self._checks[check.id] = check
            failed = self.failure or ("the run is ending" if self._closing else "")
            if not failed:
                limit = self._fixed_stall_limit if self._fixed_stall_limit is not None else stall_limit(fresh)
                self._stall_limit = max(self._stall_limit, limit)
                self._outbox.extend(fresh)
                if self._driver is None:
                    self._driver = threading.Thread(
                        target=self._drive, name=f"autoglm-vantage-{self.name}", daemon=True
                    )
                    self._driver.start()
        if failed:
            self._settle_open(failed)
        self._wake.set()

    def result(self, check: Check) -> CheckResult:
        """The check's result; every open check is settled within the bounds above, so this never hangs."""
        if check.id not in self._futures:
            self.schedule([check])
        future = self._futures[check.id]
        while True:
            try:
                return future.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                driver = self._driver
                if driver is not None and not driver.is_alive():  # a bug ended the driver: never wait for it
                    self._fail(f"the driver of vantage {self.name} stopped before this check finished")

    def when_done(self, check: Check, callback: Callable[[concurrent.futures.Future[CheckResult]], None]) -> None:
        if check.id not in self._futures:
            self.schedule([check])
        self._futures[check.id].add_done_callback(callback)

    def alive(self) -> bool:
        """Whether no wait for this vantage can be in vain: its driver runs, or it failed (then every check
        of it, later ones too, is settled at once). False once closed, or if the driver died of a bug."""
        if self._closing:
            return False
        if self.failure:
            return True
        driver = self._driver
        return driver is not None and driver.is_alive()

    def close(self) -> None:
        """End the gateway (exit, then kill after :data:`CLOSE_TIMEOUT_S`); open checks become errors."""
        with self._lock:
            self._closing = True
        self._wake.set()
        self._terminate()
        driver = self._driver
        if driver is not None:  # it may be terminating the gateway itself (a failure): that is bounded too
            driver.join(timeout=2 * CLOSE_TIMEOUT_S + 1)
        self._settle_open(f"the run ended before vantage {self.name} answered")

    # -- driver thread -------------------------------------------------------------------------------------------

    def _drive(self) -> None:
        try:
            channel = self._handshake(self._open())
            channel.setcallback(self._on_message, endmarker=_END)
            while not self._closing and not self.failure:
                self._send_outbox(channel)
                self._wake.wait(POLL_S)
                self._wake.clear()
                self._watch_stall()
        except _Unreachable as exc:
            self._fail(str(exc))
        except Exception as exc:
            if not self._closing:
                self._fail(f"the gateway to {self.name} failed: {type(exc).__name__}: {exc}")
        finally:
            if self._abandoned or self.failure:
                self._terminate(STUCK_EXIT_S if self._stuck else CLOSE_TIMEOUT_S)

    def _open(self) -> execnet.Gateway:
        """The gateway, opened within ``open_timeout_s`` (in a thread of its own: execnet's wait is unbounded)."""
        opened: queue.SimpleQueue[tuple[execnet.Group, execnet.Gateway] | BaseException] = queue.SimpleQueue()

        import execnet

        def make() -> None:
            group = execnet.Group()
            try:
                gateway = group.makegateway(self.spec)
            except BaseException as exc:
                opened.put(exc)
                return
            with self._lock:
                late = self._abandoned or self._closing
                if not late:
                    self._group = group
            if late:  # nobody waits for it any more
                with contextlib.suppress(Exception):
                    group.terminate(timeout=CLOSE_TIMEOUT_S)
            opened.put((group, gateway))

        threading.Thread(target=make, name=f"autoglm-vantage-{self.name}-open", daemon=True).start()
        deadline = time.monotonic() + self.open_timeout_s
        while True:  # in short waits: a run that ends meanwhile stops waiting at once
            try:
                got = opened.get(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
                break
            except queue.Empty:
                if self._closing or time.monotonic() >= deadline:
                    with self._lock:
                        self._abandoned = True
                    raise _Unreachable(
                        f"the gateway to vantage {self.name} ({self._shown_spec}) did not open within {self.open_timeout_s:g}s"
                    ) from None
        if isinstance(got, BaseException):
            raise _Unreachable(
                f"the gateway to vantage {self.name} ({self._shown_spec}) did not open: {type(got).__name__}: {got}"
            )
        if self._closing:
            raise _Unreachable(f"the run ended before the gateway to vantage {self.name} opened")
        return got[1]

    def _handshake(self, gateway: execnet.Gateway) -> execnet.Channel:
        """Run the remote side; it must have pytest-autoglm, in our version."""
        ours = _our_version()
        channel = gateway.remote_exec(remote)
        try:
            hello = channel.receive(timeout=self.handshake_timeout_s)
        except Exception as exc:
            raise _Unreachable(
                f"vantage {self.name} ({self._shown_spec}) did not answer the handshake: {type(exc).__name__}: {exc}"
            ) from None
        _, version, where, python, pid, problem = hello
        self.remote_python, self.remote_pid = str(python), int(pid)
        if version is None:
            raise _Unreachable(
                f"vantage {self.name}: {python} cannot import pytest_autoglm ({problem}); {install_hint(python, ours)}"
            )
        if version != ours:
            raise _Unreachable(
                f"vantage {self.name}: {python} has pytest-autoglm {version} ({where}), this run has {ours}; "
                f"{install_hint(python, ours)}"
            )
        if problem:
            raise _Unreachable(
                f"vantage {self.name}: {python} has pytest-autoglm {version} ({where}) but cannot import its engine "
                f"({problem}); reinstall it there with its dependencies: {python} -m pip install pytest-autoglm=={ours}"
            )
        channel.send(("start", self.concurrency, self.tls_concurrency))
        self._channel = channel
        return channel

    def _send_outbox(self, channel: execnet.Channel) -> None:
        with self._lock:
            batch, self._outbox = self._outbox, []
            if batch:
                self._last_progress = time.monotonic()  # the stall limit counts from the newest checks sent
        if not batch:
            return
        try:
            payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a check that cannot travel (a bug): that one is an error, the others go
            sendable = []
            for check in batch:
                try:
                    pickle.dumps(check)
                except Exception as exc:
                    self._settle(
                        check.id,
                        CheckResult(
                            Outcome.ERROR, None, Reason.SETUP, f"the check cannot be sent to vantage {self.name}: {exc}"
                        ),
                    )
                else:
                    sendable.append(check)
            payload = pickle.dumps(sendable, protocol=pickle.HIGHEST_PROTOCOL)
        channel.send(("checks", payload))

    def _watch_stall(self) -> None:
        """A remote that sends nothing for the stall limit while checks are open is stopped as stuck."""
        with self._lock:
            waiting = any(not f.done() for f in self._futures.values())
            quiet = time.monotonic() - self._last_progress
        if waiting and quiet > self._stall_limit:
            self._stuck = True
            self._fail(f"vantage {self.name} sent no result for {quiet:.0f}s and was stopped as stuck")

    # -- receiver thread (execnet's) ---------------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        if message is _END:
            if not self._closing:
                why = f" (its engine broke: {self._remote_error})" if self._remote_error else ""
                self._fail(f"the gateway to vantage {self.name} died midway{why}")
            return
        kind = message[0]
        if kind == "results":
            self._last_progress = time.monotonic()
            for check_id, result in pickle.loads(message[1]):
                self._settle(check_id, result)
        elif kind == "error":
            self._remote_error = str(message[1])

    # -- settling ------------------------------------------------------------------------------------------------

    def _settle(self, check_id: str, result: CheckResult) -> None:
        future = self._futures.get(check_id)
        if future is not None and not future.done():
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # settled meanwhile by another thread
                future.set_result(result)

    def _fail(self, message: str) -> None:
        """The vantage cannot run its checks: every open one (and every later one) is an error at once."""
        with self._lock:
            if not self.failure:
                self.failure = message
            message = self.failure
        self._wake.set()
        self._settle_open(message)

    def _settle_open(self, message: str) -> None:
        with self._lock:
            open_ids = [check_id for check_id, future in self._futures.items() if not future.done()]
        for check_id in open_ids:
            self._settle(check_id, CheckResult(Outcome.ERROR, None, Reason.VANTAGE_UNREACHABLE, message, attempts=0))

    def _terminate(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Exit the gateway, kill its process after ``timeout`` (execnet's terminate: at most twice that)."""
        with self._lock:
            group, self._group = self._group, None
        if group is not None:
            with contextlib.suppress(Exception):
                group.terminate(timeout=timeout)
