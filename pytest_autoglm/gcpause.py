"""Pausing Python's cyclic garbage collector while building many long-lived objects.

Loading a 10,000-check inventory allocates a few hundred thousand objects that all stay alive;
each generation-2 pass the allocations trigger walks every one of them again, which doubled
the load time. Nothing built there is cyclic garbage, so the passes find nothing. Reference
counting still frees everything as usual; only the cycle search waits until the block ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
