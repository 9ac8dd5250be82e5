"""Run history, alerting and metrics for nightly checks (issue 16). No pytest in here.

The report sink calls, at session end, per environment::

    store = open_store(path_or_url, keep=timedelta(days=90))       # HistoryUnavailable -> one warning line
    history = record_run(store, RunRecord(...), [CheckRecord.from_result(r) for r in results], policies)
    document["run"] = history.run_json(); document["changes"] = history.changes.as_json()
    result["history"] = history.history_json(result["id"])
    notify_transitions(store, history, policies, report_path=..., redact=redactor)   # NotifyFailed
    write_openmetrics(report_dir / f"{env}.prom", env, results)

See docs/history.md. Each name is imported on first use (a module ``__getattr__``): the
report sink writes the metrics file of a run without history, which must not import sqlite3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives.
_LAZY = {
    "AlertPolicy": "pytest_autoglm.history.models",
    "Changes": "pytest_autoglm.history.models",
    "CheckHistory": "pytest_autoglm.history.models",
    "CheckRecord": "pytest_autoglm.history.models",
    "FactChange": "pytest_autoglm.history.models",
    "HistoryStore": "pytest_autoglm.history.store",
    "HistoryUnavailable": "pytest_autoglm.history.errors",
    "Notification": "pytest_autoglm.history.models",
    "NotifyFailed": "pytest_autoglm.history.errors",
    "PushFailed": "pytest_autoglm.history.errors",
    "RunHistory": "pytest_autoglm.history.models",
    "RunRecord": "pytest_autoglm.history.models",
    "SCHEMA_VERSION": "pytest_autoglm.history.store",
    "inventory_digest": "pytest_autoglm.history.models",
    "keep_from_text": "pytest_autoglm.history.recorder",
    "key_facts": "pytest_autoglm.history.models",
    "letter_of": "pytest_autoglm.history.models",
    "load_trend": "pytest_autoglm.history.trend",
    "notify_transitions": "pytest_autoglm.history.notify",
    "open_store": "pytest_autoglm.history.store",
    "push_to_gateway": "pytest_autoglm.history.openmetrics",
    "record_run": "pytest_autoglm.history.recorder",
    "render_openmetrics": "pytest_autoglm.history.openmetrics",
    "render_trend": "pytest_autoglm.history.trend",
    "unknown_notify_schemes": "pytest_autoglm.history.notify",
    "write_openmetrics": "pytest_autoglm.history.openmetrics",
    "write_trend": "pytest_autoglm.history.trend",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
