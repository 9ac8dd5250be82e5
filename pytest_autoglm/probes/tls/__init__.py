"""The TLS layer: trust, name, validity, protocol versions, OCSP stapling, mTLS.

One :func:`check_tls` call is ONE attempt against one resolved address; the
engine fans out over addresses and retries transient failures.

How a handshake is driven
    pyOpenSSL through memory BIOs over a non-blocking socket: the event loop
    moves bytes, OpenSSL never touches the socket, so nothing blocks and one
    ``asyncio`` deadline bounds everything (TCP connect, a server that never
    answers the ClientHello or stalls mid-handshake, the extra handshakes for
    version probing). Python's ``ssl`` is not used: it cannot show a stapled
    OCSP response nor the chain the server sent.

How the certificate is judged
    OpenSSL builds and verifies the chain against the system store plus
    ``ca_bundle`` (certificates there are anchors even when not self-signed:
    ``PARTIAL_CHAIN``), but its verify callback only *records* errors, so the
    handshake completes and everything can be reported at once. Time checks
    are switched off in OpenSSL (``NO_CHECK_TIME``) and done here against
    ``now``, so validity is judged with one clock. Names are matched here too
    (SAN DNS names, a wildcard only as the whole left-most label matching one
    label; IP SANs for IP literals; the subject CN only when there is no SAN).

Precedence when several problems apply (the first is the verdict's reason;
the others are listed in ``details["problems"]``):
    ``untrusted`` > ``hostname`` > ``revoked`` > ``expired`` >
    ``not_yet_valid`` > ``expiring`` > ``no_ocsp_staple`` > ``old_protocol`` >
    ``protocol_unsupported``.
    Trust comes first because facts about a certificate that cannot be
    trusted (an interception proxy's, a default vhost's) are facts about the
    wrong certificate: "expired" would send the on-call person to renew a
    certificate that is not the problem. For a trusted chain, expiry is
    reported as ``expired`` (as ``openssl s_client -verify_return_error``
    says "certificate has expired"), also when an intermediate expired.

Telling "self-signed", "unknown CA" and "incomplete chain" apart
    (all ``untrusted``): a self-signed leaf is one; a chain that ends in a
    self-signed root the server sent, or in an intermediate the server sent
    whose issuer is not an anchor, is an unknown CA; a leaf sent alone whose
    issuer is unknown is an incomplete chain when the leaf names its issuer's
    URL (Authority Information Access, present in every public CA's leaves);
    without that hint both are possible and the message says so. Nothing is
    fetched: a probe talks to the target only.

Client certificates
    An info callback notes whether the server asked for a certificate and
    which alert it sent, so "the server required a client certificate" is
    told apart from other handshake failures. In TLS 1.3 the server judges
    the client certificate after the client's handshake has finished, so when
    one was requested the probe reads briefly after the handshake for the
    server's verdict (its session tickets, or an alert).

No pytest here, and nothing raises for a verdict. A bad expectation raises
``ValueError`` (a bug of the caller); an unreadable CA bundle or client key
gives reason ``setup``.

The parts, one concern each: ``expectation`` (what is expected), ``handshake`` (contexts and
one handshake), ``chain`` (names, trust, validity), ``ocsp`` (the stapled response),
``versions`` (version probes and the precedence of problems) and ``check`` (one attempt);
``wire`` (ClientHellos of our own), ``suites`` (the suite and group tables), ``enumerate``
(what the server accepts), ``policy`` (Mozilla's profiles and explicit rules) and
``oversized`` (chains over OpenSSL's certificate-list limit).
"""

from pytest_autoglm.probes.tls.chain import cert_covers_name
from pytest_autoglm.probes.tls.check import check_tls
from pytest_autoglm.probes.tls.expectation import TLS_VERSIONS, TlsExpectation
from pytest_autoglm.probes.tls.handshake import clear_context_cache
from pytest_autoglm.probes.tls.policy import MOZILLA_VERSION, PROFILES, TlsPolicy, expectation_extras
from pytest_autoglm.probes.tls.suites import CIPHER_CLASSES

__all__ = [
    "CIPHER_CLASSES",
    "MOZILLA_VERSION",
    "PROFILES",
    "TLS_VERSIONS",
    "TlsExpectation",
    "TlsPolicy",
    "cert_covers_name",
    "check_tls",
    "clear_context_cache",
    "expectation_extras",
]
