"""An inventory named as a positional path (``pytest prod.yaml``) runs as if given with
``--autoglm-target``; any other YAML path that pytest finds no collector for gets a hint
instead of a bare "not found".

Only explicit command-line paths are looked at (never files met while walking folders), and
only their top-level keys, so plugins that collect YAML files of their own keep them.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path

import pytest

YAML_SUFFIXES = (".yaml", ".yml")
#: A top-level key of an inventory: at the start of a line, as block-style YAML writes it.
_TOP_KEY = re.compile(r"^(version|targets)[ \t]*:", re.MULTILINE)

_adopted_key = pytest.StashKey[tuple[list[str], list[str]]]()  # (the option's own value, what was added)


def looks_like_inventory(path: Path) -> bool:
    """A mapping with top-level ``version:`` and ``targets:`` (inventory.md's two required keys)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return {match[1] for match in _TOP_KEY.finditer(text)} == {"version", "targets"}


def yaml_paths(args: list[str], base: Path) -> list[tuple[str, Path]]:
    """The YAML files among positional arguments, as (the argument, its path)."""
    found = []
    for arg in args:
        path = base / str(arg).split("::")[0]
        if path.suffix.lower() in YAML_SUFFIXES and path.is_file():
            found.append((arg, path))
    return found


def explicit_yaml_paths(config: pytest.Config) -> list[tuple[str, Path]]:
    """YAML files named on the command line (not testpaths), as (the argument, its path)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    return yaml_paths(config.args, config.invocation_params.dir)


def adopt_positional_inventories(config: pytest.Config) -> None:
    """Add inventories named as positional paths to ``--autoglm-target`` (undone at unconfigure).

    The path stays among pytest's arguments, so ``prod.yaml::tcp[prod:web:22/closed]`` works
    too, and xdist workers, which parse the same arguments, do the same.
    """
    adopted = [str(path.resolve()) for _, path in explicit_yaml_paths(config) if looks_like_inventory(path)]
    if not adopted:
        return
    own = list(config.option.autoglm_target or [])
    config.stash[_adopted_key] = (own, adopted)
    config.option.autoglm_target = [*own, *adopted]


def pytest_unconfigure(config: pytest.Config) -> None:
    adopted = config.stash.get(_adopted_key, None)
    if adopted is not None:
        config.option.autoglm_target = adopted[0]
        del config.stash[_adopted_key]


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Add one hint line to pytest's "not found" usage error for a YAML path that is not an inventory."""
    try:
        return (yield)
    except pytest.UsageError as exc:
        errors = "\n".join(str(arg) for arg in exc.args)
        hints = [
            f"{arg} is not a pytest-autoglm inventory (one has top-level 'version:' and 'targets:'); "
            "to check an inventory, use --autoglm-target FILE"
            for arg, path in explicit_yaml_paths(session.config)
            if (str(path) in errors or str(path.resolve()) in errors) and not looks_like_inventory(path)
        ]
        if not hints:
            raise
        raise pytest.UsageError(*exc.args, *hints) from None
