"""Interpreter internals out of user-facing text: object addresses and task reprs say nothing about
the target, change on every run (so reports never diff cleanly) and read like a crash.

Applied where exceptions become messages (``probes/http/classify.describe_error``) and, as the one
net under every probe, where the engine turns a failed verdict into a result.
"""

from __future__ import annotations

import re
from typing import Any, Final

#: Where a repr of an asyncio object starts: ``<Task pending name='Task-39' coro=<...<locals>...> ...>``.
_TASK_START: Final = re.compile(r"<(?:Task|Future|Handle|TimerHandle|coroutine object)\b")
#: anyio's cancellation text: "Cancelled via cancel scope 7f1f8b403e20 by <task>".
_CANCEL_SCOPE: Final = re.compile(r"Cancelled via cancel scope [0-9a-fA-F]+(?: by <task>)?")
#: `` at 0x7f1f8b403e20`` in default reprs, and bare addresses.
_ADDRESS: Final = re.compile(r"\s+at 0x[0-9a-fA-F]+|\b0x[0-9a-fA-F]{8,}\b")


def without_internals(text: str) -> str:
    """``text`` without object addresses and asyncio/anyio task reprs (the rest kept as is)."""
    if "<" not in text and "0x" not in text and "cancel scope" not in text:
        return text  # the usual case, cheaply
    text = _without_task_reprs(text)
    text = _CANCEL_SCOPE.sub("cancelled at its deadline", text)
    return _ADDRESS.sub("", text)


def _without_task_reprs(text: str) -> str:
    """Each ``<Task ...>`` (its nested ``<...>`` included, however deep) becomes ``<task>``."""
    out: list[str] = []
    pos = 0
    while (match := _TASK_START.search(text, pos)) is not None:
        out.append(text[pos : match.start()])
        depth, i = 0, match.start()
        while i < len(text):
            depth += {"<": 1, ">": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        out.append("<task>")
        pos = i
    out.append(text[pos:])
    return "".join(out)


def tree_without_internals(value: Any) -> Any:
    """:func:`without_internals` on every string of a JSON-like tree (dicts, lists, tuples)."""
    if isinstance(value, str):
        return without_internals(value)
    if isinstance(value, dict):
        return {k: tree_without_internals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tree_without_internals(v) for v in value]
    return value
