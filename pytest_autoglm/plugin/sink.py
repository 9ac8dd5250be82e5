"""Gathers result facts per environment on the controller and writes the reports at the end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_autoglm.plugin.state import get_state, is_xdist_worker
from pytest_autoglm.reporting.html_report import (
    register_pytest_html_columns,
    unregister_pytest_html_columns,
    write_html,
)
from pytest_autoglm.reporting.json_report import build_document, write_json
from pytest_autoglm.reporting.records import REPORT_ATTR, ReportDocument, ResultFacts
from pytest_autoglm.reporting.selection import item_name, names_of, narrowing_of, selection_of, stopped_early
from pytest_autoglm.reporting.terminal import write_summary

if TYPE_CHECKING:
    from pytest_autoglm.inventory.validate import LoadedInventory
    from pytest_autoglm.plugin.history import RunHistoryWriter
    from pytest_autoglm.plugin.options import Options

sink_key = pytest.StashKey["ResultSink"]()


@dataclass(frozen=True)
class PlannedReport:
    """One report to write: an environment, its inventory as shown, and the ids of its planned checks."""

    environment: str
    inventory: str
    planned: tuple[str, ...]
    loaded: LoadedInventory | None = None  # for history: alerting, secrets, the inventory's digest
    targets: tuple[str, ...] = ()  # the target of each planned check, in the same order


class ResultSink:
    """Plugin object (registered on the controller only, as junitxml's LogXML is).

    It knows the run only through ``report_dir`` and the planned reports, not the plugin's state.
    """

    def __init__(self, report_dir: Path, reports: Sequence[PlannedReport], options: Options | None = None) -> None:
        self.report_dir = report_dir
        self.reports = list(reports)
        self.started_on = datetime.now(UTC)
        self.started_at = self.started_on.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.options = options
        self.history: RunHistoryWriter | None = None
        self.started = time.monotonic()
        self.results: dict[str, dict[str, ResultFacts]] = {}
        self.selected: set[str] | None = None  # item names selected to run; None: not known (yet)
        self.reported: set[str] = set()  # item names pytest reported on (any phase)
        self.written: list[Path] = []
        self.documents: list[ReportDocument] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """What is left after every deselection (-k, -m, --lf, --sw, --deselect, node ids, plugins)."""
        self.selected = {item.name for item in session.items}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        """On an xdist controller, which collects nothing itself: a worker's selected ids (all workers
        collect the same items)."""
        if self.selected is None:
            self.selected = names_of(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reported.add(item_name(report.nodeid))
        facts = getattr(report, REPORT_ATTR, None)
        if not isinstance(facts, dict):
            return
        typed = cast(ResultFacts, facts)  # built by plugin/outcomes.py as a ResultFacts, then serialized
        if report.skipped and getattr(report, "wasxfail", None) is not None:
            typed = {**typed, "xfailed": True}  # a user's xfail mark: a known failure, which pytest does not count
        per_env = self.results.setdefault(typed["environment"], {})
        if report.when == "call" or typed["id"] not in per_env:
            per_env[typed["id"]] = typed

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if session.config.option.collectonly:
            return
        stopped = stopped_early(session, exitstatus)
        narrowing = narrowing_of(session.config)
        duration = time.monotonic() - self.started
        if self.options is not None:
            from pytest_autoglm.plugin.history import RunHistoryWriter

            self.history = RunHistoryWriter(self.options, self.started_on)
        try:
            self._write_reports(session, exitstatus, stopped, narrowing, duration)
        finally:
            if self.history is not None:
                self.history.close()
        if self.history is not None and self.history.failed and self.options and self.options.history_required:
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED  # --autoglm-history-required

    def _write_reports(
        self, session: pytest.Session, exitstatus: int, stopped: bool, narrowing: Any, duration: float
    ) -> None:
        for planned in self.reports:
            facts = list(self.results.get(planned.environment, {}).values())
            if not facts and (exitstatus == pytest.ExitCode.INTERRUPTED or session.testscollected == 0):
                continue  # a collection error or an interrupt before anything ran: no report to speak of
            selection = selection_of(
                planned=planned.planned,
                selected=self.selected,
                reported=self.reported,
                narrowing=narrowing,
                stopped=stopped,
            )
            document = build_document(
                environment=planned.environment,
                inventory=planned.inventory,
                started_at=self.started_at,
                duration_s=duration,
                results=facts,
                selection=selection,
            )
            check_targets = dict(zip(planned.planned, planned.targets, strict=False))
            history = (
                self.history.record(document, inventory=planned.loaded, check_targets=check_targets)
                if self.history is not None
                else None
            )
            path = self.report_dir / f"{planned.environment}.json"
            write_json(path, document)
            self.written.append(path)
            self.documents.append(document)
            html_path = self.report_dir / f"{planned.environment}.html"  # rendered from the same document as the JSON
            write_html(html_path, document)
            self.written.append(html_path)
            if self.history is not None:
                self.history.metrics(document, self.report_dir / f"{planned.environment}.prom")
                if history is not None:
                    self.history.notify(
                        history,
                        inventory=planned.loaded,
                        check_targets=check_targets,
                        report_path=html_path,
                        redact=planned.loaded.redactor if planned.loaded is not None else str,
                    )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        write_summary(terminalreporter, self.documents)
        for path in self.written:
            terminalreporter.write_line(f"autoglm report: {path}")
        if self.history is not None:
            line = self.history.summary_line()
            if line:
                terminalreporter.write_line(line)
            for warning in self.history.warnings:
                terminalreporter.write_line(f"autoglm history warning: {warning}", yellow=True, bold=True)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    state = get_state(config)
    if state is None or not state.slots or is_xdist_worker(config):
        return
    reports = [
        PlannedReport(
            slot.loaded.environment,
            slot.loaded.display,
            tuple(check.id for check in slot.checks),
            slot.loaded,
            tuple(check.target for check in slot.checks),
        )
        for slot in state.slots
        if slot.loaded is not None
    ]
    sink = ResultSink(state.options.report_dir, reports, state.options)
    config.stash[sink_key] = sink
    config.pluginmanager.register(sink, "autoglm-sink")
    register_pytest_html_columns(config)  # Layer/Reason columns in pytest-html's --html, when it is loaded


def pytest_unconfigure(config: pytest.Config) -> None:
    sink = config.stash.get(sink_key, None)
    if sink is not None:
        del config.stash[sink_key]
        config.pluginmanager.unregister(sink)
        unregister_pytest_html_columns(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where the run's history goes (docs/history.md), beside the autoglm line of plugin/configure.py."""
    state = get_state(config)
    if state is None or not state.slots or is_xdist_worker(config):
        return []
    opts = state.options
    if opts.history is None:
        line = "autoglm: history off (--autoglm-history none)"
    else:
        from pytest_autoglm.plugin.history import shown_path, store_display

        store = store_display(opts.history) if "://" in opts.history else shown_path(Path(opts.history))
        days = opts.history_keep.total_seconds() / 86400
        keep = f"{days:g}d" if days >= 1 else f"{opts.history_keep.total_seconds() / 3600:g}h"
        line = f"autoglm: history {store} (keep {keep}{', required' if opts.history_required else ''})"
    if opts.pushgateway:
        from pytest_autoglm.plugin.history import store_display

        line += f", pushgateway {store_display(opts.pushgateway)}"
    return [line]
