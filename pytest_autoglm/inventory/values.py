"""Parsers for the small value types of the inventory: durations and ports."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|m)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}

#: Durations above this are certainly a typo (a per-attempt timeout of a day).
MAX_DURATION_S = 3600.0


def parse_duration(value: object) -> float:
    """Seconds from ``"250ms"``, ``"5s"``, ``"1m"``, or a bare number of seconds.

    Raises ValueError with a message that shows the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '250ms', '5s' or '1m', got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int with hundreds of digits
            raise ValueError(f"duration is longer than {MAX_DURATION_S:.0f}s; use a shorter value") from None
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"invalid duration {value!r}: expected a number with ms, s or m (e.g. '250ms', '5s', '1m')"
            )
        seconds = float(match["num"]) * _UNIT_SECONDS[match["unit"]]
    else:
        raise ValueError(f"expected a duration like '250ms', '5s' or '1m', got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be a finite, non-negative time")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration {value!r} is longer than {MAX_DURATION_S:.0f}s; use a shorter value")
    return seconds


def format_duration(seconds: float) -> str:
    """Compact human form used in messages: ``250ms``, ``2s``, ``1.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    text = f"{seconds:.2f}".rstrip("0").rstrip(".")
    return f"{text}s"


def parse_port(value: object) -> int:
    """A TCP port 1..65535; booleans are refused (YAML ``yes`` is not a port).

    A string of digits is accepted so that ``"${API_PORT}"`` works.
    """
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a port number 1..65535, got {value!r}")
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 1..65535")
    return value
