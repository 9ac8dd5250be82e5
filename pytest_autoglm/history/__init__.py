"""Run history, alerting and metrics for nightly checks (issue 16). No pytest in here.

The report sink calls, at session end, per environment::

    store = open_store(path_or_url, keep=timedelta(days=90))       # HistoryUnavailable -> one warning line
    history = record_run(store, RunRecord(...), [CheckRecord.from_result(r) for r in results], policies)
    document["run"] = history.run_json(); document["changes"] = history.changes.as_json()
    result["history"] = history.history_json(result["id"])
    notify_transitions(store, history, policies, report_path=..., redact=redactor)   # NotifyFailed
    write_openmetrics(report_dir / f"{env}.prom", env, results)

See docs/history.md.
"""

from __future__ import annotations

from pytest_autoglm.history.errors import HistoryUnavailable, NotifyFailed, PushFailed
from pytest_autoglm.history.models import (
    AlertPolicy,
    Changes,
    CheckHistory,
    CheckRecord,
    FactChange,
    Notification,
    RunHistory,
    RunRecord,
    inventory_digest,
    key_facts,
    letter_of,
)
from pytest_autoglm.history.notify import notify_transitions, unknown_notify_schemes
from pytest_autoglm.history.openmetrics import push_to_gateway, render_openmetrics, write_openmetrics
from pytest_autoglm.history.recorder import keep_from_text, record_run
from pytest_autoglm.history.store import SCHEMA_VERSION, HistoryStore, open_store
from pytest_autoglm.history.trend import load_trend, render_trend, write_trend

__all__ = [
    "SCHEMA_VERSION",
    "AlertPolicy",
    "Changes",
    "CheckHistory",
    "CheckRecord",
    "FactChange",
    "HistoryStore",
    "HistoryUnavailable",
    "Notification",
    "NotifyFailed",
    "PushFailed",
    "RunHistory",
    "RunRecord",
    "inventory_digest",
    "keep_from_text",
    "key_facts",
    "letter_of",
    "load_trend",
    "notify_transitions",
    "open_store",
    "push_to_gateway",
    "record_run",
    "render_openmetrics",
    "render_trend",
    "unknown_notify_schemes",
    "write_openmetrics",
    "write_trend",
]
