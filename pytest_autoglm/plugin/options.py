"""Command-line options and ini keys, validated into one :class:`Options` value.

Imported in every pytest session (``pytest_addoption`` must declare the options before
parsing), so it imports only pytest and the standard library; the two helpers it borrows
from the engine and the inventory are imported when an option needs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

HELP_TARGET = "inventory YAML file to check (repeatable: one environment per file)"
HELP_REPORT_DIR = "folder for <environment>.json and <environment>.html reports (default: reports)"
HELP_TIMEOUT = "per-attempt timeout for every check, overriding the inventories: '250ms', '5s', '1m' or seconds"
HELP_RETRIES = "extra attempts after the first for transient failures, overriding the inventories"
HELP_CONCURRENCY = "probes in flight at once (default: 256)"
HELP_PER_HOST_CONCURRENCY = (
    "connections in flight at once to one address and port, overriding the inventories' "
    "defaults.per_host_concurrency (default: 4)"
)
HELP_FAIL_ON = "lowest severity whose failures fail the run: critical (default) or warning"
HELP_ENGINE = (
    "where the inventory's probes run: 'process' (a forked child with a core of its own), 'thread' (a thread "
    "of the pytest process) or 'auto' (the default: a forked child on Linux from 200 checks, else a thread)"
)
HELP_ORDER = (
    "order in which an inventory-only run reports its items: 'ready' (as their probes finish, so a dropped "
    "port does not hold up the rest), 'inventory' (collection order) or 'auto' (the default: 'ready' when the "
    "probes run in a forked child, else 'inventory')"
)
HELP_DISTRIBUTE = (
    "split an inventory-only run across pytest-xdist workers (-n) anyway; by default such a run "
    "stays in one process, which already probes every check concurrently and is faster"
)
HELP_VANTAGE = (
    "a place to check from (repeatable): NAME=SPEC, an execnet gateway spec as pytest-xdist's --tx takes "
    "(lan='popen//python=ip netns exec lan /opt/venv/bin/python', office=ssh=probe@gw//python=python3), "
    "overriding the inventories' vantage of that name or adding one; NAME=off removes one (local=off: "
    "not this process)"
)

T = TypeVar("T")

# -- history (issue 16) ------------------------------------------------------------------------------------------
HELP_HISTORY = (
    "run history store: a path or sqlite:///path (SQLite), postgresql://... (PostgreSQL), or 'none' "
    "(default: <report dir>/history.sqlite)"
)
HELP_HISTORY_KEEP = "how long the history store keeps runs: '90d' (the default), '12h', '2w'"
HELP_HISTORY_REQUIRED = "a history store, notifier or Pushgateway fault fails the run (default: one warning line)"
HELP_PUSHGATEWAY = "Prometheus Pushgateway URL to PUT each environment's metrics to (default: no push)"
DEFAULT_HISTORY_FILE = "history.sqlite"
DEFAULT_HISTORY_KEEP = timedelta(days=90)

DEFAULT_CONCURRENCY = 256
DEFAULT_REPORT_DIR = "reports"


@dataclass(frozen=True)
class Options:
    targets: tuple[Path, ...]
    report_dir: Path
    timeout: float | None
    retries: int | None
    concurrency: int
    fail_on: str
    distribute: bool = False
    engine: str = "auto"
    order: str = "auto"
    # history (issue 16): the store (a path or URL; None: no history), its retention, and the push
    history: str | None = None
    history_keep: timedelta = DEFAULT_HISTORY_KEEP
    history_required: bool = False
    pushgateway: str | None = None
    per_host_concurrency: int | None = None  # None: the inventories' (default 4)
    #: Issue 17: ``--autoglm-vantage`` in order, (name, execnet spec or None for off); names unique.
    vantages: tuple[tuple[str, str | None], ...] = ()


#: The value options besides the inventories and the report folder: option ``--autoglm-NAME`` and
#: ini key ``autoglm_NAME`` (underscores become dashes in the option), each read by :func:`_value`.
VALUE_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("timeout", "DURATION", HELP_TIMEOUT),
    ("retries", "N", HELP_RETRIES),
    ("concurrency", "N", HELP_CONCURRENCY),
    ("per_host_concurrency", "N", HELP_PER_HOST_CONCURRENCY),
    ("fail_on", "SEVERITY", HELP_FAIL_ON),
    ("engine", "MODE", HELP_ENGINE),
    ("order", "ORDER", HELP_ORDER),
    ("history", "URL|PATH|none", HELP_HISTORY),
    ("history_keep", "DURATION", HELP_HISTORY_KEEP),
    ("pushgateway", "URL", HELP_PUSHGATEWAY),
    ("vantage", "NAME=SPEC", HELP_VANTAGE),
)
#: Value options given once per value (the option repeated; the ini key one value a line). The
#: command line's values replace the ini key's; :func:`_raw` gives them as lines.
REPEATABLE = frozenset({"vantage"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autoglm", "network expectations (pytest-autoglm)")
    group.addoption("--autoglm-target", action="append", default=[], metavar="FILE", help=HELP_TARGET)
    parser.addini("autoglm_target", HELP_TARGET, type="linelist", default=[])
    group.addoption("--autoglm-report-dir", metavar="DIR", default=None, help=HELP_REPORT_DIR)
    parser.addini("autoglm_report_dir", HELP_REPORT_DIR, default=None)
    for name, metavar, help_text in VALUE_OPTIONS:
        if name in REPEATABLE:
            group.addoption(_flag(name), action="append", metavar=metavar, default=None, help=help_text)
            parser.addini(f"autoglm_{name}", help_text, type="linelist", default=[])
            continue
        group.addoption(_flag(name), metavar=metavar, default=None, help=help_text)
        parser.addini(f"autoglm_{name}", help_text, default=None)
    for name, help_text in (("distribute", HELP_DISTRIBUTE), ("history_required", HELP_HISTORY_REQUIRED)):
        group.addoption(_flag(name), action="store_true", default=None, help=help_text)
        parser.addini(f"autoglm_{name}", help_text, default=None)


def _flag(name: str) -> str:
    return f"--autoglm-{name.replace('_', '-')}"


def _raw(config: pytest.Config, name: str) -> tuple[str | None, str]:
    """The command-line value, else the ini value; with where it came from, for messages."""
    value = config.getoption(_flag(name))
    if value is not None:
        return ("\n".join(value) if isinstance(value, list) else str(value)), _flag(name)
    ini = config.getini(f"autoglm_{name}")
    if isinstance(ini, list):  # a linelist key (REPEATABLE): its lines
        ini = "\n".join(ini)
    if ini not in (None, ""):
        return str(ini).strip(), f"ini key autoglm_{name}"
    return None, ""


def _int(text: str, where: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"{where}: expected a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise pytest.UsageError(f"{where}: {value} is out of range {low}..{high}")
    return value


def _choice(text: str, where: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        listed = ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
        raise pytest.UsageError(f"{where}: expected {listed}, got {text!r}")
    return text


def _bool(text: str, where: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise pytest.UsageError(f"{where}: expected true or false, got {text!r}")


def _value(config: pytest.Config, name: str, parse: Callable[[str, str], T], default: T) -> T:
    """One option's value: the command line, else the ini key, else ``default``; parsed naming its source."""
    text, where = _raw(config, name)
    return default if text is None else parse(text, where)


def _timeout(text: str, where: str) -> float:
    from pytest_autoglm.core.values import parse_duration

    try:
        timeout = parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None
    if timeout <= 0:
        raise pytest.UsageError(f"{where}: the timeout must be greater than zero")
    return timeout


def _engine(text: str, where: str) -> str:
    engine = _choice(text, where, ("auto", "process", "thread"))
    from pytest_autoglm.engine.process import fork_available

    if engine == "process" and not fork_available():
        raise pytest.UsageError(f"{where}: 'process' needs Linux (fork); use 'thread'")
    return engine


def _check_report_dir(report_dir: Path, where: str) -> None:
    """Fail before anything is probed, not when the reports are written at the end of the run."""
    if report_dir.exists() and not report_dir.is_dir():
        raise pytest.UsageError(f"{where}: {report_dir} is a file; name a folder for the reports")
    existing = next((p for p in (report_dir, *report_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise pytest.UsageError(f"{where}: {existing} is a file, so {report_dir} cannot be made; name another folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise pytest.UsageError(f"{where}: {existing} is not writable; name a folder you can write to")


def read_options(config: pytest.Config) -> Options:
    """Validate every option once; a bad value is a usage error (exit code 4) naming its source."""
    cli_targets = config.getoption("--autoglm-target") or []
    ini_targets = config.getini("autoglm_target") or []
    base = config.rootpath if not cli_targets else Path.cwd()
    targets: list[Path] = []
    for raw in cli_targets or ini_targets:
        path = Path(raw)
        if not path.is_absolute():
            path = (Path.cwd() if cli_targets else base) / path
        where = "--autoglm-target" if cli_targets else "ini key autoglm_target"
        if config.option.help or config.option.version:
            continue  # `pytest --help` must work whatever the ini file names
        if not path.exists():
            raise pytest.UsageError(f"{where}: inventory file not found: {raw}; check the path")
        if path.is_dir():
            raise pytest.UsageError(f"{where}: {raw} is a directory; name an inventory YAML file")
        if path.resolve() not in [t.resolve() for t in targets]:
            targets.append(path)

    timeout = _value(config, "timeout", _timeout, None)
    retries = _value(config, "retries", lambda text, where: _int(text, where, 0, 20), None)
    concurrency = _value(config, "concurrency", lambda text, where: _int(text, where, 1, 100_000), DEFAULT_CONCURRENCY)
    fail_on = _value(config, "fail_on", lambda text, where: _choice(text, where, ("critical", "warning")), "critical")
    distribute = _value(config, "distribute", _bool, False)
    engine = _value(config, "engine", _engine, "auto")
    order = _value(config, "order", lambda text, where: _choice(text, where, ("auto", "ready", "inventory")), "auto")

    text, where = _raw(config, "report_dir")
    report_dir = Path(text) if text else Path(DEFAULT_REPORT_DIR)
    if not report_dir.is_absolute():  # an ini value is relative to the rootdir, as autoglm_target is
        report_dir = (config.rootpath if where.startswith("ini") else Path.cwd()) / report_dir
    if targets:
        _check_report_dir(report_dir, where or "--autoglm-report-dir")
    return Options(
        tuple(targets),
        report_dir,
        timeout,
        retries,
        concurrency,
        fail_on,
        distribute,
        engine,
        order,
        history=_value(config, "history", partial(_history_store, config=config), _default_store(report_dir)),
        history_keep=_value(config, "history_keep", _history_keep, DEFAULT_HISTORY_KEEP),
        history_required=_value(config, "history_required", _bool, False),
        pushgateway=_value(config, "pushgateway", _pushgateway, None),
        per_host_concurrency=_value(
            config, "per_host_concurrency", lambda text, where: _int(text, where, 1, 10_000), None
        ),
        vantages=_value(config, "vantage", _vantages, ()),
    )


def _vantages(text: str, where: str) -> tuple[tuple[str, str | None], ...]:
    """``NAME=SPEC`` / ``NAME=off`` lines (issue 17); imported only when the option is given."""
    from pytest_autoglm.inventory.vantages import parse_vantage_option

    out: dict[str, str | None] = {}
    for line in (line.strip() for line in text.splitlines()):
        if not line:
            continue
        try:
            name, spec = parse_vantage_option(line)
        except ValueError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
        if name in out:
            raise pytest.UsageError(f"{where}: vantage {name!r} is given twice; give each name once")
        out[name] = spec
    return tuple(out.items())


# -- history (issue 16) ------------------------------------------------------------------------------------------


def _default_store(report_dir: Path) -> str | None:
    return str(report_dir / DEFAULT_HISTORY_FILE)


def _history_store(text: str, where: str, config: pytest.Config) -> str | None:
    """The store as ``open_store`` takes it: a URL as given, or an absolute path; None for 'none'."""
    if text.strip().lower() == "none":
        return None
    if text.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None:
            raise pytest.UsageError(
                f"{where}: a PostgreSQL store needs psycopg 3: pip install 'pytest-autoglm[history-postgres]'"
            )
        return text
    if text.startswith("sqlite://"):
        if not text.startswith("sqlite:///") or len(text) <= len("sqlite:///"):
            raise pytest.UsageError(f"{where}: write sqlite:///relative/path or sqlite:////absolute/path, got {text!r}")
        return text
    if "://" in text:
        raise pytest.UsageError(
            f"{where}: expected a path, sqlite:///path, postgresql://... or 'none', got {text.split('://', maxsplit=1)[0]}://..."
        )
    path = Path(text).expanduser()
    if not path.is_absolute():  # an ini value is relative to the rootdir, as autoglm_report_dir is
        path = (config.rootpath if where.startswith("ini") else Path.cwd()) / path
    if path.is_dir():
        raise pytest.UsageError(f"{where}: {text} is a directory; name the store's file, e.g. {text}/history.sqlite")
    return str(path)


def _history_keep(text: str, where: str) -> timedelta:
    units = {"h": 3600, "d": 86400, "w": 604800}
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) <= 0 or int(number) > 100_000:
        raise pytest.UsageError(f"{where}: expected a retention like '90d', '12h' or '2w', got {text!r}")
    return timedelta(seconds=int(number) * units[unit])


def _pushgateway(text: str, where: str) -> str | None:
    if not text:
        return None
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1].strip("/")) == 0:
        raise pytest.UsageError(f"{where}: expected an http:// or https:// URL of a Pushgateway, got {text!r}")
    return text.rstrip("/")
