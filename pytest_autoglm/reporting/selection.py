"""Was every planned check run? The ``selection`` block of each report, from public pytest APIs.

Two facts decide it, per environment:

- **What was selected**, against what the inventory planned. pytest narrows a run in many
  ways (``-k``, ``-m``, ``--lf``, ``--sw``, ``--deselect``, node ids such as
  ``prod.yaml::tcp[prod:api:443/open]``, or any plugin calling ``pytest_deselected``), and all of
  them show in one place: the items left in ``session.items`` after collection (on an xdist
  controller, which collects nothing itself: the ids a worker reports in xdist's
  ``pytest_xdist_node_collection_finished``). ``deselected`` is the planned checks missing there.
- **What was reported**, against what was selected: ``-x``, ``--maxfail`` or an interrupt stop
  the run before the rest (``session.shouldstop``/``shouldfail``, exit code 2).

``expression`` names the options that narrowed the run, as they would be typed again.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import pytest

from pytest_autoglm.reporting.records import Selection


def _quoted(flag: str) -> Callable[[object], list[str]]:
    return lambda value: [f"{flag} {shlex.quote(str(value))}"] if value else []


def _flag(flag: str) -> Callable[[object], list[str]]:
    return lambda value: [flag] if value else []


def _each(flag: str) -> Callable[[object], list[str]]:
    return lambda value: [f"{flag} {shlex.quote(str(v))}" for v in value] if isinstance(value, list | tuple) else []


#: pytest option (``config.option`` attribute) -> the reason name and how it is written again.
#: ``lf``, ``stepwise`` and ``stepwise_skip`` exist only with the cacheprovider plugin loaded.
NARROWING_OPTIONS: tuple[tuple[str, str, Callable[[object], list[str]]], ...] = (
    ("keyword", "keyword", _quoted("-k")),
    ("markexpr", "marker", _quoted("-m")),
    ("lf", "last_failed", _flag("--lf")),
    ("stepwise", "stepwise", _flag("--sw")),
    ("stepwise_skip", "stepwise", _flag("--sw-skip")),
    ("deselect", "deselect", _each("--deselect")),
)


@dataclass(frozen=True)
class Narrowing:
    """How the run was narrowed, whatever the environment: reason names and the options as typed."""

    reasons: tuple[str, ...] = ()
    words: tuple[str, ...] = ()


def narrowing_of(config: pytest.Config) -> Narrowing:
    """The narrowing options of this run (``config.option``) and the node ids among its arguments."""
    reasons: list[str] = []
    words: list[str] = []
    for attribute, reason, write in NARROWING_OPTIONS:
        written = write(getattr(config.option, attribute, None))
        if written and reason not in reasons:
            reasons.append(reason)
        words.extend(written)
    node_ids = [arg for arg in config.args if "::" in arg]
    if node_ids:
        reasons.append("node_ids")
        words.extend(shlex.quote(arg) for arg in node_ids)
    return Narrowing(tuple(reasons), tuple(words))


def item_name(nodeid: str) -> str:
    """The item part of a node id (``path::name``): an inventory item's name is its check id."""
    return nodeid.split("::", 1)[-1]


def stopped_early(session: pytest.Session, exitstatus: int) -> bool:
    """``-x``, ``--maxfail`` or an interrupt ended the run (pytest's own flags for it)."""
    return exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop) or bool(session.shouldfail)


def selection_of(
    *,
    planned: Collection[str],
    selected: Collection[str] | None,
    reported: Collection[str],
    narrowing: Narrowing,
    stopped: bool,
) -> Selection:
    """The ``selection`` block of one environment.

    ``planned``: the check ids of its inventory; ``selected``: the item names selected to run
    (``None`` when unknown: then every planned check counts as selected); ``reported``: the
    names pytest reported on.
    """
    chosen = [name for name in planned if selected is None or name in selected]
    deselected = len(planned) - len(chosen)
    not_run = sum(1 for name in chosen if name not in reported)
    stopped = stopped and not_run > 0
    reasons = list(narrowing.reasons)
    if deselected and not reasons:
        reasons.append("plugin")  # nothing on the command line explains it: a plugin deselected them
    if stopped:
        reasons.append("stopped_early")
    return Selection(
        partial=bool(deselected) or stopped,
        deselected=deselected,
        expression=" ".join(narrowing.words),
        planned=len(planned),
        selected=len(chosen),
        not_run=not_run,
        stopped_early=stopped,
        narrowed_by=reasons,
    )


def names_of(nodeids: Iterable[str]) -> set[str]:
    return {item_name(nodeid) for nodeid in nodeids}
