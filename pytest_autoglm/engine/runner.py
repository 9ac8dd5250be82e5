"""The concurrent probe engine.

All checks of a run are scheduled at once on an asyncio loop in a background
thread, up to ``concurrency`` probes in flight, so one dead target never holds
back the others; pytest items then collect their results in pytest's order.
A check first waits for the lower-layer checks it relies on and fails at once
with reason ``upstream`` when one of them broke the layer it needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from pytest_autoglm.core.records import CheckResult, Verdict
from pytest_autoglm.core.sanitize import tree_without_internals, without_internals
from pytest_autoglm.core.vocabulary import (
    ERROR_REASONS,
    NAME_DOES_NOT_RESOLVE,
    TIME_REASONS,
    Layer,
    Outcome,
    Reason,
)
from pytest_autoglm.engine import dispatch, groups
from pytest_autoglm.engine.lateness import LatenessMeter, tolerance
from pytest_autoglm.engine.retry import with_retries
from pytest_autoglm.inventory.plan import Check
from pytest_autoglm.probes.dns import DnsSession

T = TypeVar("T")

#: Extra time past an attempt's timeout before the engine's safety net cuts the probe (a probe
#: bounds itself; this is for bugs). Generous, so a busy loop late to wake a probe whose own
#: deadline already fired never turns its verdict into a timeout.
SAFETY_GRACE_S = 2.0
#: The shortest attempt worth making with what is left of a check's budget.
MIN_ATTEMPT_S = 0.05
#: TLS-speaking probes hold ~0.3 MiB each: they get a lower cap than plain TCP/DNS.
DEFAULT_TLS_CONCURRENCY = 128
#: Checks judged on a latency run after everything else, this many at a time, so that the
#: engine's own load (hundreds of handshakes in one process) is not counted as server time.
LATENCY_CONCURRENCY = 4
#: Repeats of spoiled attempts run with 1/CALM_SHARE of ``concurrency`` in flight (at least
#: LATENCY_CONCURRENCY): lower than the burst that spoiled them, wide enough to stay quick.
CALM_SHARE = 8
#: Repeats of one check's attempts spoiled by the checker's own lateness, at most.
MAX_SPOILED_REPEATS = 2
#: Spoiled attempts repeated per session: this many, plus one per :data:`SPOIL_BUDGET_PER` checks
#: scheduled; past it a spoiled attempt is judged ``overloaded`` at once, so the run stays bounded.
SPOIL_BUDGET_BASE = 16
SPOIL_BUDGET_PER = 4
#: Added to :func:`stall_limit`, so that a slow machine is never taken for a stuck engine.
STALL_MARGIN_S = 10.0


def stall_limit(checks: Iterable[Check]) -> float:
    """Seconds in which an engine with checks open must finish at least one, or count as stuck.

    Every attempt is cut by the safety net (its timeout twice, plus :data:`SAFETY_GRACE_S`)
    and every check by its budget, so a working engine with checks open finishes one within
    the largest such bound; twice that plus :data:`STALL_MARGIN_S` leaves room for a busy
    machine. It catches what no per-probe bound can: the loop itself blocked (a C call that
    never returns) while its thread, or the child process, is still alive.
    """
    bound = max((c.deadline + 2 * c.timeout + SAFETY_GRACE_S for c in checks), default=0.0)
    return 2 * bound + STALL_MARGIN_S


#: A failed TLS item blocks the HTTP/CORS items above it only when the connection itself cannot work.
_TLS_BLOCKING = frozenset(
    {
        Reason.TIMEOUT,
        Reason.HANDSHAKE,
        Reason.UNTRUSTED,
        Reason.HOSTNAME,
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.REVOKED,
        Reason.UPSTREAM,
    }
)


@runtime_checkable
class Runner(Protocol):
    """What the plugin asks of a probe engine: the in-process :class:`Engine` and the forked
    :class:`~pytest_autoglm.engine.process.ProcessRunner` both are one.

    Every entry point is called from pytest's thread; results are :class:`CheckResult` records.
    """

    def schedule(self, checks: Sequence[Check]) -> None:
        """Start the given checks now (in order); ones already scheduled are left alone."""

    def result(self, check: Check) -> CheckResult:
        """Block until ``check`` has a result (scheduling it alone if nobody did); never hangs on a dead engine."""

    def when_done(self, check: Check, callback: Callable[[concurrent.futures.Future[CheckResult]], None]) -> None:
        """Call ``callback`` with the check's future once it is settled (from another thread)."""

    def alive(self) -> bool:
        """Whether the engine runs and makes progress."""

    def close(self) -> None:
        """Stop what still runs (bounded); results not yet settled are cancelled."""


class EngineStopped(RuntimeError):
    """The engine's loop thread is gone (closed, or died of a bug)."""


def blocks(lower: Check, result: CheckResult) -> bool:
    """Whether a failed lower item makes the items relying on it pointless (spec: layered dependencies)."""
    if result.outcome is not Outcome.FAILED:
        return False
    if lower.kind is Layer.DNS:
        return result.reason in NAME_DOES_NOT_RESOLVE
    if lower.kind is Layer.TCP:
        return True
    if lower.kind is Layer.TLS:
        return result.reason in _TLS_BLOCKING or result.layer in (Layer.DNS, Layer.TCP)
    if lower.kind is Layer.CORS:  # a server that echoes any Origin: the holes it implies are consequences
        return result.reason is Reason.REFLECTS_ANY_ORIGIN
    return False


class Engine:
    """Runs checks concurrently on a private event loop; thread-safe entry points for pytest."""

    def __init__(
        self,
        *,
        concurrency: int = 256,
        tls_concurrency: int = DEFAULT_TLS_CONCURRENCY,
        outside: Callable[[str], tuple[Check, concurrent.futures.Future[CheckResult]] | None] | None = None,
        stall_limit_s: float | None = None,
    ) -> None:
        """``outside`` finds checks that run elsewhere (in a :class:`ProcessRunner`), for the upstream rule;
        ``stall_limit_s`` replaces :func:`stall_limit` (for tests)."""
        self.outside = outside
        self._fixed_stall_limit = stall_limit_s
        self._stall_limit = 0.0
        self._open = 0  # scheduled checks without a result (thread-side count)
        self._last_progress = time.monotonic()
        self.concurrency = concurrency
        self.tls_concurrency = min(tls_concurrency, concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._futures: dict[str, concurrent.futures.Future[CheckResult]] = {}
        # loop-side state (touched only from the loop thread)
        self._tasks: dict[str, asyncio.Task[CheckResult]] = {}
        self._checks: dict[str, Check] = {}
        self._addresses: dict[tuple[Any, ...], asyncio.Task[tuple[tuple[str, ...], Verdict | None, int]]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._tls_slots: asyncio.Semaphore | None = None
        self._latency_slots: asyncio.Semaphore | None = None
        #: Per destination (address, port): at most ``check.per_host_concurrency`` attempts in flight,
        #: FIFO (asyncio.Semaphore wakes waiters in order), so a small server's listen queue never overflows.
        self._host_slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._busy = 0  # scheduled checks that do not measure latency and have not finished
        self._dns = DnsSession()  # answers and UDP sockets shared by the run's checks (loop side)
        self._dns_attempt = functools.partial(dispatch.dns_attempt, session=self._dns)
        self._quiet: asyncio.Event | None = None
        self._meter = LatenessMeter()
        self._calm: asyncio.Semaphore | None = None  # repeats of spoiled attempts: few at a time
        self._spoil_budget = SPOIL_BUDGET_BASE
        #: Attempts whose time-based verdict the checker's own lateness spoiled (loop side; read anywhere).
        self.spoiled_attempts = 0

    # -- thread-side API -------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._loop is not None:
                return
            ready = threading.Event()

            def run() -> None:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
                self._loop = loop
                self._slots = asyncio.Semaphore(self.concurrency)
                self._tls_slots = asyncio.Semaphore(self.tls_concurrency)
                self._latency_slots = asyncio.Semaphore(LATENCY_CONCURRENCY)
                self._quiet = asyncio.Event()
                self._quiet.set()
                self._calm = asyncio.Semaphore(max(LATENCY_CONCURRENCY, self.concurrency // CALM_SHARE))
                loop.call_soon(self._meter.start)
                ready.set()
                try:
                    loop.run_forever()
                finally:
                    self._meter.stop()
                    loop.close()

            self._thread = threading.Thread(target=run, name="autoglm-engine", daemon=True)
            self._thread.start()
            ready.wait()

    def schedule(self, checks: Iterable[Check]) -> None:
        """Start every given check now (in order); ones already scheduled are left alone."""
        self.start()
        fresh = [c for c in checks if c.id not in self._futures]
        dispatch.warm_up(fresh)
        for check in fresh:
            future: concurrent.futures.Future[CheckResult] = concurrent.futures.Future()
            future.add_done_callback(self._progress)
            self._futures[check.id] = future
        self._spoil_budget += len(fresh) // SPOIL_BUDGET_PER  # a plain int: read and written under the GIL
        if fresh:
            limit = self._fixed_stall_limit if self._fixed_stall_limit is not None else stall_limit(fresh)
            with self._lock:
                self._open += len(fresh)
                self._stall_limit = max(self._stall_limit, limit)
                self._last_progress = time.monotonic()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._create_tasks, fresh)

    def result(self, check: Check) -> CheckResult:
        """Block until ``check`` has a result (scheduling it alone if nobody did)."""
        if check.id not in self._futures:
            self.schedule([check])
        try:
            return self._wait(self._futures[check.id])
        except EngineStopped as exc:
            return CheckResult(Outcome.ERROR, check.kind, Reason.SETUP, str(exc))

    def when_done(self, check: Check, callback: Callable[[concurrent.futures.Future[CheckResult]], None]) -> None:
        """Call ``callback`` with the check's future once it is settled (in the loop's thread); a check
        nobody scheduled (an item another plugin added after collection) is scheduled now."""
        if check.id not in self._futures:
            self.schedule([check])
        self._futures[check.id].add_done_callback(callback)

    def alive(self) -> bool:
        """Whether the loop thread runs and makes progress (False before the first use, after
        close, if it died, or if it finished no check within :func:`stall_limit`)."""
        return self._thread is not None and self._thread.is_alive() and not self.stalled()

    def stalled(self) -> bool:
        """Whether checks are open and none has finished for longer than the stall limit."""
        with self._lock:
            return self._open > 0 and time.monotonic() - self._last_progress > self._stall_limit

    def _progress(self, _future: concurrent.futures.Future[CheckResult]) -> None:
        with self._lock:
            self._open -= 1
            self._last_progress = time.monotonic()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the engine's loop from synchronous code (users' own tests)."""
        self.start()
        assert self._loop is not None
        return self._wait(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _wait(self, future: concurrent.futures.Future[T]) -> T:
        """Wait for a result while the loop thread lives and makes progress: a dead or stuck engine
        must not hang the run.

        Every attempt is bounded (its timeout plus :data:`SAFETY_GRACE_S`), and so every check; this guards
        against what that bound cannot cover, the loop thread itself dying or blocking.
        """
        while True:
            if not future.done() and (self._thread is None or not self._thread.is_alive()):
                raise EngineStopped("the probe engine stopped before this check finished")  # at once, for every item
            if not future.done() and self.stalled():
                raise EngineStopped(
                    f"the probe engine finished no check for {self._stall_limit:.0f}s, so it counts as stuck; "
                    "this check did not finish"
                )
            try:
                return future.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                continue

    async def check_now(self, check: Check) -> CheckResult:
        """Run one check on the engine's loop now (users' own tests).

        A lower-layer item of the run that it relies on and that has failed still makes it
        fail with reason ``upstream``, as the generated item would.
        """
        return await self._run_check(check)

    def close(self) -> None:
        """Cancel what is still running and stop the loop thread (bounded)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        def stop() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            self._dns.close()
            loop.call_soon(loop.stop)

        loop.call_soon_threadsafe(stop)
        thread.join(timeout=5)
        for future in self._futures.values():
            if not future.done():
                future.cancel()
        self._loop = None
        self._thread = None

    # -- loop side ---------------------------------------------------------------------------------------------

    def _create_tasks(self, checks: Sequence[Check]) -> None:
        assert self._quiet is not None
        for check in checks:
            self._checks[check.id] = check
        for check in checks:
            measured = dispatch.measures_latency(check)
            if not measured:
                self._busy += 1
                self._quiet.clear()
            task = asyncio.ensure_future(self._run_measured(check) if measured else self._run_check(check))
            self._tasks[check.id] = task
            task.add_done_callback(functools.partial(self._finished, check.id, measured))

    def _finished(self, check_id: str, measured: bool, task: asyncio.Task[CheckResult]) -> None:
        if not measured:
            self._busy -= 1
            if self._busy == 0 and self._quiet is not None:
                self._quiet.set()
        self._publish(check_id, task)

    async def _run_measured(self, check: Check) -> CheckResult:
        """A latency check: wait until the other checks are done, then run with few neighbours."""
        assert self._quiet is not None and self._latency_slots is not None
        await self._quiet.wait()
        async with self._latency_slots:
            return await self._run_check(check)

    def _publish(self, check_id: str, task: asyncio.Task[CheckResult]) -> None:
        future = self._futures[check_id]
        if future.done():
            return
        if task.cancelled():
            future.cancel()
        elif task.exception() is not None:
            future.set_exception(task.exception())
        else:
            future.set_result(task.result())

    async def _run_check(self, check: Check) -> CheckResult:
        if check.kind is Layer.GROUP:  # issue 19: judged on its members' results, never blocked by them
            return await groups.judge_group(check, self._result_of)
        upstream = await self._upstream_failure(check)
        if upstream is not None:
            return upstream
        clock = _Clock()
        try:
            result = await self._execute(check, clock)
        except Exception as exc:  # a bug or a broken local setup: outcome error, never a hang
            result = CheckResult(Outcome.ERROR, check.kind, Reason.SETUP, f"{type(exc).__name__}: {exc}")
        elapsed_ms = clock.elapsed_ms()
        message, details = result.message, result.details
        if not result.passed:  # the one net under every probe: no addresses or task reprs in a report
            message, details = without_internals(message), tree_without_internals(details)
        return CheckResult(
            result.outcome,
            result.layer,
            result.reason,
            message,
            result.address,
            result.attempts,
            elapsed_ms,
            details,
            result.severity,
        )

    async def _result_of(self, check_id: str) -> CheckResult | None:
        """The result of another check of the run, here or elsewhere (None: not part of this run)."""
        task = self._tasks.get(check_id)
        if task is not None:
            return task.result() if task.done() else await asyncio.shield(task)
        elsewhere = self.outside(check_id) if self.outside is not None else None
        if elsewhere is None:
            return None
        try:
            return await asyncio.shield(asyncio.wrap_future(elsewhere[1]))
        except EngineStopped:
            return None

    async def _upstream_failure(self, check: Check) -> CheckResult | None:
        for dep_id in check.depends_on:
            task = self._tasks.get(dep_id)
            if task is not None:
                lower = self._checks[dep_id]
                result = task.result() if task.done() else await asyncio.shield(task)
            else:
                elsewhere = self.outside(dep_id) if self.outside is not None else None
                if elsewhere is None:  # not selected in this run: the item's own probe will tell
                    continue
                lower, future = elsewhere
                try:
                    result = await asyncio.shield(asyncio.wrap_future(future))  # never cancel the other's future
                except EngineStopped:
                    continue
            if blocks(lower, result):
                return CheckResult(
                    Outcome.FAILED,
                    result.layer or lower.kind,
                    Reason.UPSTREAM,
                    f"{lower.id} failed ({result.reason}): {result.message}",
                    result.address,
                    attempts=0,
                    details={"upstream": lower.id, "upstream_reason": str(result.reason)},
                )
        return None

    def _host_slot(self, check: Check, dest: tuple[str, int] | None) -> contextlib.AbstractAsyncContextManager[Any]:
        """The per-destination slot of an attempt (a no-op for DNS lookups); the first check to
        reach a destination sets its limit."""
        if dest is None:
            return contextlib.nullcontext()
        slot = self._host_slots.get(dest)
        if slot is None:
            slot = self._host_slots[dest] = asyncio.Semaphore(max(1, check.per_host_concurrency))
        return slot

    async def _guarded(
        self,
        check: Check,
        probe: Callable[[Check], Awaitable[Verdict]],
        clock: _Clock,
        dest: tuple[str, int] | None = None,
    ) -> Verdict:
        """One attempt, once a slot is free; time counts from then, never the wait for the slot.

        Two queues come first, neither counted as attempt time: the destination's own slots
        (``per_host_concurrency``), then the engine's (``concurrency``, or the TLS cap). Taking the
        destination's first keeps a busy destination's queue from holding engine slots idle.

        The check's whole budget (``check.deadline``: every attempt and backoff, the address
        lookup included) runs from its first attempt; an attempt gets ``check.timeout`` or what
        is left of the budget. Probes bound themselves by the timeout they are given; the
        engine's own bound is a safety net a little wider, so a probe bug costs that, never a hang.

        A time-based failure (``TIME_REASONS``) during which the checker itself was late by more
        than :func:`~pytest_autoglm.engine.lateness.tolerance` is *spoiled*: not a verdict. It is
        repeated (with few neighbours, its time left out of the budget) up to
        :data:`MAX_SPOILED_REPEATS` times within the session's budget, then judged ``overloaded``.
        """
        spoiled: list[float] = []
        while True:
            verdict, late, was_spoiled = await self._attempt(check, probe, clock, dest, repeat=bool(spoiled))
            if not was_spoiled:
                if spoiled:
                    verdict = _with_details(verdict, spoiled_attempts=len(spoiled))
                return verdict
            spoiled.append(late)
            self.spoiled_attempts += 1
            if len(spoiled) > MAX_SPOILED_REPEATS or self._spoil_budget <= 0:
                return _overloaded(check, verdict, spoiled)
            self._spoil_budget -= 1

    async def _attempt(
        self,
        check: Check,
        probe: Callable[[Check], Awaitable[Verdict]],
        clock: _Clock,
        dest: tuple[str, int] | None,
        *,
        repeat: bool,
    ) -> tuple[Verdict, float, bool]:
        """One attempt, how late the checker was during it (seconds), and whether that spoiled it. A repeat of a spoiled
        attempt (``calm``) also waits for one of a few calm slots: lower concurrency; its time, like
        the spoiled attempt's, is not taken from the check's budget, and it always gets the full timeout."""
        slots = self._tls_slots if dispatch.speaks_tls(check) else self._slots
        assert slots is not None and self._calm is not None
        queued = time.monotonic()
        calm_slot: contextlib.AbstractAsyncContextManager[Any] = self._calm if repeat else contextlib.nullcontext()
        async with calm_slot, self._host_slot(check, dest), slots:
            clock.start(queued_since=queued)
            left = clock.left(check.deadline)
            if left < check.timeout and not repeat:
                check = dataclasses.replace(check, timeout=max(left, MIN_ATTEMPT_S))
            began, mark = time.monotonic(), self._meter.mark()
            try:
                async with asyncio.timeout(2 * check.timeout + SAFETY_GRACE_S):
                    verdict = await probe(check)
            except TimeoutError:
                verdict = Verdict.fail(
                    check.kind, Reason.TIMEOUT, f"{check.host}: the probe overran its timeout of {check.timeout:g}s"
                )
            late = self._meter.since(mark)
            spoiled = not verdict.passed and verdict.reason in TIME_REASONS and late > tolerance(check.timeout)
            if spoiled:
                clock.exclude(time.monotonic() - began)  # a spoiled attempt does not use up the budget
            return verdict, late, spoiled

    async def _execute(self, check: Check, clock: _Clock) -> CheckResult:
        if check.kind is Layer.DNS:
            verdict, attempts = await with_retries(
                lambda: self._guarded(check, self._dns_attempt, clock),
                retries=check.retries,
                backoff=check.backoff,
                time_left=lambda: clock.left(check.deadline),
            )
            return _final(verdict, attempts)
        host = dispatch.connect_host(check)
        if host is None:  # through a proxy: connect by name
            addresses: tuple[str | None, ...] = (None,)
        else:
            found, failure, attempts = await self._resolve(check, host, clock)
            if failure is not None:
                return _final(failure, attempts)
            addresses = found

        async def one(address: str | None) -> tuple[Verdict, int]:
            dest = dispatch.destination(check, address)
            return await with_retries(
                lambda: self._guarded(check, lambda budgeted: dispatch.attempt(budgeted, address), clock, dest),
                retries=check.retries,
                backoff=check.backoff,
                time_left=lambda: clock.left(check.deadline),
            )

        if len(addresses) == 1:  # most checks: no gather, no extra task
            return _combine(addresses, [await one(addresses[0])])
        outcomes = await asyncio.gather(*(one(a) for a in addresses))
        return _combine(addresses, outcomes)

    async def _resolve(self, check: Check, host: str, clock: _Clock) -> tuple[tuple[str, ...], Verdict | None, int]:
        """The addresses to check, shared by every check of the same host and settings (one lookup)."""
        key = (host.lower(), check.resolvers, check.timeout, check.retries, check.backoff, check.ca_bundle)
        task = self._addresses.get(key)
        if task is None:

            async def resolve() -> tuple[tuple[str, ...], Verdict | None, int]:
                found: tuple[str, ...] = ()

                async def lookup(budgeted: Check) -> Verdict:
                    nonlocal found
                    found, failure = await dispatch.resolve(host, budgeted, self._dns)
                    return failure or Verdict.ok()

                async def attempt() -> Verdict:
                    verdict = await self._guarded(check, lookup, clock)
                    return (
                        verdict
                        if verdict.passed or verdict.layer is Layer.DNS
                        else Verdict.fail(Layer.DNS, Reason.TIMEOUT, verdict.message)
                    )

                verdict, attempts = await with_retries(
                    attempt, retries=check.retries, backoff=check.backoff, time_left=lambda: clock.left(check.deadline)
                )
                return found, (None if verdict.passed else verdict), attempts

            task = asyncio.ensure_future(resolve())
            self._addresses[key] = task
        return task.result() if task.done() else await asyncio.shield(task)


class _Clock:
    """When a check's first attempt got a slot: its duration excludes time queued behind others."""

    def __init__(self) -> None:
        self.started: float | None = None

    def start(self, queued_since: float | None = None) -> None:
        """Start at the first attempt's slot; a later attempt's wait for its slot is not budget time."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
        elif queued_since is not None:
            self.started += now - queued_since

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` out of the budget (an attempt the checker's own lateness spoiled)."""
        if self.started is not None:
            self.started += seconds

    def left(self, budget: float) -> float:
        """Seconds left of ``budget`` counted from the start."""
        return budget if self.started is None else budget - (time.monotonic() - self.started)

    def elapsed_ms(self) -> float:
        return 0.0 if self.started is None else (time.monotonic() - self.started) * 1000


def _with_details(verdict: Verdict, **extra: Any) -> Verdict:
    return dataclasses.replace(verdict, details={**verdict.details, **extra})


def _overloaded(check: Check, verdict: Verdict, spoiled: Sequence[float]) -> Verdict:
    """A time-based verdict the checker could not judge: ``error``/``overloaded``, never the target's fault."""
    lags = ", ".join(f"{late * 1000:.0f}ms" for late in spoiled)
    message = (
        f"{check.host}: cannot judge, this machine was too busy: the checker itself was late by {lags} "
        f"during {len(spoiled)} attempt(s) of {check.timeout:g}s (tolerance "
        f"{tolerance(check.timeout) * 1000:.0f}ms); it would have said {verdict.reason}: {verdict.message}"
    )
    details = {
        **verdict.details,
        "spoiled_attempts": len(spoiled),
        "lag_ms": [round(late * 1000, 1) for late in spoiled],
        "would_be": str(verdict.reason),
    }
    return Verdict.fail(verdict.layer or check.kind, Reason.OVERLOADED, message, details=details, transient=False)


def _final(verdict: Verdict, attempts: int) -> CheckResult:
    if verdict.passed:
        return CheckResult(Outcome.PASSED, None, None, verdict.message, verdict.address, attempts, 0.0, verdict.details)
    message = verdict.message + (f" ({attempts} attempts)" if attempts > 1 else "")
    outcome = Outcome.ERROR if verdict.reason in ERROR_REASONS else Outcome.FAILED
    return CheckResult(
        outcome,
        verdict.layer,
        verdict.reason,
        message,
        verdict.address,
        attempts,
        0.0,
        verdict.details,
        verdict.severity,
    )


def _combine(addresses: Sequence[str | None], outcomes: Sequence[tuple[Verdict, int]]) -> CheckResult:
    """An expectation holds only if it holds on every address; the first address that broke it is named.

    With several addresses, ``details`` are those of the address named (the first failing one, else
    the first) plus ``addresses``: each address's outcome and reason, in one shape either way.
    """
    named = next((i for i, (v, _) in enumerate(outcomes) if not v.passed), 0)
    verdict, attempts = outcomes[named]
    address = addresses[named]
    result = _final(verdict, attempts if not verdict.passed else max(n for _, n in outcomes))
    details = dict(result.details)
    if len(addresses) > 1:
        details["addresses"] = {
            str(a): {"outcome": "passed" if v.passed else "failed", "reason": None if v.passed else str(v.reason)}
            for a, (v, _) in zip(addresses, outcomes, strict=True)
        }
    return CheckResult(
        result.outcome,
        result.layer,
        result.reason,
        result.message,
        result.address or address,
        result.attempts,
        0.0,
        details,
        result.severity,
    )
