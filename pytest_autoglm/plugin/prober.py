"""What users' own tests get: :class:`TargetInfo` (the ``autoglm_target`` parameter) and
:class:`Prober` (the ``autoglm_probe`` fixture).

Imported only when a test asks for one of them (see ``fixtures.py``): it pulls in the engine
and the inventory models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_autoglm.core.records import CheckResult
from pytest_autoglm.core.vocabulary import Layer
from pytest_autoglm.engine.runner import Engine
from pytest_autoglm.inventory.models import HttpCheck, Target, TlsSection
from pytest_autoglm.inventory.plan import Check, DnsCheckSpec, RunSettings, TcpCheckSpec, build_plan, make_check
from pytest_autoglm.inventory.secrets import Redactor
from pytest_autoglm.inventory.validate import LoadedInventory


@dataclass(frozen=True)
class TargetInfo:
    """What a user's test gets as ``autoglm_target``: the target's model and its environment."""

    environment: str
    name: str
    host: str
    tags: tuple[str, ...]
    model: Target = field(repr=False)  # may hold interpolated secrets: never in -l/-vv output
    inventory: LoadedInventory = field(repr=False)

    def __str__(self) -> str:
        return f"{self.environment}:{self.name}"


def _has_section(target: Target, section: str) -> bool:
    value = getattr(target, section)
    return bool(value) if isinstance(value, list) else value is not None


def targets_for(loaded: list[LoadedInventory], sections: list[str]) -> list[TargetInfo]:
    """Every target of the loaded inventories that has all of ``sections`` (kind marker names)."""
    return [
        TargetInfo(inv.environment, t.name, t.host, tuple(t.tags), t, inv)
        for inv in loaded
        for t in inv.model.targets
        if all(_has_section(t, section) for section in sections)
    ]


class Prober:
    """Runs one probe now with the target's environment settings (same engine, timeouts, resolvers, CA, proxy)."""

    def __init__(self, engine: Engine, overrides: RunSettings, redactors: dict[str, Redactor] | None = None) -> None:
        self._engine = engine
        self._overrides = overrides
        self._redactors = redactors or {}

    def _check(self, target: TargetInfo, kind: Layer, subject: str, spec: Any) -> Check:
        return make_check(target.inventory, target.model, kind, subject, spec, self._overrides)

    def run(self, check: Check) -> CheckResult:
        """Run any planned check now, without dependencies; secrets in the result are masked."""
        result = self._engine.run(self._engine.check_now(check))
        redact = self._redactors.get(check.environment)
        if not redact:
            return result
        return dataclasses.replace(result, message=redact(result.message), details=redact.redact_data(result.details))

    def _planned(self, target: TargetInfo, kind: Layer, wanted: Callable[[Check], bool]) -> CheckResult:
        found = [c for c in self.checks(target) if c.kind is kind and wanted(c)]
        if not found:
            raise LookupError(f"target {target} has no matching {kind} expectation in its inventory")
        return self.run(found[0])

    def tls(self, target: TargetInfo, port: int | None = None) -> CheckResult:
        """Run the target's ``tls`` expectation for ``port`` (default: its first one)."""
        return self._planned(
            target, Layer.TLS, lambda c: port is None or (isinstance(c.spec, TlsSection) and c.spec.port == port)
        )

    def http(self, target: TargetInfo, url: str | None = None) -> CheckResult:
        """Run the target's ``http`` expectation for ``url`` (default: its first one)."""
        return self._planned(
            target, Layer.HTTP, lambda c: url is None or (isinstance(c.spec, HttpCheck) and c.spec.url == url)
        )

    def dns(self, target: TargetInfo, rdtype: str = "A", expect: str | list[str] = "present") -> CheckResult:
        if isinstance(expect, list):
            mode, values = "equal", tuple(expect)
        elif expect in ("present", "absent"):
            mode, values = expect, ()
        else:
            mode, values = "equal", (expect,)
        return self.run(self._check(target, Layer.DNS, rdtype, DnsCheckSpec(rdtype, mode, values, False)))

    def tcp(self, target: TargetInfo, port: int, expect: str = "open") -> CheckResult:
        return self.run(self._check(target, Layer.TCP, f"{port}/{expect}", TcpCheckSpec(port, expect)))

    def resolve(self, target: TargetInfo) -> tuple[str, ...]:
        """Every address the target's host resolves to with its resolvers (empty if it does not resolve)."""
        from pytest_autoglm.engine import dispatch

        check = self._check(target, Layer.TCP, "resolve", TcpCheckSpec(1, "open"))
        addresses, _ = self._engine.run(dispatch.resolve(target.host, check))
        return addresses

    def checks(self, target: TargetInfo) -> list[Check]:
        """The target's planned checks (as the inventory's items), to run some with :meth:`run`."""
        return [c for c in build_plan(target.inventory, self._overrides) if c.target == target.name]
