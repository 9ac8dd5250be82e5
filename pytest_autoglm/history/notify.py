"""Notifications on state changes, sent with Apprise, never twice for one change.

A notification is *claimed* in the store before it is sent: a row with a unique key
(environment, vantage, check, kind, episode, seq) inserted in one transaction. Of two runs
that reach the same change, only the one whose insert succeeded sends. A send that fails is
marked ``failed`` and retried by the next call (claimed again by a conditional update) while
it is still true: a firing message while the same episode still fires, a resolved one until
the check fails again. Reminders of a check still firing are numbered by how many
``remind_every`` periods passed since it fired, so each period gets at most one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pytest_autoglm.history.errors import NotifyFailed
from pytest_autoglm.history.models import (
    DEFAULT_POLICY,
    AlertPolicy,
    CheckHistory,
    Notification,
    RunHistory,
    iso,
    parse_iso,
    utc,
)
from pytest_autoglm.history.store import HistoryStore

#: Seconds Apprise may spend on one notification (all its URLs).
SEND_TIMEOUT = 30.0


@functools.cache
def _apprise() -> Any:
    """The apprise module with its plugins loaded, on first use (it has ~180).

    Loading them here, once, keeps their DeprecationWarning (``imghdr``, Python 3.11/3.12) out of
    the user's pytest summary.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise().details()
    return apprise


@functools.cache
def known_schemes() -> frozenset[str]:
    """Every URL scheme the installed Apprise can send to."""
    apprise = _apprise()
    schemes: set[str] = set()
    for entry in apprise.Apprise().details()["schemas"]:
        for key in ("protocols", "secure_protocols"):
            found = entry.get(key) or ()
            schemes.update([found] if isinstance(found, str) else found)
    return frozenset(s.lower() for s in schemes)


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].strip().lower() if "://" in url else ""


def unknown_notify_schemes(urls: Sequence[str]) -> list[str]:
    """The schemes among ``urls`` that Apprise does not know (in order, once each), for an inventory error.

    A URL without ``scheme://`` yields its text up to the first ``:`` or the whole (short) text.
    Schemes whose Apprise plugin is disabled (an optional package missing) count as unknown:
    they could not send either.
    """
    known = known_schemes()
    out: list[str] = []
    for url in urls:
        scheme = scheme_of(url) or url.split(":", 1)[0][:40]
        if scheme not in known and scheme not in out:
            out.append(scheme)
    return out


def _message(
    history: RunHistory, check_id: str, check: CheckHistory, kind: str, report_path: str, now: datetime
) -> tuple[str, str]:
    env = history.environment
    where = env if history.vantage == "local" else f"{env} (vantage {history.vantage})"
    since = check.episode_started or "unknown"
    if kind == "resolved":
        title = f"[autoglm] RESOLVED {where}: {check_id}"
        lines = [
            f"environment: {where}",
            f"check: {check_id}",
            f"resolved: passing again at {history.started_at} ({check.recent[-10:]} most recent last)",
            f"was failing since: {since}",
        ]
    else:
        label = "FIRING" if kind == "firing" else "STILL FIRING (reminder)"
        title = f"[autoglm] {label} {where}: {check_id}"
        lines = [
            f"environment: {where}",
            f"check: {check_id}",
            f"layer/reason: {check.layer or '-'}/{check.reason or '-'}",
            f"message: {check.message}",
            f"failing since: {since} ({check.consecutive_failures} failing runs in a row)",
        ]
        if check.flapping:
            lines.append("flapping: it switched between passing and failing often lately")
    lines.append(f"report: {report_path}")
    lines.append(f"run: {history.run_id} at {history.started_at}; sent {iso(now)}")
    return title, "\n".join(lines)


def _candidates(
    history: RunHistory,
    policies: Mapping[str, AlertPolicy],
    default_policy: AlertPolicy,
    report_path: str,
    redact: Callable[[str], str],
    now: datetime,
) -> list[Notification]:
    out: list[Notification] = []
    for check_id, check in history.checks.items():
        policy = policies.get(check_id, default_policy)
        if not policy.notify:
            continue
        kind: str | None = check.transition
        seq = 0
        if kind is None and check.state == "firing" and check.fired_at and policy.remind_every:
            seq = int((now - parse_iso(check.fired_at)) / policy.remind_every)
            kind = "reminder" if seq >= 1 else None
        if kind is None:
            continue
        title, body = _message(history, check_id, check, kind, report_path, now)
        out.append(
            Notification(
                history.environment,
                history.vantage,
                check_id,
                kind,  # type: ignore[arg-type]
                check.episode,
                seq,
                redact(title),
                redact(body),
                policy.notify,
            )
        )
    return out


def _claim(
    store: HistoryStore,
    history: RunHistory,
    candidates: list[Notification],
    policies: Mapping[str, AlertPolicy],
    default_policy: AlertPolicy,
    now: datetime,
) -> list[tuple[int, Notification]]:
    """Claim new notifications and failed ones to retry; return the ones this call owns, with row ids."""
    at = iso(now)
    owned: list[tuple[int, Notification]] = []
    with store.transaction(f"notify:{history.environment}:{history.vantage}") as tx:
        failed = tx.rows(
            "SELECT id, check_id, kind, episode, seq, title, body FROM notifications WHERE environment = ?"
            " AND vantage = ? AND status = 'failed' ORDER BY id",
            (history.environment, history.vantage),
        )
        for row_id, check_id, kind, episode, seq, title, body in failed:
            check = history.checks.get(check_id)
            urls = policies.get(check_id, default_policy).notify
            if check is None or check.episode != episode or not urls or not _still_true(kind, check):
                continue  # not judged in this run, or the news is stale: a newer message tells the story
            if tx.execute(
                "UPDATE notifications SET status = 'claimed', updated_at = ? WHERE id = ? AND status = 'failed'",
                (at, row_id),
            ):
                owned.append(
                    (
                        int(row_id),
                        Notification(
                            history.environment, history.vantage, check_id, kind, episode, seq, title, body, urls
                        ),
                    )
                )
        retried = {(n.check_id, n.episode) for _, n in owned}
        for n in candidates:
            if n.kind == "reminder" and (n.check_id, n.episode) in retried:
                continue  # the firing message going out now is reminder enough
            inserted = tx.execute(
                "INSERT INTO notifications (environment, vantage, check_id, kind, episode, seq, status, title, body,"
                " run_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'claimed', ?, ?, ?, ?, ?)"
                " ON CONFLICT (environment, vantage, check_id, kind, episode, seq) DO NOTHING",
                (
                    n.environment,
                    n.vantage,
                    n.check_id,
                    n.kind,
                    n.episode,
                    n.seq,
                    n.title,
                    n.body,
                    history.run_id,
                    at,
                    at,
                ),
            )
            if inserted == 1:
                row = tx.rows(
                    "SELECT id FROM notifications WHERE environment = ? AND vantage = ? AND check_id = ? AND kind = ?"
                    " AND episode = ? AND seq = ?",
                    (n.environment, n.vantage, n.check_id, n.kind, n.episode, n.seq),
                )
                owned.append((int(row[0][0]), n))
    return owned


def _still_true(kind: str, check: CheckHistory) -> bool:
    """Whether a failed notification of this kind still describes the check (worth retrying)."""
    return check.state == "firing" if kind in ("firing", "reminder") else check.state in ("resolved", "ok")


def send_apprise(notification: Notification) -> str | None:
    """Send one notification to all its URLs; None when every one took it, else why not (no URL in it)."""
    apprise = _apprise()

    sender = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory", secure_logging=True))
    bad = [scheme_of(u) or "?" for u in notification.urls if not sender.add(u)]
    if bad:
        return f"not a valid Apprise URL ({', '.join(bad)})"
    result: Any = sender.notify(body=notification.body, title=notification.title, timeout=SEND_TIMEOUT)
    if result:
        return None
    schemes = sorted({scheme_of(u) for u in notification.urls})
    return f"{', '.join(schemes)} did not take it"


def notify_transitions(
    store: HistoryStore,
    history: RunHistory,
    policies: Mapping[str, AlertPolicy] | None = None,
    *,
    report_path: str,
    redact: Callable[[str], str] = lambda text: text,
    default_policy: AlertPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
    send: Callable[[Notification], str | None] = send_apprise,
) -> list[Notification]:
    """Send the notifications this run's state changes call for; return them (sent or not).

    ``redact`` masks secrets in every text that leaves (title, body, error). Raises
    ``NotifyFailed`` (a ``HistoryUnavailable``) after trying them all when any was not
    delivered; it will be retried by the next call.
    """
    policies = policies or {}
    now = utc(now or datetime.now(UTC))
    candidates = _candidates(history, policies, default_policy, report_path, redact, now)
    owned = _claim(store, history, candidates, policies, default_policy, now)
    done: list[tuple[int, Notification]] = []
    for row_id, n in owned:
        try:
            error = send(n)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        done.append((row_id, n.with_result(error is None, None if error is None else redact(error))))
    if done:
        at = iso(now)
        with store.transaction(f"notify:{history.environment}:{history.vantage}") as tx:
            tx.executemany(
                "UPDATE notifications SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                [("sent" if n.sent else "failed", n.error, at, row_id) for row_id, n in done],
            )
    sent = [n for _, n in done]
    failed = [n for n in sent if not n.sent]
    if failed:
        first = failed[0]
        raise NotifyFailed(
            f"{len(failed)} of {len(sent)} notifications not delivered (first: {first.kind} of {first.check_id}: "
            f"{first.error}); the next run retries them; check the notifier and its URL in alerting.notify",
            sent,
        )
    return sent
