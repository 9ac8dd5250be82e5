"""Engine slots: never more holders than slots, begun checks first, no slot lost to a cancellation."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoglm.engine.slots import Slots


def test_urgent_waiters_go_first_each_kind_in_order():
    async def main() -> list[str]:
        slots = Slots(1)
        order: list[str] = []
        await slots.acquire(urgent=False)

        async def take(name: str, urgent: bool) -> None:
            async with slots.hold(urgent=urgent):
                order.append(name)

        tasks = [asyncio.ensure_future(take(n, u)) for n, u in [("new1", False), ("begun1", True), ("new2", False), ("begun2", True)]]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(main()) == ["begun1", "begun2", "new1", "new2"]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=30))
def test_cancelled_waiters_never_leak_or_overfill(size, plan):
    """Each waiter is (urgent, cancel it); whatever is cancelled, the bound holds and all slots come back."""

    async def main() -> None:
        slots = Slots(size)
        peak = 0

        async def work(urgent: bool) -> None:
            nonlocal peak
            async with slots.hold(urgent=urgent):
                peak = max(peak, slots.in_use)
                await asyncio.sleep(0.001)

        tasks = [asyncio.ensure_future(work(urgent)) for urgent, _ in plan]
        await asyncio.sleep(0)
        for task, (_, cancel) in zip(tasks, plan, strict=True):
            if cancel:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert peak <= size
        assert slots.in_use == 0

    asyncio.run(main())
