"""History at session end, on the controller: record each environment's run, metrics, push, notify.

The report sink calls :class:`RunHistoryWriter` once per environment (docs/history.md). Whatever
the store, a notifier or the Pushgateway does wrong becomes one warning line (``warnings``):
the run's own reports are written all the same, and the exit code changes only with
``--autoglm-history-required``. History is imported here lazily, and not at all for the store
when ``--autoglm-history none`` (the metrics file needs only ``history.openmetrics``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pytest_autoglm.history import AlertPolicy, HistoryStore, RunHistory
    from pytest_autoglm.inventory.models import Target
    from pytest_autoglm.inventory.validate import LoadedInventory
    from pytest_autoglm.plugin.options import Options
    from pytest_autoglm.reporting.records import ChangesEntry, HistoryEntry, ReportDocument, RunIds


def unknown_notify_schemes(urls: Sequence[str]) -> Sequence[str]:
    """The inventory loader's check of ``alerting.notify`` schemes; imports Apprise only when there are URLs."""
    from pytest_autoglm.history.notify import unknown_notify_schemes as unknown

    return unknown(urls)


def alert_policies(loaded: LoadedInventory, check_targets: Mapping[str, str]) -> dict[str, AlertPolicy]:
    """Check id -> its target's ``alerting`` (target keys over ``defaults`` keys over the built-in ones)."""
    from datetime import timedelta

    from pytest_autoglm.history import AlertPolicy

    def policy(target: Target) -> AlertPolicy:
        block = loaded.model.resolved_alerting(target)
        remind = None if block.remind_every is None else timedelta(seconds=block.remind_every)
        return AlertPolicy(block.after, block.resolve_after, remind, tuple(block.notify))

    shared: AlertPolicy | None = None  # the defaults' policy, for every target without an alerting block
    by_target: dict[str, AlertPolicy] = {}
    for target in loaded.model.targets:
        if target.alerting is None:
            shared = shared or policy(target)
            by_target[target.name] = shared
        else:
            by_target[target.name] = policy(target)
    return {check_id: by_target[name] for check_id, name in check_targets.items() if name in by_target}


def shown_path(path: Path) -> str:
    """A path as messages show it: relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def store_display(url: str) -> str:
    """A URL as messages and the header show it: its password masked."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@dataclass
class Recorded:
    """What one environment's history write produced, for the terminal line."""

    environment: str
    run_id: int
    changes: int
    notified: int = 0


@dataclass
class RunHistoryWriter:
    """One per session: opens the store on first use, records each environment, collects warnings."""

    options: Options
    started: datetime
    warnings: list[str] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)
    store_name: str = ""
    _policies: dict[str, dict[str, AlertPolicy]] = field(default_factory=dict)  # per environment, from record
    _store: HistoryStore | None = None
    _store_failed: bool = False

    @property
    def failed(self) -> bool:
        """A fault happened: with ``--autoglm-history-required`` the run fails."""
        return bool(self.warnings)

    def _warn(self, exc: BaseException, what: str) -> None:
        from pytest_autoglm.history import HistoryUnavailable

        if isinstance(exc, HistoryUnavailable):
            self.warnings.append(str(exc))
        else:  # a bug or an OS error outside the store's own translation: still one line, still the run's reports
            text = " ".join(str(exc).split()) or type(exc).__name__
            self.warnings.append(f"{what}: {type(exc).__name__}: {text}; rerun with --autoglm-history none to skip it")

    def _open(self) -> HistoryStore | None:
        if self._store is not None or self._store_failed or self.options.history is None:
            return self._store
        from pytest_autoglm.history import open_store

        target = self.options.history
        try:
            if "://" not in target:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._store = open_store(
                target if "://" in target else shown_path(Path(target)), keep=self.options.history_keep
            )
            self.store_name = self._store.name
        except Exception as exc:
            self._store_failed = True
            self._warn(exc, f"history store {target}")
        return self._store

    def record(
        self,
        document: ReportDocument,
        *,
        inventory: LoadedInventory | None,
        check_targets: Mapping[str, str],
    ) -> RunHistory | None:
        """Record the run of ``document``'s environment and add ``history``, ``run`` and ``changes`` to it."""
        store = self._open()
        if store is None:
            return None
        from pytest_autoglm.history import CheckRecord, RunRecord, inventory_digest, record_run

        results = document["results"]
        try:
            policies = alert_policies(inventory, check_targets) if inventory is not None else {}
            digest = inventory_digest(inventory.path) if inventory is not None and inventory.path.is_file() else ""
            selection = document["selection"]
            run = RunRecord(
                document["environment"],
                self.started,
                datetime.now(UTC),
                inventory_digest=digest,
                partial=bool(selection.get("partial")),
                selection=dict(selection),
            )
            history = record_run(store, run, [CheckRecord.from_result(r) for r in results], policies)
        except Exception as exc:
            self._warn(exc, f"history store {store.name}")
            return None
        for result in results:
            entry = history.history_json(result["id"])
            if entry is not None:
                result["history"] = cast("HistoryEntry", entry)
        document["run"] = cast("RunIds", history.run_json())
        document["changes"] = cast("ChangesEntry", history.changes.as_json())
        changes = history.changes
        count = len(changes.new_failures) + len(changes.fixed) + len(changes.facts)
        self.recorded.append(Recorded(document["environment"], history.run_id, count))
        self._policies[document["environment"]] = policies
        return history

    def notify(
        self,
        history: RunHistory,
        *,
        inventory: LoadedInventory | None,
        check_targets: Mapping[str, str],
        report_path: Path,
        redact: Callable[[str], str],
    ) -> None:
        """Send the notifications this run's state changes call for (after the reports exist)."""
        store = self._store
        if store is None or inventory is None:
            return
        policies = self._policies.get(history.environment)
        if policies is None:
            policies = alert_policies(inventory, check_targets)
        if not any(p.notify for p in policies.values()):
            return
        from pytest_autoglm.history import NotifyFailed, notify_transitions

        sent: Sequence[Any]
        try:
            sent = notify_transitions(store, history, policies, report_path=shown_path(report_path), redact=redact)
        except NotifyFailed as exc:
            sent = [n for n in exc.notifications if n.sent]
            self._warn(exc, "notify")
        except Exception as exc:
            sent = []
            self._warn(exc, f"notify (history store {store.name})")
        for recorded in self.recorded:
            if recorded.run_id == history.run_id and recorded.environment == history.environment:
                recorded.notified += len(sent)

    def metrics(self, document: ReportDocument, path: Path) -> None:
        """``<env>.prom`` beside the reports, and the push when ``--autoglm-pushgateway`` names one."""
        from pytest_autoglm.history.openmetrics import push_to_gateway, write_openmetrics

        environment = document["environment"]
        try:
            text = write_openmetrics(path, environment, document["results"])
        except Exception as exc:
            self._warn(exc, f"metrics file {shown_path(path)}")
            return
        if self.options.pushgateway:
            try:
                push_to_gateway(self.options.pushgateway, text, "autoglm", grouping={"env": environment})
            except Exception as exc:
                self._warn(exc, f"pushgateway {store_display(self.options.pushgateway)}")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def summary_line(self) -> str | None:
        """One line: what changed since the last run and how many notifications went out."""
        if not self.recorded:
            return None
        changes = sum(r.changes for r in self.recorded)
        notified = sum(r.notified for r in self.recorded)
        runs = ", ".join(f"{r.environment} run {r.run_id}" for r in self.recorded)
        where = self.store_name or str(self.options.history)
        return (
            f"autoglm history: {changes} change{'s' if changes != 1 else ''} since the last run, "
            f"{notified} notification{'s' if notified != 1 else ''} sent ({runs}; store {where})"
        )
