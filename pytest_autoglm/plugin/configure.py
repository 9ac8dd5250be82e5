"""``pytest_configure``: markers, options, inventories loaded once per process."""

from __future__ import annotations

import pytest

from pytest_autoglm.engine.process import AUTO_PROCESS_MIN_CHECKS, ProcessRunner, fork_available
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.errors import InventoryError
from pytest_autoglm.gcpause import gc_paused
from pytest_autoglm.inventory.plan import RunSettings, build_plan
from pytest_autoglm.inventory.validate import load_inventory
from pytest_autoglm.plugin.options import Options, read_options
from pytest_autoglm.plugin.state import InventorySlot, RunState, get_state, state_key
from pytest_autoglm.core.vocabulary import Layer

KIND_MARKERS = {
    Layer.DNS: "dns: a DNS expectation (generated from an inventory, or your own test over targets with a dns section)",
    Layer.TCP: "tcp: a TCP port expectation (or your own test over targets with a tcp section)",
    Layer.TLS: "tls: a TLS expectation (or your own test over targets with a tls section)",
    Layer.HTTP: "http: an HTTP expectation (or your own test over targets with an http section)",
    Layer.CORS: "cors: a CORS expectation (or your own test over targets with a cors section)",
}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in KIND_MARKERS.values():
        config.addinivalue_line("markers", line)
    options = read_options(config)
    overrides = RunSettings(
        timeout=options.timeout, retries=options.retries, per_host_concurrency=options.per_host_concurrency
    )
    slots: list[InventorySlot] = []
    with gc_paused():
        _load(config, options, overrides, slots)
    _check_environment_names(slots)
    if options.engine == "process" or (options.engine == "auto" and fork_available()):
        min_checks = AUTO_PROCESS_MIN_CHECKS if options.engine == "auto" else 0
        runner = ProcessRunner(
            Engine(concurrency=options.concurrency), concurrency=options.concurrency, min_checks=min_checks
        )
        runner.fallback.outside = runner.lookup  # users' probe calls still see the items' failures upstream
        config.stash[state_key] = RunState(options, runner.fallback, slots, runner)
    else:
        config.stash[state_key] = RunState(options, Engine(concurrency=options.concurrency), slots)


def _load(config: pytest.Config, options: Options, overrides: RunSettings, slots: list[InventorySlot]) -> None:
    """Load and plan every inventory into ``slots`` (a bad one keeps its error for collection)."""
    order = 0
    for position, path in enumerate(options.targets):
        slot = InventorySlot(path=path, position=position)
        try:
            slot.loaded = load_inventory(path)
        except InventoryError as exc:
            slot.error = exc
        else:
            slot.checks = build_plan(slot.loaded, overrides, first_index=order)
            order += len(slot.checks)
            for tag in sorted({t for target in slot.loaded.model.targets for t in target.tags}):
                config.addinivalue_line("markers", f"{tag}: inventory tag '{tag}'")
        slots.append(slot)


def _check_environment_names(slots: list[InventorySlot]) -> None:
    """Two files naming one environment would overwrite each other's reports."""
    seen: dict[str, InventorySlot] = {}
    for slot in slots:
        if slot.loaded is None:
            continue
        env = slot.loaded.environment
        if env in seen:
            raise pytest.UsageError(
                f"--autoglm-target: {seen[env].loaded.display} and {slot.loaded.display} are both environment {env!r}; "  # type: ignore[union-attr]
                "give one of them another 'environment:'"
            )
        seen[env] = slot


def pytest_unconfigure(config: pytest.Config) -> None:
    state = get_state(config)
    if state is not None:
        state.items.close()  # a ProcessRunner closes its fallback, state.engine, too


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = get_state(config)
    if state is None or not state.slots:
        return []
    envs = ", ".join(f"{s.loaded.environment} ({s.loaded.display})" for s in state.slots if s.loaded) or "none loaded"
    opts = state.options
    timeout = "from inventory" if opts.timeout is None else f"{opts.timeout:g}s"
    retries = "from inventory" if opts.retries is None else str(opts.retries)
    line = (
        f"autoglm: environments {envs}; timeout {timeout}, retries {retries}, concurrency {opts.concurrency}, "
        f"fail on {opts.fail_on}, engine {opts.engine}"
    )
    return [line]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say where the probes ran: ``auto`` decides per run, and ``process`` can fall back."""
    state = get_state(config)
    runner = state.runner if state is not None else None
    if not isinstance(runner, ProcessRunner) or config.option.collectonly:
        return
    if runner.forked:
        terminalreporter.write_line(
            f"autoglm: the probes ran in a forked child process (--autoglm-engine {state.options.engine})"
        )  # type: ignore[union-attr]
    elif runner.fallback_reason and state.options.engine == "process":  # type: ignore[union-attr]
        terminalreporter.write_line(f"autoglm: the probes ran in this process: {runner.fallback_reason}")
