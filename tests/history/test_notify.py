"""Notifications through Apprise to a real webhook receiver and a real SMTP server."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from pytest_autoglm.history import (
    AlertPolicy,
    CheckRecord,
    HistoryStore,
    NotifyFailed,
    RunHistory,
    RunRecord,
    notify_transitions,
    open_store,
    record_run,
    unknown_notify_schemes,
)
from pytest_autoglm.history.models import Letter
from tests.history.conftest import DAY, T0
from tests.history.servers import Mailbox, Webhook

CHECK = "tcp[prod:api:443/open]"
MESSAGE = "api.example.com (203.0.113.10) port 443: no answer within 2s (3 attempts); expected open"


def record(letter: Letter) -> CheckRecord:
    failing = letter != "P"
    return CheckRecord(
        CHECK,
        letter,
        target="api",
        check="tcp",
        layer="tcp" if failing else None,
        reason="filtered" if failing else None,
        message=MESSAGE if failing else "port 443 open",
    )


def nightly(store: HistoryStore, day: float, letter: Letter, policy: AlertPolicy) -> RunHistory:
    """One nightly run and its notifications, stamped by the mocked clock (T0 + day)."""
    at = T0 + day * DAY
    history = record_run(store, RunRecord("prod", at, at + timedelta(seconds=4)), [record(letter)], {CHECK: policy})
    notify_transitions(store, history, {CHECK: policy}, report_path="reports/prod.html", now=at + timedelta(seconds=5))
    return history


def test_down_three_times_then_back_one_firing_one_resolved(store: HistoryStore, webhook: Webhook) -> None:
    policy = AlertPolicy(after=3, notify=(webhook.url,))
    seen = []
    for day, letter in enumerate("PFFFPP"):
        nightly(store, day, letter, policy)  # type: ignore[arg-type]
        seen.append(len(webhook.messages()))
    assert seen == [0, 0, 0, 1, 2, 2]  # firing after the third failure, resolved at the first pass
    firing, resolved = webhook.messages()
    assert firing["title"] == f"[autoglm] FIRING prod: {CHECK}"
    body = firing["message"]
    for part in (
        "environment: prod",
        f"check: {CHECK}",
        "layer/reason: tcp/filtered",
        f"message: {MESSAGE}",
        "failing since: 2026-11-02T02:00:00Z (3 failing runs in a row)",
        "report: reports/prod.html",
    ):
        assert part in body
    assert resolved["title"] == f"[autoglm] RESOLVED prod: {CHECK}"
    assert "was failing since: 2026-11-02T02:00:00Z" in resolved["message"]


def test_same_change_is_never_sent_twice(store: HistoryStore, webhook: Webhook) -> None:
    policy = AlertPolicy(after=1, notify=(webhook.url,))
    history = nightly(store, 0, "F", policy)
    again = notify_transitions(store, history, {CHECK: policy}, report_path="r", now=T0 + timedelta(minutes=1))
    assert again == [] and len(webhook.messages()) == 1


def test_reminders_once_per_period(store: HistoryStore, webhook: Webhook) -> None:
    policy = AlertPolicy(after=1, remind_every=timedelta(hours=24), notify=(webhook.url,))
    for step in range(8):  # every 8 hours, failing: fires at 0, reminds at 24 h and 48 h
        nightly(store, step / 3, "F", policy)
    titles = [m["title"].split(" prod")[0] for m in webhook.messages()]
    assert titles == ["[autoglm] FIRING", "[autoglm] STILL FIRING (reminder)", "[autoglm] STILL FIRING (reminder)"]


def test_overlapping_runs_do_not_double_notify(store_url: str, webhook: Webhook) -> None:
    policy = AlertPolicy(after=2, remind_every=timedelta(hours=1), notify=(webhook.url,))
    with open_store(store_url) as store:
        nightly(store, 0, "F", policy)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def overlapping(offset: float) -> None:
        try:
            with open_store(store_url) as store:
                barrier.wait()
                nightly(store, 1 + offset, "F", policy)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=overlapping, args=(o,)) for o in (0.0, 0.001)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [m["title"].split(" prod")[0] for m in webhook.messages()] == ["[autoglm] FIRING"]

    # Both later runs now owe the same reminder (one period after firing): one goes out.
    with open_store(store_url) as one, open_store(store_url) as two:
        h1 = record_run(one, RunRecord("prod", T0 + 2 * DAY, T0 + 2 * DAY), [record("F")], {CHECK: policy})
        h2 = record_run(two, RunRecord("prod", T0 + 2 * DAY, T0 + 2 * DAY), [record("F")], {CHECK: policy})
        results: list[int] = []

        def send(store: HistoryStore, history: RunHistory) -> None:
            barrier.wait()
            sent = notify_transitions(store, history, {CHECK: policy}, report_path="r", now=T0 + 2 * DAY)
            results.append(len(sent))

        pair = [threading.Thread(target=send, args=a) for a in ((one, h1), (two, h2))]
        for t in pair:
            t.start()
        for t in pair:
            t.join(60)
    assert sorted(results) == [0, 1]
    assert len(webhook.messages()) == 2


def test_notifier_down_raises_once_and_next_run_retries(store: HistoryStore, webhook: Webhook) -> None:
    policy = AlertPolicy(after=1, remind_every=None, notify=(webhook.url + "?token=s3cret",))
    webhook.down = True
    history = record_run(store, RunRecord("prod", T0, T0), [record("F")], {CHECK: policy})
    with pytest.raises(NotifyFailed) as info:
        notify_transitions(store, history, {CHECK: policy}, report_path="r", now=T0)
    message = str(info.value)
    assert "1 of 1 notifications not delivered" in message and "json did not take it" in message
    assert "s3cret" not in message and "\n" not in message
    assert [n.sent for n in info.value.notifications] == [False]
    webhook.down = False
    nightly(store, 1, "F", policy)  # still firing: nothing new, but the failed one goes out now
    nightly(store, 2, "F", policy)
    assert [m["title"] for m in webhook.messages()] == [f"[autoglm] FIRING prod: {CHECK}"]


def test_secrets_are_masked(store: HistoryStore, webhook: Webhook) -> None:
    policy = AlertPolicy(after=1, notify=(webhook.url,))
    check = CheckRecord(CHECK, "F", layer="http", reason="auth", message="401 with key sk-live-123 sent")
    history = record_run(store, RunRecord("prod", T0, T0), [check], {CHECK: policy})
    notify_transitions(
        store,
        history,
        {CHECK: policy},
        report_path="reports/prod.html",
        redact=lambda text: text.replace("sk-live-123", "***"),
        now=T0,
    )
    (message,) = webhook.messages()
    assert "sk-live-123" not in message["message"] and "401 with key *** sent" in message["message"]


def test_mail_through_smtp(store: HistoryStore, mailbox: Mailbox) -> None:
    policy = AlertPolicy(after=1, notify=(mailbox.url(),))
    nightly(store, 0, "F", policy)
    nightly(store, 1, "P", policy)
    assert len(mailbox.messages) == 2
    assert f"Subject: [autoglm] FIRING prod: {CHECK}" in mailbox.messages[0]
    assert "To: oncall@example.test" in mailbox.messages[0]
    assert f"Subject: [autoglm] RESOLVED prod: {CHECK}" in mailbox.messages[1]


def test_no_notify_urls_no_messages(store: HistoryStore) -> None:
    history = record_run(store, RunRecord("prod", T0, T0), [record("F")], {CHECK: AlertPolicy(after=1)})
    assert notify_transitions(store, history, {CHECK: AlertPolicy(after=1)}, report_path="r", now=T0) == []


def test_unknown_notify_schemes() -> None:
    urls = [
        "json://127.0.0.1/x",
        "mailto://a@b.test",
        "slack://T/B/C",
        "workflows://a/b/c",
        "bogus://x",
        "no-url",
    ]
    assert unknown_notify_schemes(urls) == ["bogus", "no-url"]
    assert unknown_notify_schemes(["BOGUS://x", "bogus://y"]) == ["bogus"]


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AlertPolicy(after=0)
    with pytest.raises(ValueError, match="positive"):
        AlertPolicy(remind_every=timedelta(0))
