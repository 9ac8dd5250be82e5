"""Routing checks by vantage (issue 17): one :class:`~pytest_autoglm.engine.runner.Runner` in front of many.

The local runner (the in-process engine or the forked :class:`~pytest_autoglm.engine.process.ProcessRunner`)
gets the checks of the vantage ``local`` (and those without a vantage); each remote vantage's
:class:`~pytest_autoglm.engine.vantage.GatewayRunner` gets its own. Local checks are scheduled
first: the process runner forks only while no other thread runs, and opening a gateway starts
execnet's threads. A check depends only on checks of its own vantage, so each runner settles
its dependencies by itself.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Outcome, Reason
from pytest_autoglm.engine.runner import Runner
from pytest_autoglm.engine.vantage import CLOSE_TIMEOUT_S, GatewayRunner
from pytest_autoglm.inventory.plan import LOCAL_VANTAGE, Check


class VantageRouter:
    """Sends each check to the runner of its vantage; a :class:`Runner` itself."""

    def __init__(self, local: Runner, remotes: Mapping[str, GatewayRunner]) -> None:
        self.local = local
        self.remotes = dict(remotes)
        self._used: list[Runner] = []  # runners given checks (an unused engine does not count as alive)
        self._nowhere: dict[str, concurrent.futures.Future[CheckResult]] = {}

    def runner_for(self, check: Check) -> Runner | None:
        """The runner of the check's vantage (None: a vantage this run has no spec for)."""
        if check.vantage is None or check.vantage == LOCAL_VANTAGE:
            return self.local
        return self.remotes.get(check.vantage)

    def schedule(self, checks: Sequence[Check]) -> None:
        """Local checks first (see the module docstring), then each vantage's, in the vantages' order."""
        by_runner: dict[int, list[Check]] = {}
        runners: dict[int, Runner] = {id(self.local): self.local}
        by_runner[id(self.local)] = []
        for remote in self.remotes.values():
            runners[id(remote)] = remote
            by_runner[id(remote)] = []
        for check in checks:
            runner = self.runner_for(check)
            if runner is None:
                self._unknown(check)
            else:
                by_runner[id(runner)].append(check)
        for key, mine in by_runner.items():
            if mine:
                runner = runners[key]
                if runner not in self._used:
                    self._used.append(runner)
                runner.schedule(mine)

    def result(self, check: Check) -> CheckResult:
        runner = self.runner_for(check)
        if runner is None:
            return self._unknown(check).result()
        if runner not in self._used:
            self._used.append(runner)
        return runner.result(check)

    def when_done(self, check: Check, callback: Callable[[concurrent.futures.Future[CheckResult]], None]) -> None:
        runner = self.runner_for(check)
        if runner is None:
            self._unknown(check).add_done_callback(callback)
            return
        if runner not in self._used:
            self._used.append(runner)
        runner.when_done(check, callback)

    def alive(self) -> bool:
        """Whether every runner that was given checks still runs (an engine is not alive before its first use)."""
        return all(runner.alive() for runner in self._used)

    def close(self) -> None:
        """Close every gateway, then the local runner."""
        self.close_remotes()
        self.local.close()

    def close_remotes(self) -> None:
        """Close every gateway at once, each bounded by its own timeout (idempotent)."""
        closers = [
            threading.Thread(target=remote.close, name=f"autoglm-close-{name}", daemon=True)
            for name, remote in self.remotes.items()
        ]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(timeout=4 * CLOSE_TIMEOUT_S + 2)  # each: its own terminate, then its driver's

    def unreachable(self) -> dict[str, str]:
        """Each remote vantage that could not run its checks, and why."""
        return {name: remote.failure for name, remote in self.remotes.items() if remote.failure}

    def _unknown(self, check: Check) -> concurrent.futures.Future[CheckResult]:
        future = self._nowhere.get(check.id)
        if future is None:
            future = self._nowhere[check.id] = concurrent.futures.Future()
            future.set_result(
                CheckResult(
                    Outcome.ERROR,
                    None,
                    Reason.VANTAGE_UNREACHABLE,
                    f"this run has no gateway spec for vantage {check.vantage!r} (--autoglm-vantage NAME=SPEC)",
                    attempts=0,
                )
            )
        return future
