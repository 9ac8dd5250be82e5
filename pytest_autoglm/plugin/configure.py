"""Markers, options and, only when an inventory is named, loading it and the rest of the plugin.

A session that names no inventory (no ``--autoglm-target``, no ini ``autoglm_target``, no
inventory as a positional path) stops after registering the kind markers and validating the
options: it imports nothing heavier than pytest, and the modules that collect, run and report
inventory items (``INVENTORY_PLUGINS``) are not registered at all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pytest

from pytest_autoglm.gcpause import gc_paused
from pytest_autoglm.plugin import INVENTORY_PLUGINS
from pytest_autoglm.plugin.options import Options, read_options
from pytest_autoglm.plugin.positional import (
    adopt_positional_inventories,
    looks_like_inventory,
    yaml_paths,
)
from pytest_autoglm.plugin.state import InventorySlot, RunState, get_state, options_key, state_key

if TYPE_CHECKING:
    import argparse

    from pytest_autoglm.inventory.plan import RunSettings

KIND_MARKERS = (
    "dns: a DNS expectation (generated from an inventory, or your own test over targets with a dns section)",
    "tcp: a TCP port expectation (or your own test over targets with a tcp section)",
    "tls: a TLS expectation (or your own test over targets with a tls section)",
    "http: an HTTP expectation (or your own test over targets with an http section)",
    "cors: a CORS expectation (or your own test over targets with a cors section)",
    "grpc: a gRPC health expectation (or your own test over targets with a grpc section)",
    "icmp: an ICMP reachability expectation (or your own test over targets with an icmp section)",
    "group: a failover group over targets (top-level groups)",
)


def _prepare(config: pytest.Config) -> Options:
    """Validate the options once per session (a bad value is a usage error, exit code 4)."""
    options = config.stash.get(options_key, None)
    if options is None:
        adopt_positional_inventories(config)
        options = read_options(config)
        config.stash[options_key] = options
    return options


def _register_inventory_plugins(config: pytest.Config) -> None:
    for name in INVENTORY_PLUGINS:
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.register(importlib.import_module(name), name)


def _names_an_inventory(config: pytest.Config, known: argparse.Namespace) -> bool:
    """Whether the session names an inventory, judged as ``_prepare`` will (which validates it)."""
    if getattr(known, "help", False) or getattr(known, "version", False):
        return False
    if getattr(known, "autoglm_target", None) or config.getini("autoglm_target"):
        return True
    positional = [str(arg) for arg in getattr(known, "file_or_dir", None) or []]
    return any(looks_like_inventory(path) for _, path in yaml_paths(positional, config.invocation_params.dir))


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Register the inventory modules as soon as it is known that an inventory is named.

    That is before the initial conftest files load, the place where the entry point registered
    these modules when it registered all of them: their hooks keep their order relative to
    the hooks of users' conftest files, and their ``pytest_configure`` runs in its usual place
    among every other plugin's. xdist workers and pytester runs parse their arguments the same way.
    """
    named = early_config.getini("autoglm_target") or any(
        "autoglm-target" in arg or ".yaml" in arg or ".yml" in arg for arg in map(str, args)
    )  # cheap: most sessions stop here, without parsing the command line again
    if named and _names_an_inventory(early_config, parser.parse_known_args(args)):
        _register_inventory_plugins(early_config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in KIND_MARKERS:
        config.addinivalue_line("markers", line)
    options = _prepare(config)
    if not options.targets:
        return
    _start(config, options)
    # Registered already (pytest_load_initial_conftests); if that judged otherwise, their
    # pytest_configure runs now, after _start, rather than never.
    _register_inventory_plugins(config)


def _start(config: pytest.Config, options: Options) -> None:
    """Load and plan the inventories, and set up where their probes run."""
    from pytest_autoglm.engine.process import ProcessRunner, fork_available
    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.inventory.plan import RunSettings
    from pytest_autoglm.plugin.vantages import route

    overrides = RunSettings(
        timeout=options.timeout,
        retries=options.retries,
        per_host_concurrency=options.per_host_concurrency,
        vantages=options.vantages,
    )
    slots: list[InventorySlot] = []
    with gc_paused():
        _load(config, options, overrides, slots)
    _check_environment_names(slots)
    vantage_specs = _vantages(config, slots, overrides)
    if options.engine == "process" or (options.engine == "auto" and fork_available()):
        from pytest_autoglm.engine.process import AUTO_PROCESS_MIN_CHECKS

        min_checks = AUTO_PROCESS_MIN_CHECKS if options.engine == "auto" else 0
        runner = ProcessRunner(
            Engine(concurrency=options.concurrency), concurrency=options.concurrency, min_checks=min_checks
        )
        runner.fallback.outside = runner.lookup  # users' probe calls still see the items' failures upstream
        config.stash[state_key] = RunState(options, runner.fallback, slots, runner)
    else:
        config.stash[state_key] = RunState(options, Engine(concurrency=options.concurrency), slots)
    config.stash[state_key].vantage_specs = vantage_specs
    route(config.stash[state_key])  # remote vantages (issue 17): a router in front of the local runner


def _vantages(config: pytest.Config, slots: list[InventorySlot], overrides: RunSettings) -> dict[str, str]:
    """Issue 17: the run's remote vantages (name -> spec, in order), and a ``vantage_<name>`` marker each.

    The effective vantages are per inventory; one name must mean one place in a run. Nothing left
    to check from (``local=off`` and no other) is a usage error.
    """
    from pytest_autoglm.inventory.plan import plan_vantages, vantage_marker
    from pytest_autoglm.inventory.vantages import mask_spec

    specs: dict[str, tuple[str, str, str]] = {}  # name -> (spec, the inventory that gave it, spec as shown)
    markers: dict[str, None] = {}
    for slot in slots:
        if slot.loaded is None:
            continue
        vantages = plan_vantages(slot.loaded, overrides)
        if vantages is None:
            continue
        if not vantages:
            raise pytest.UsageError(
                f"--autoglm-vantage: no vantage is left to check {slot.loaded.display} from (local=off and every "
                "other one off); give one, e.g. --autoglm-vantage lan='popen//python=python3'"
            )
        for vantage in vantages:
            markers[vantage.name] = None
            if vantage.spec is None:
                continue
            shown = slot.loaded.redactor(mask_spec(vantage.spec))
            first = specs.setdefault(vantage.name, (vantage.spec, slot.loaded.display, shown))
            if first[0] != vantage.spec:
                raise pytest.UsageError(
                    f"--autoglm-target: {first[1]} and {slot.loaded.display} give vantage {vantage.name!r} different "
                    f"specs ({first[2]!r} and {shown!r}); one name is one place: "
                    f"rename one, or set it for the run with --autoglm-vantage {vantage.name}=SPEC"
                )
    for name in markers:
        config.addinivalue_line("markers", f"{vantage_marker(name)}: checks made from the vantage '{name}'")
    return {name: spec for name, (spec, _, _) in specs.items()}


def ensure_state(config: pytest.Config) -> RunState:
    """The run's state; in a session that names no inventory, made when a test first asks for the engine."""
    state = get_state(config)
    if state is None:
        from pytest_autoglm.engine.runner import Engine

        options = _prepare(config)
        state = RunState(options, Engine(concurrency=options.concurrency), [])
        config.stash[state_key] = state
    return state


def _load(config: pytest.Config, options: Options, overrides: RunSettings, slots: list[InventorySlot]) -> None:
    """Load and plan every inventory into ``slots`` (a bad one keeps its error for collection)."""
    from pytest_autoglm.errors import InventoryError
    from pytest_autoglm.inventory.plan import build_plan
    from pytest_autoglm.inventory.validate import load_inventory
    from pytest_autoglm.plugin.history import unknown_notify_schemes

    order = 0
    for position, path in enumerate(options.targets):
        slot = InventorySlot(path=path, position=position)
        try:
            slot.loaded = load_inventory(path, notify_schemes=unknown_notify_schemes, vantages=options.vantages)
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
        state.items.close()  # a ProcessRunner closes its fallback, state.engine, too; a router its gateways


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
    return [line, *_vantage_header(state)]


def _vantage_header(state: RunState) -> list[str]:
    """One line naming the run's vantages and their specs (``//env:`` values masked); none without vantages."""
    from pytest_autoglm.inventory.plan import RunSettings, plan_vantages
    from pytest_autoglm.inventory.vantages import mask_spec

    settings = RunSettings(vantages=state.options.vantages)
    names: dict[str, str | None] = {}  # name -> the spec as shown (secrets and //env: values masked)
    for loaded in state.loaded:
        for vantage in plan_vantages(loaded, settings) or ():
            names.setdefault(vantage.name, vantage.spec and loaded.redactor(mask_spec(vantage.spec)))
    if not names:
        return []
    shown = ", ".join(
        f"{name} ({mask_spec(spec)})" if spec else f"{name} (this process)" for name, spec in names.items()
    )
    return [f"autoglm: vantages {shown}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say where the probes ran: ``auto`` decides per run, and ``process`` can fall back."""
    state = get_state(config)
    if state is None or state.runner is None or config.option.collectonly:
        return
    from pytest_autoglm.engine.process import ProcessRunner
    from pytest_autoglm.engine.router import VantageRouter

    runner = state.runner.local if isinstance(state.runner, VantageRouter) else state.runner
    if not isinstance(runner, ProcessRunner):
        return
    if runner.forked:
        terminalreporter.write_line(
            f"autoglm: the probes ran in a forked child process (--autoglm-engine {state.options.engine})"
        )
    elif runner.fallback_reason and state.options.engine == "process":
        terminalreporter.write_line(f"autoglm: the probes ran in this process: {runner.fallback_reason}")


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """An inventory that plans nothing says so (pytest's exit code 5 alone does not say why)."""
    state = get_state(config)
    lines: list[str] = []
    for slot in state.slots if state is not None else []:
        if slot.loaded is None:
            continue
        if not slot.loaded.model.targets:
            lines.append(
                f"autoglm: {slot.loaded.display} has no targets: add one under 'targets:' "
                "(a name, a host and a dns, tcp, tls, http or cors section; see docs/inventory.md)"
            )
        elif not slot.checks:
            lines.append(
                f"autoglm: {slot.loaded.display} plans no checks: give its targets a dns, tcp, tls, http "
                "or cors section (see docs/inventory.md)"
            )
    return lines
