"""The public API is what ``pytest_autoglm/__init__.py`` exports: changing it is a decision, not an accident."""

import subprocess
import sys

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


def test_importing_the_package_imports_nothing_else():
    """Every pytest session loads the plugin, and the inventory package is usable without pytest:
    the public names are imported on first use."""
    code = (
        "import sys, pytest_autoglm\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest', 'pydantic', 'httpx', 'yaml')"
        " or m.startswith('pytest_autoglm.')]\n"
        "assert not loaded, loaded\n"
        "from pytest_autoglm import tcp, Reason, load_inventory\n"
        "print(tcp.name, Reason.TIMEOUT, load_inventory.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tcp", "timeout", "load_inventory"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'target'"):
        pytest_autoglm.target  # noqa: B018


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
    tls_policy = {"weak_cipher", "weak_key_exchange", "weak_key", "weak_signature", "incomplete_chain"}
    extensions = {"setup", "vary_missing", "revocation_unknown", "hsts", "header", *tls_policy}
    issue_19 = {
        "not_serving",
        "unimplemented",
        "unavailable",
        "deadline",
        "stream_slow",
        "stream_incomplete",
        "proxy",
        "loss",
        "unexpected_reply",
        "degraded",
        "not_enough",
    }
    assert codes - contract == extensions | issue_19 | {"overloaded", "vantage_unreachable"}
