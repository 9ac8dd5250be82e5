"""A result's own severity: the one rule (a result can lower a critical check to a warning, never raise
a warning check) and its journey intact across processes (pickled by the forked engine)."""

from __future__ import annotations

import pickle

import pytest

from pytest_autoglm.core.records import CheckResult, Verdict, effective_severity
from pytest_autoglm.core.vocabulary import Layer, Outcome, Reason


def _result(severity: str | None) -> CheckResult:
    return CheckResult(Outcome.FAILED, Layer.GROUP, Reason.DEGRADED, "degraded", severity=severity)


@pytest.mark.parametrize(
    ("check", "own", "effective"),
    [
        ("critical", None, "critical"),
        ("critical", "warning", "warning"),
        ("warning", None, "warning"),
        ("warning", "critical", "warning"),  # a warning check stays a warning
    ],
)
def test_effective_severity(check: str, own: str | None, effective: str) -> None:
    assert effective_severity(check, _result(own)) == effective


def test_no_result_has_the_checks_severity() -> None:
    assert effective_severity("critical", None) == "critical"


def test_the_severity_survives_pickling() -> None:
    verdict = Verdict.fail(Layer.TLS, Reason.REVOCATION_UNKNOWN, "no answer", severity="warning")
    assert pickle.loads(pickle.dumps(verdict)).severity == "warning"
    result = pickle.loads(pickle.dumps(_result("warning")))
    assert result == _result("warning") and type(result.severity) is str
    assert "severity" not in result.to_dict()  # the report's severity is the plugin's (effective) one
