"""Chains over OpenSSL's certificate-list limit: read them from the wire and judge them anyway.

OpenSSL refuses a Certificate message over ``max_cert_list`` (100 KiB) with "excessive message
size"; browsers accept several hundred KiB (a 10,000-name certificate is about 210 KiB). Neither
pyOpenSSL nor the OpenSSL inside ``cryptography`` exposes ``SSL_CTX_set_max_cert_list``, so
instead of raising the limit the probe sends its own TLS 1.2 ClientHello (:mod:`.wire`), reads
the chain from the server's first flight (plain text before TLS 1.3), verifies it with OpenSSL's
chain builder (``X509StoreContext``: the same store, flags and anchors as the handshake) and
judges names and validity as for any chain. A server that speaks only TLS 1.3 encrypts its
certificate, so it cannot be read this way: the verdict then says so (``handshake``).
"""

from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509
from OpenSSL import crypto

from pytest_autoglm.probes.errmap import LocalSetupError
from pytest_autoglm.probes.tls.chain import load_der
from pytest_autoglm.probes.tls.handshake import _NO_CHECK_TIME, ContextKey
from pytest_autoglm.probes.tls.suites import GROUPS, LEGACY_SUITES, suite_name
from pytest_autoglm.probes.tls.wire import Hello, client_hello, server_hello

#: OpenSSL's default ``max_cert_list`` (ssl.h SSL_MAX_CERT_LIST_DEFAULT), for messages.
OPENSSL_MAX_CERT_LIST = 100 * 1024


async def read_chain(address: str, port: int, sni: str | None, deadline: float) -> Hello:
    """The server's TLS 1.2 first flight, its chain included."""
    hello = client_hello("TLSv1.2", LEGACY_SUITES, tuple(GROUPS), sni)
    return await server_hello(address, port, hello, deadline, full_flight=True)


def _store(key: ContextKey) -> crypto.X509Store:
    store = crypto.X509Store()
    paths = ssl.get_default_verify_paths()
    if paths.cafile or paths.capath:
        store.load_locations(paths.cafile, paths.capath)
    if key.ca_bundle is not None:
        try:
            store.load_locations(key.ca_bundle[0])
        except crypto.Error as exc:
            raise LocalSetupError(f"ca_bundle {key.ca_bundle[0]}: no usable certificate ({exc})") from None
    store.set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN | _NO_CHECK_TIME)
    return store


def verify(key: ContextKey, sent: list[x509.Certificate]) -> tuple[list[tuple[int, int]], list[x509.Certificate]]:
    """(verify errors as (code, depth), the verified chain) of ``sent``, leaf first."""
    leaf = crypto.X509.from_cryptography(sent[0])
    chain = [crypto.X509.from_cryptography(c) for c in sent[1:]]
    context = crypto.X509StoreContext(_store(key), leaf, chain)
    try:
        built = context.get_verified_chain()
    except crypto.X509StoreContextError as exc:
        code, depth = int(exc.errors[0]), int(exc.errors[1])
        return [(code, depth)], []
    return [], [load_der(crypto.dump_certificate(crypto.FILETYPE_ASN1, c)) for c in built]


def details_of(hello: Hello, address: str, port: int, sni: str | None) -> dict[str, Any]:
    return {
        "address": address,
        "port": port,
        "sni": sni,
        "version": hello.version,
        "cipher": suite_name(hello.suite) if hello.suite is not None else None,
        "certificate_list_bytes": hello.certificate_bytes,
        "chain_read_from": (
            f"the server's TLS 1.2 first flight (the chain exceeds OpenSSL's {OPENSSL_MAX_CERT_LIST // 1024} KiB"
            " certificate-list limit, which browsers do not have)"
        ),
    }
