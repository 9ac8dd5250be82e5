"""The public API is what ``pytest_autoglm/__init__.py`` exports: changing it is a decision, not an accident."""

import pytest

import pytest_autoglm


def test_exported_members():
    assert sorted(pytest_autoglm.__all__) == sorted(
        [
            "AutoglmError",
            "CheckResult",
            "InventoryError",
            "Layer",
            "LoadedInventory",
            "Outcome",
            "Reason",
            "Verdict",
            "__version__",
            "cors",
            "dns",
            "http",
            "load_inventory",
            "tcp",
            "tls",
        ]
    )
    for name in pytest_autoglm.__all__:
        assert hasattr(pytest_autoglm, name), name


def test_markers_are_pytest_marks():
    for kind in ("dns", "tcp", "tls", "http", "cors"):
        mark = getattr(pytest_autoglm, kind)
        assert isinstance(mark, pytest.MarkDecorator)
        assert mark.name == kind


def test_reason_codes_are_the_contract():
    """results.md's table, never renamed (extensions: setup, vary_missing)."""
    contract = {
        "upstream",
        "timeout",
        "nxdomain",
        "nodata",
        "servfail",
        "refused",
        "mismatch",
        "unexpected",
        "inconsistent",
        "filtered",
        "unreachable",
        "unexpected_open",
        "unexpected_refused",
        "handshake",
        "untrusted",
        "hostname",
        "expired",
        "not_yet_valid",
        "expiring",
        "revoked",
        "no_ocsp_staple",
        "old_protocol",
        "protocol_unsupported",
        "status",
        "body",
        "slow",
        "auth",
        "protocol",
        "not_allowed",
        "allowed",
        "reflects_any_origin",
        "wildcard_credentials",
        "credentials",
        "preflight",
    }
    codes = {str(r) for r in pytest_autoglm.Reason}
    assert contract <= codes
    assert codes - contract == {"setup", "vary_missing", "overloaded"}
