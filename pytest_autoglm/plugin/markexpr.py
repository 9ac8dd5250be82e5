"""One warning line for an ``-m`` expression that names a marker nothing knows (``-m tpc``).

pytest deselects everything silently then. The line is a terminal line, not a Python warning:
runs with ``-W error`` must not fail on it. A name is known when a plugin or the ini file
registers it, or when any collected item carries it (before deselection).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable

import pytest

#: pytest's own markers: known, and left out of the list the line prints.
PYTEST_MARKERS = frozenset(
    {"filterwarnings", "skip", "skipif", "xfail", "parametrize", "usefixtures", "tryfirst", "trylast"}
)
_KEYWORDS = frozenset({"and", "or", "not"})
# The tokens of pytest's marker expressions (its lexer is private: _pytest/mark/expression.py).
_TOKEN = re.compile(r"""[ \t]+|(?P<string>'[^']*'|"[^"]*")|(?P<punct>[(),=])|(?P<ident>(?:\w|:|\+|-|\.|\[|\]|\\|/)+)""")

_line_key = pytest.StashKey[str]()


def marker_names(expression: str) -> set[str] | None:
    """The marker names an expression tests, without keyword-argument names and values; None if it does not lex."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            return None  # pytest itself reports the bad expression
        pos = match.end()
        kind = match.lastgroup
        if kind is not None:
            tokens.append((kind, match[kind]))
    names = set()
    for index, (kind, value) in enumerate(tokens):
        if kind != "ident" or value in _KEYWORDS:
            continue
        after = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        before = tokens[index - 1][1] if index else ""
        if "=" not in (after, before):
            names.add(value)
    return names


def registered_markers(config: pytest.Config) -> set[str]:
    lines: Iterable[str] = config.getini("markers")
    return {line.split(":", 1)[0].split("(", 1)[0].strip() for line in lines}


def unknown_marker_line(expression: str, registered: set[str], items: Iterable[pytest.Item]) -> str | None:
    names = marker_names(expression)
    if not names or names <= registered:
        return None
    on_items = {mark.name for item in items for mark in item.iter_markers()}
    unknown = names - registered - on_items
    if not unknown:
        return None
    import difflib  # only now: a session without the mistake does not pay for it

    known = sorted((registered | on_items) - PYTEST_MARKERS)
    guesses = [
        f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, known, 1)) else repr(name)
        for name in sorted(unknown)
    ]
    noun, pronoun = ("marker", "it") if len(unknown) == 1 else ("markers", "them")
    return (
        f"autoglm: -m {expression!r} names unknown {noun} {', '.join(guesses)}: no test carries {pronoun} and "
        f"nothing registers {pronoun}; known markers: {', '.join(known) or 'none'}"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None, None, None]:
    """Look before pytest's ``-m`` deselects anything."""
    expression = config.option.markexpr
    if expression:
        line = unknown_marker_line(expression, registered_markers(config), items)
        if line:
            config.stash[_line_key] = line
    return (yield)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    line = config.stash.get(_line_key, None)
    return [line] if line else []
