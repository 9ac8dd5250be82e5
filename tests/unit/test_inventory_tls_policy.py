"""The inventory keys of TLS policy and HTTP security: accepted forms, and errors with file:line:col and did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_autoglm.errors import InventoryError
from pytest_autoglm.inventory.validate import load_inventory

GOOD = """\
version: 1
targets:
  - name: api
    host: 192.0.2.10
    tls:
      port: 443
      policy: mozilla-intermediate
      ciphers: {forbid: [CBC, SHA1_MAC]}
      require_forward_secrecy: true
      key: {min_rsa_bits: 3072, min_ec_bits: 256}
      dh: {min_bits: 2048, safe_prime: true}
      aia_fetch: true
      revocation: {ocsp: true, crl: true}
    http:
      - url: https://www.example.test/
        connect_to: host
        hsts: {min_max_age: 15552000, include_subdomains: true}
        headers_present: [Content-Security-Policy]
        headers_absent: [X-Powered-By]
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    return load_inventory(path)


def test_every_new_key_is_accepted(tmp_path: Path) -> None:
    loaded = _load(tmp_path, GOOD)
    target = loaded.model.targets[0]  # type: ignore[attr-defined]
    tls = target.tls[0]
    assert (tls.policy, tls.ciphers.forbid, tls.dh.safe_prime, tls.revocation.crl) == (
        "mozilla-intermediate",
        ["CBC", "SHA1_MAC"],
        True,
        True,
    )
    assert target.http[0].hsts.min_max_age == 15552000


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("policy: mozilla-intermediate", "policy: mozilla-intermed", "inv.yaml:7:15: targets[0].tls.policy: expected"),
        ("ciphers: {forbid:", "ciphers: {forbd:", "inv.yaml:8:17: targets[0].tls.ciphers: unknown key 'forbd' (did you mean 'forbid'?)"),
        ("[CBC, SHA1_MAC]", "[CBC, SHA1]", "targets[0].tls.ciphers.forbid[1]: expected 'CBC'"),
        ("min_rsa_bits: 3072", "min_rsa_bits: 100", "targets[0].tls.key.min_rsa_bits: must be >= 512, got 100"),
        ("dh: {min_bits", "dh: {minbits", "unknown key 'minbits' (did you mean 'min_bits'?)"),
        ("revocation: {ocsp", "revocation: {oscp", "unknown key 'oscp' (did you mean 'ocsp'?)"),
        ("aia_fetch: true", "aia_fetc: true", "unknown key 'aia_fetc' (did you mean 'aia_fetch'?)"),
        ("hsts: {min_max_age", "hsts: {max_age", "targets[0].http[0].hsts: unknown key 'max_age'"),
        ("headers_absent: [X-Powered-By]", "headers_absent: [Content-Security-Policy]", "in both headers_present and headers_absent"),
        ("host: 192.0.2.10", "host: api.example.test", "connect_to: host needs the target's host to be an IP address"),
        ("url: https://www", "url: http://www", "hsts needs an https:// url"),
    ],
    ids=["policy", "ciphers-key", "cipher-class", "rsa-bits", "dh-key", "revocation-key", "aia", "hsts-key",
         "headers-both", "connect-to-name", "hsts-http"],
)  # fmt: skip
def test_errors_say_where_and_what(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    with pytest.raises(InventoryError) as caught:
        _load(tmp_path, GOOD.replace(old, new))
    assert expected in str(caught.value), str(caught.value)
