"""Gathers result facts per environment on the controller and writes the reports at the end."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_autoglm.plugin.outcomes import REPORT_ATTR
from pytest_autoglm.plugin.state import RunState, get_state, is_xdist_worker
from pytest_autoglm.reporting.html_report import (
    register_pytest_html_columns,
    unregister_pytest_html_columns,
    write_html,
)
from pytest_autoglm.reporting.json_report import build_document, write_json
from pytest_autoglm.reporting.terminal import write_summary

sink_key = pytest.StashKey["ResultSink"]()


class ResultSink:
    """Plugin object (registered on the controller only, as junitxml's LogXML is)."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.started = time.monotonic()
        self.results: dict[str, dict[str, dict[str, Any]]] = {}
        self.written: list[Path] = []
        self.documents: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        facts = getattr(report, REPORT_ATTR, None)
        if not isinstance(facts, dict):
            return
        if report.skipped and getattr(report, "wasxfail", None) is not None:
            facts = {**facts, "xfailed": True}  # a user's xfail mark: a known failure, which pytest does not count
        per_env = self.results.setdefault(facts["environment"], {})
        if report.when == "call" or facts["id"] not in per_env:
            per_env[facts["id"]] = facts

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if session.config.option.collectonly:
            return
        partial = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop) or bool(session.shouldfail)
        duration = time.monotonic() - self.started
        report_dir = self.state.options.report_dir
        for loaded in self.state.loaded:
            facts = list(self.results.get(loaded.environment, {}).values())
            if not facts and (exitstatus == pytest.ExitCode.INTERRUPTED or session.testscollected == 0):
                continue  # a collection error or an interrupt before anything ran: no report to speak of
            document = build_document(
                environment=loaded.environment,
                inventory=loaded.display,
                started_at=self.started_at,
                duration_s=duration,
                results=facts,
                partial=partial,
            )
            path = report_dir / f"{loaded.environment}.json"
            write_json(path, document)
            self.written.append(path)
            self.documents.append(document)
            html_path = report_dir / f"{loaded.environment}.html"  # rendered from the same document as the JSON
            write_html(html_path, document)
            self.written.append(html_path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write_summary(terminalreporter, self.documents)
        for path in self.written:
            terminalreporter.write_line(f"autoglm report: {path}")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    state = get_state(config)
    if state is None or not state.slots or is_xdist_worker(config):
        return
    sink = ResultSink(state)
    config.stash[sink_key] = sink
    config.pluginmanager.register(sink, "autoglm-sink")
    register_pytest_html_columns(config)  # Layer/Reason columns in pytest-html's --html, when it is loaded


def pytest_unconfigure(config: pytest.Config) -> None:
    sink = config.stash.get(sink_key, None)
    if sink is not None:
        del config.stash[sink_key]
        config.pluginmanager.unregister(sink)
        unregister_pytest_html_columns(config)
