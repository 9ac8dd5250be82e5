"""The one exception of the history package.

::

    AutoglmError
    └── HistoryUnavailable     the store or a notifier could not do its part; one line, names what to do
        ├── NotifyFailed       one or more notifications were claimed but not delivered
        └── PushFailed         the Pushgateway did not take the metrics

The run's own reports never depend on history: the caller turns any of these into one
warning line (or a failure with ``--autoglm-history-required``). Every message is one line,
names the store (its password masked) or the notifier's scheme, and says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_autoglm.errors import AutoglmError

if TYPE_CHECKING:
    from pytest_autoglm.history.models import Notification


class HistoryUnavailable(AutoglmError):
    """The history store or a notifier failed; nothing of this run was half-written."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.message = " ".join(message.split())

    def __str__(self) -> str:
        return self.message


class NotifyFailed(HistoryUnavailable):
    """Some notifications were not delivered; they stay claimed as failed and the next run retries them."""

    def __init__(self, message: str, notifications: Sequence[Notification]) -> None:
        super().__init__(message)
        self.notifications = list(notifications)


class PushFailed(HistoryUnavailable):
    """The Pushgateway was unreachable or refused the metrics."""
