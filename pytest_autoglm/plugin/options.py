"""Command-line options and ini keys, validated into one :class:`Options` value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_autoglm.engine.process import fork_available
from pytest_autoglm.core.values import parse_duration

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
    per_host_concurrency: int | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autoglm", "network expectations (pytest-autoglm)")
    group.addoption("--autoglm-target", action="append", default=[], metavar="FILE", help=HELP_TARGET)
    group.addoption("--autoglm-report-dir", metavar="DIR", default=None, help=HELP_REPORT_DIR)
    group.addoption("--autoglm-timeout", metavar="DURATION", default=None, help=HELP_TIMEOUT)
    group.addoption("--autoglm-retries", metavar="N", default=None, help=HELP_RETRIES)
    group.addoption("--autoglm-concurrency", metavar="N", default=None, help=HELP_CONCURRENCY)
    group.addoption("--autoglm-per-host-concurrency", metavar="N", default=None, help=HELP_PER_HOST_CONCURRENCY)
    group.addoption("--autoglm-fail-on", metavar="SEVERITY", default=None, help=HELP_FAIL_ON)
    group.addoption("--autoglm-engine", metavar="MODE", default=None, help=HELP_ENGINE)
    group.addoption("--autoglm-order", metavar="ORDER", default=None, help=HELP_ORDER)
    group.addoption("--autoglm-distribute", action="store_true", default=None, help=HELP_DISTRIBUTE)
    parser.addini("autoglm_target", HELP_TARGET, type="linelist", default=[])
    parser.addini("autoglm_report_dir", HELP_REPORT_DIR, default=None)
    parser.addini("autoglm_timeout", HELP_TIMEOUT, default=None)
    parser.addini("autoglm_retries", HELP_RETRIES, default=None)
    parser.addini("autoglm_concurrency", HELP_CONCURRENCY, default=None)
    parser.addini("autoglm_per_host_concurrency", HELP_PER_HOST_CONCURRENCY, default=None)
    parser.addini("autoglm_fail_on", HELP_FAIL_ON, default=None)
    parser.addini("autoglm_engine", HELP_ENGINE, default=None)
    parser.addini("autoglm_order", HELP_ORDER, default=None)
    parser.addini("autoglm_distribute", HELP_DISTRIBUTE, default=None)


def _raw(config: pytest.Config, name: str) -> tuple[str | None, str]:
    """The command-line value, else the ini value; with where it came from, for messages."""
    value = config.getoption(f"--autoglm-{name.replace('_', '-')}")
    if value is not None:
        return str(value), f"--autoglm-{name.replace('_', '-')}"
    ini = config.getini(f"autoglm_{name}")
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

    timeout = None
    text, where = _raw(config, "timeout")
    if text is not None:
        try:
            timeout = parse_duration(text)
        except ValueError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
        if timeout <= 0:
            raise pytest.UsageError(f"{where}: the timeout must be greater than zero")

    retries = None
    text, where = _raw(config, "retries")
    if text is not None:
        retries = _int(text, where, 0, 20)

    concurrency = DEFAULT_CONCURRENCY
    text, where = _raw(config, "concurrency")
    if text is not None:
        concurrency = _int(text, where, 1, 100_000)

    per_host_concurrency = None
    text, where = _raw(config, "per_host_concurrency")
    if text is not None:
        per_host_concurrency = _int(text, where, 1, 10_000)

    fail_on = "critical"
    text, where = _raw(config, "fail_on")
    if text is not None:
        fail_on = _choice(text, where, ("critical", "warning"))

    distribute = False
    text, where = _raw(config, "distribute")
    if text is not None:
        distribute = _bool(text, where)

    engine = "auto"
    text, where = _raw(config, "engine")
    if text is not None:
        engine = _choice(text, where, ("auto", "process", "thread"))
        if engine == "process" and not fork_available():
            raise pytest.UsageError(f"{where}: 'process' needs Linux (fork); use 'thread'")

    order = "auto"
    text, where = _raw(config, "order")
    if text is not None:
        order = _choice(text, where, ("auto", "ready", "inventory"))

    text, where = _raw(config, "report_dir")
    report_dir = Path(text) if text else Path(DEFAULT_REPORT_DIR)
    if not report_dir.is_absolute():  # an ini value is relative to the rootdir, as autoglm_target is
        report_dir = (config.rootpath if where.startswith("ini") else Path.cwd()) / report_dir
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
        per_host_concurrency,
    )
