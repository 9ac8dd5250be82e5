"""The small value types: durations, ports and HTTP status expectations.

One parser per value, used by the inventory's validation and the probes alike, and the one
duration formatter every message uses. Standard library only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

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
    """The one compact form of a duration in messages: ``2.5ms``, ``250ms``, ``2s``, ``1.5s``.

    Below 10ms one decimal is kept (a loopback timeout of 2.5ms must not read ``2ms``).
    """
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.1f}".rstrip("0").rstrip(".") + "ms" if ms < 10 else f"{ms:.0f}ms"
    return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"


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


@dataclass(frozen=True)
class StatusSpec:
    """Accepted status codes: exact ``codes`` and/or ``classes`` (2 means ``2xx``)."""

    codes: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset()

    def matches(self, code: int) -> bool:
        return code in self.codes or code // 100 in self.classes

    def describe(self) -> str:
        parts = [str(c) for c in sorted(self.codes)] + [f"{k}xx" for k in sorted(self.classes)]
        return parts[0] if len(parts) == 1 else "one of " + ", ".join(parts)


DEFAULT_STATUS = StatusSpec(classes=frozenset({2}))

_STATUS_FORMS = "an int like 200, a list like [200, 204], or a class like '2xx' (1xx to 5xx)"
_DIGITS = re.compile(r"[0-9]+")
_CLASS = re.compile(r"([0-9])[xX][xX]")


def parse_status(value: object) -> StatusSpec:
    """The ``status`` key of an ``http`` entry: ``200``, ``[200, 204]``, ``"2xx"`` (or a mix).

    Raises ValueError naming the bad part and the accepted forms; the loader turns it
    into a located inventory error.
    """
    if isinstance(value, StatusSpec):
        return value
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"status list is empty: expected {_STATUS_FORMS}")
        items: list[object] = list(value)
    else:
        items = [value]
    codes: set[int] = set()
    classes: set[int] = set()
    for item in items:
        if isinstance(item, list | tuple):
            raise ValueError(f"invalid status {item!r}: lists cannot be nested; expected {_STATUS_FORMS}")
        code, klass = _parse_status_item(item)
        if code is not None:
            codes.add(code)
        if klass is not None:
            classes.add(klass)
    return StatusSpec(frozenset(codes), frozenset(classes))


def _parse_status_item(item: object) -> tuple[int | None, int | None]:
    if isinstance(item, bool):  # YAML ``yes`` is not a status
        raise ValueError(f"invalid status {item!r}: expected {_STATUS_FORMS}")
    if isinstance(item, str):
        text = item.strip()
        if _DIGITS.fullmatch(text):
            item = int(text)
        elif match := _CLASS.fullmatch(text):
            klass = int(match[1])
            if not 1 <= klass <= 5:
                raise ValueError(f"status class {item!r} does not exist: use 1xx, 2xx, 3xx, 4xx or 5xx")
            return None, klass
        else:
            raise ValueError(f"invalid status {item!r}: expected {_STATUS_FORMS}")
    if isinstance(item, int):
        if not 100 <= item <= 599:
            raise ValueError(f"status {item} is out of range 100..599")
        return item, None
    raise ValueError(f"invalid status {item!r} ({type(item).__name__}): expected {_STATUS_FORMS}")


# -- sizes (issue 19: grpc max_message) ------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(?P<num>\d+)\s*(?P<unit>B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNIT_BYTES = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2, "GB": 1000**3, "GiB": 1024**3}
#: gRPC message limits are C ints.
MAX_SIZE_BYTES = 2**31 - 1


def parse_size(value: object) -> int:
    """Bytes from ``"64MiB"``, ``"4MB"``, ``"512KiB"`` or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '64MiB' or '4MB', got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"invalid size {value!r}: expected a number with B, KB, KiB, MB, MiB, GB or GiB")
        size = int(match["num"]) * _UNIT_BYTES[match["unit"]]
    else:
        raise ValueError(f"expected a size like '64MiB' or '4MB', got {type(value).__name__}")
    if not 1 <= size <= MAX_SIZE_BYTES:
        raise ValueError(f"size {value!r} must be between 1 byte and 2GiB - 1")
    return size
