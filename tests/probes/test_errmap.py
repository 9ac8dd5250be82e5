"""The one error-to-reason table per protocol family (probes/errmap.py)."""

from __future__ import annotations

import errno
import socket

import pytest

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes import errmap


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (errno.ECONNREFUSED, Reason.REFUSED),
        (errno.ETIMEDOUT, Reason.FILTERED),
        (errno.EHOSTUNREACH, Reason.UNREACHABLE),
        (errno.ENETUNREACH, Reason.UNREACHABLE),
        (errno.EMFILE, None),  # this machine's fault: never a fact about the target
        (None, None),
    ],
)
def test_connect_reason(number: int | None, reason: Reason | None) -> None:
    assert errmap.connect_reason(number) is reason


def test_local_errnos_are_never_target_reasons() -> None:
    assert all(errmap.connect_reason(n) is None for n in errmap.LOCAL_ERRNOS)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(socket.EAI_NONAME, Reason.NXDOMAIN), (socket.EAI_AGAIN, Reason.SERVFAIL), (None, Reason.SERVFAIL)],
)
def test_lookup_reason(code: int | None, reason: Reason) -> None:
    assert errmap.lookup_reason(code) is reason


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errmap.V_CERT_HAS_EXPIRED, Reason.EXPIRED),
        (errmap.V_CERT_NOT_YET_VALID, Reason.NOT_YET_VALID),
        (errmap.V_CERT_REVOKED, Reason.REVOKED),
        (errmap.V_HOSTNAME_MISMATCH, Reason.HOSTNAME),
        (errmap.V_IP_ADDRESS_MISMATCH, Reason.HOSTNAME),
        (errmap.V_DEPTH_ZERO_SELF_SIGNED, Reason.UNTRUSTED),
        (errmap.V_UNABLE_TO_GET_ISSUER_LOCALLY, Reason.UNTRUSTED),
        (7, Reason.HANDSHAKE),  # a bad signature: not one of the named reasons
        (None, Reason.HANDSHAKE),
    ],
)
def test_verify_reason(code: int | None, reason: Reason) -> None:
    assert errmap.verify_reason(code) is reason


def test_verify_text_has_words_for_every_code_it_names_and_a_fallback() -> None:
    for code in (*errmap.CHAIN_ERRORS, errmap.V_CERT_HAS_EXPIRED, errmap.V_HOSTNAME_MISMATCH):
        assert "verification error" not in errmap.verify_text(code)
    assert errmap.verify_text(9999) == "certificate verification error 9999"
