"""Messages and details carry no interpreter internals (issue 15): object addresses and task reprs."""

from __future__ import annotations

import asyncio

import httpx

from pytest_autoglm.core.sanitize import tree_without_internals, without_internals
from pytest_autoglm.probes.http.classify import describe_error

LEAK = (
    "TimeoutError: Cancelled via cancel scope 7f1f8b403e20 by <Task cancelling name='Task-39' "
    "coro=<Engine._run_check() running at /x/runner.py:301> cb=[_finished(...)() at /x/runner.py:12]>"
)


def test_the_observed_leak_reads_as_a_deadline() -> None:
    assert without_internals(LEAK) == "TimeoutError: cancelled at its deadline"


def test_addresses_and_reprs_go_the_rest_stays() -> None:
    text = f"bad value <object object at 0x7f00deadbeef> from {object()!r}; port 443, serial 0A:1B"
    cleaned = without_internals(text)
    assert "0x" not in cleaned and "at 0x" not in cleaned
    assert cleaned.startswith("bad value <object object> from <object object>; port 443, serial 0A:1B")
    assert without_internals("no answer within 500ms") == "no answer within 500ms"


def test_a_real_task_repr_in_a_real_exception_chain() -> None:
    async def main() -> str:
        task = asyncio.current_task()
        try:
            raise httpx.ReadTimeout(f"Cancelled via cancel scope {id(task):x} by {task!r}")
        except httpx.ReadTimeout as exc:
            return describe_error(exc)

    text = asyncio.run(main())
    assert text == "cancelled at its deadline", text


def test_details_trees() -> None:
    tree = {"error": LEAK, "list": [f"{object()!r}", 3], "n": None}
    cleaned = tree_without_internals(tree)
    assert cleaned == {"error": "TimeoutError: cancelled at its deadline", "list": ["<object object>", 3], "n": None}
