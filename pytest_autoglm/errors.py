"""The plugin's own errors.

::

    AutoglmError
    └── InventoryError     a bad inventory: file, line, column, path, what would be right

A check that cannot be carried out locally (an unreadable CA bundle, no file descriptors
left) is not an exception to the caller: inside a probe it is ``probes.errmap.LocalSetupError``,
which the probe turns into reason ``setup``, and the item's outcome is ``error``.

An ``InventoryError`` renders as ``prod.yaml:14:7: targets[1].tcp.open[0]: message``
so editors and CI logs can jump to the place.
"""

from __future__ import annotations

from pathlib import Path


class AutoglmError(Exception):
    """Base class of every error the plugin raises on purpose."""


class InventoryError(AutoglmError):
    """An inventory that cannot be loaded; never shown with a traceback."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        col: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.col = col
        self.path = path
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or "<inventory>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}: {what}"
