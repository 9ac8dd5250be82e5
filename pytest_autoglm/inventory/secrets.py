"""``${VAR}`` and ``${secrets.key}`` interpolation, and the Redactor every output uses.

Every value declared under ``secrets:`` is a secret, and so is every value a
``${VAR}`` brought in from the environment that is at least
:data:`MIN_ENV_SECRET_LENGTH` characters long (masking a ``${RETRIES}`` of ``1``
would turn every digit 1 of every message into ``***``). The Redactor replaces
secrets with ``***`` in messages, reports, logs and tracebacks.
``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_autoglm.errors import InventoryError
from pytest_autoglm.inventory.loader import LocatedDict, LocatedList, Mark

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MASK = "***"
#: Shorter values substituted from the environment (ports, counts, flags) are not masked.
MIN_ENV_SECRET_LENGTH = 6


class Redactor:
    """Masks known secret values in any text; longest values first so overlaps mask fully."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s}
        self._values = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in self._values)) if self._values else None

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._values)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def redact_data(self, value: Any) -> Any:
        """Mask secrets inside JSON-like data (dicts, lists, strings)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {self(str(k)) if isinstance(k, str) else k: self.redact_data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_data(v) for v in value]
        return value

    def merged(self, other: Redactor) -> Redactor:
        return Redactor((*self._values, *other._values))


def interpolate(tree: LocatedDict, environ: Mapping[str, str]) -> tuple[LocatedDict, Redactor]:
    """Replace references in every string of ``tree`` (in place) and return the secrets found."""
    used: set[str] = set()
    secrets: dict[str, str] = {}
    raw_secrets = tree.get("secrets")
    if isinstance(raw_secrets, LocatedDict):
        for key, value in raw_secrets.items():
            if isinstance(value, str):
                raw_secrets[key] = _substitute(
                    value, raw_secrets.value_marks[key], environ, None, used, f"secrets.{key}"
                )
            if isinstance(raw_secrets[key], str | int | float) and not isinstance(raw_secrets[key], bool):
                secrets[key] = str(raw_secrets[key])
    for key in list(tree):
        if key != "secrets":
            tree[key] = _walk(tree[key], tree.value_marks[key], environ, secrets, used, key)
    env_secrets = [value for value in used if len(value) >= MIN_ENV_SECRET_LENGTH]
    return tree, Redactor([*env_secrets, *secrets.values()])


def _walk(
    value: Any, mark: Mark, environ: Mapping[str, str], secrets: Mapping[str, str], used: set[str], path: str
) -> Any:
    if isinstance(value, str):
        return _substitute(value, mark, environ, secrets, used, path)
    if isinstance(value, LocatedDict):
        for key in list(value):
            value[key] = _walk(value[key], value.value_marks[key], environ, secrets, used, f"{path}.{key}")
    elif isinstance(value, LocatedList):
        for i, (item, item_mark) in enumerate(zip(value, value.item_marks, strict=True)):
            value[i] = _walk(item, item_mark, environ, secrets, used, f"{path}[{i}]")
    return value


def _substitute(
    text: str,
    mark: Mark,
    environ: Mapping[str, str],
    secrets: Mapping[str, str] | None,
    used: set[str],
    path: str,
) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1).strip()
        if name.startswith("secrets."):
            key = name.removeprefix("secrets.")
            if secrets is None:
                raise _error(mark, path, f"'${{{name}}}' cannot be used inside secrets:; use '${{VARIABLE}}' there")
            if key not in secrets:
                known = ", ".join(sorted(secrets)) or "none declared"
                raise _error(mark, path, f"unknown secret '{key}' (secrets: {known}); declare it under secrets:")
            return secrets[key]
        if not _VARIABLE_NAME.match(name):
            raise _error(
                mark,
                path,
                f"invalid reference '${{{name}}}': use ${{VARIABLE}} or ${{secrets.key}} (write $${{ for a literal ${{)",
            )
        if name not in environ:
            raise _error(mark, path, f"environment variable {name} is not set; export it or remove '${{{name}}}'")
        value = environ[name]
        used.add(value)
        return value

    return _REFERENCE.sub(replace, text)


def _error(mark: Mark, path: str, message: str) -> InventoryError:
    return InventoryError(message, file=mark.file, line=mark.line, col=mark.col, path=path)
