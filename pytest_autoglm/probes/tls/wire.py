"""TLS on the wire, without OpenSSL: a ClientHello we write ourselves and the server's first flight read back.

Why: what a server *accepts* is decided by its answer to a ClientHello, and that answer
(ServerHello, and before TLS 1.3 the Certificate and ServerKeyExchange messages) is plain
text. Writing the hello ourselves lets one connection offer exactly the versions, suites and
groups a question needs, with no key exchange done and nothing refused on our side (OpenSSL
here has no RC4/3DES/EXPORT and refuses small DH groups, so it could not ask about them).
It also reads certificate chains larger than OpenSSL's 100 KiB ``max_cert_list``, which
neither pyOpenSSL nor the statically linked OpenSSL of ``cryptography`` lets us raise.

One :func:`server_hello` call is one TCP connection: the hello goes out, records are read
until the question is answered (or an alert, EOF, or the deadline), and the socket is
closed without finishing the handshake.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Final

from pytest_autoglm.core.vocabulary import Reason
from pytest_autoglm.probes.tcp import LocalSocketError, PortState, connect_socket

#: Wire versions of the inventory's version names.
WIRE_VERSION: Final[dict[str, int]] = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
VERSION_NAME: Final[dict[int, str]] = {v: k for k, v in WIRE_VERSION.items()} | {0x0300: "SSLv3"}

#: RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
_HRR_RANDOM: Final = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

#: Signature algorithms offered (RFC 8446 4.2.3), weak ones included so old servers answer.
_SIGALGS: Final[tuple[int, ...]] = (
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808,
    0x0401, 0x0501, 0x0601, 0x0809, 0x080A, 0x080B, 0x0201, 0x0203, 0x0202, 0x0402, 0x0502, 0x0602,
)  # fmt: skip

#: A TLS record never exceeds 2^14 + 2048 bytes of payload (RFC 8446 5.2); more is not TLS.
_MAX_RECORD: Final = 18432

#: A sanity bound on one handshake flight (browsers accept chains of several hundred KiB).
MAX_FLIGHT_BYTES: Final = 4 * 1024 * 1024

_EMPTY_RENEGOTIATION_SCSV: Final = 0x00FF


def _u8(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _u16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u24(data: bytes) -> bytes:
    return struct.pack("!I", len(data))[1:] + data


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + _u16(body)


def client_hello(version: str, suites: tuple[int, ...], groups: tuple[int, ...], sni: str | None) -> bytes:
    """One ClientHello record offering exactly ``version`` (a name of :data:`WIRE_VERSION`).

    TLS 1.3 sends an empty key_share, so the server answers with a HelloRetryRequest naming
    the group it picked (RFC 8446 4.2.8): no key is generated, the answer is the question's.
    """
    wire = WIRE_VERSION[version]
    tls13 = wire == 0x0304
    offered = list(suites) + ([] if tls13 else [_EMPTY_RENEGOTIATION_SCSV])
    extensions = b""
    if sni:
        name = sni.encode("ascii")
        extensions += _ext(0, _u16(b"\x00" + _u16(name)))
    if groups:
        extensions += _ext(10, _u16(b"".join(struct.pack("!H", g) for g in groups)))
        extensions += _ext(11, _u8(b"\x00"))  # ec_point_formats: uncompressed
    if wire >= 0x0303:
        extensions += _ext(13, _u16(b"".join(struct.pack("!H", s) for s in _SIGALGS)))
    extensions += _ext(23, b"")  # extended_master_secret
    if tls13:
        extensions += _ext(43, _u8(struct.pack("!H", 0x0304)))  # supported_versions
        extensions += _ext(45, _u8(b"\x01"))  # psk_key_exchange_modes: psk_dhe_ke
        extensions += _ext(51, _u16(b""))  # key_share: no share, ask for a retry
    body = (
        struct.pack("!H", min(wire, 0x0303))
        + os.urandom(32)
        + _u8(os.urandom(32))
        + _u16(b"".join(struct.pack("!H", s) for s in offered))
        + _u8(b"\x00")
        + _u16(extensions)
    )
    handshake = b"\x01" + _u24(body)
    return b"\x16" + struct.pack("!H", 0x0301) + _u16(handshake)


@dataclass
class Hello:
    """What the server answered to one ClientHello."""

    version: str | None = None  # the negotiated version's name (None: no ServerHello)
    suite: int | None = None
    group: int | None = None  # TLS 1.3 key share / HelloRetryRequest group, or the ECDHE curve of TLS <= 1.2
    retry: bool = False  # a HelloRetryRequest
    certificates: list[bytes] = field(default_factory=list)  # DER, as sent (TLS <= 1.2 only)
    certificate_bytes: int = 0  # size of the Certificate message's list
    dh_p: int | None = None  # DHE parameters from the ServerKeyExchange (TLS <= 1.2)
    dh_g: int | None = None
    alert: int | None = None  # the alert the server sent instead
    error: str | None = None  # no answer: timeout, EOF, not TLS, ...
    tcp: tuple[Reason, str] | None = None  # the TCP connect failed

    @property
    def accepted(self) -> bool:
        return self.version is not None


class _Malformed(Exception):
    pass


def _parse_server_hello(body: bytes, hello: Hello) -> None:
    if len(body) < 38:
        raise _Malformed("short ServerHello")
    legacy = struct.unpack("!H", body[0:2])[0]
    hello.retry = body[2:34] == _HRR_RANDOM
    pos = 34
    sid_len = body[pos]
    pos += 1 + sid_len
    hello.suite = struct.unpack("!H", body[pos : pos + 2])[0]
    pos += 3  # suite, compression
    version = legacy
    if pos + 2 <= len(body):
        end = pos + 2 + struct.unpack("!H", body[pos : pos + 2])[0]
        pos += 2
        while pos + 4 <= end:
            kind, length = struct.unpack("!HH", body[pos : pos + 4])
            data = body[pos + 4 : pos + 4 + length]
            if kind == 43 and length == 2:
                version = struct.unpack("!H", data)[0]
            elif kind == 51 and length >= 2:
                hello.group = struct.unpack("!H", data[:2])[0]
            pos += 4 + length
    hello.version = VERSION_NAME.get(version, f"0x{version:04x}")


def _parse_certificate(body: bytes, hello: Hello) -> None:
    total = int.from_bytes(body[0:3], "big")
    hello.certificate_bytes = total
    pos = 3
    while pos + 3 <= 3 + total and pos + 3 <= len(body):
        length = int.from_bytes(body[pos : pos + 3], "big")
        hello.certificates.append(body[pos + 3 : pos + 3 + length])
        pos += 3 + length


def _parse_key_exchange(body: bytes, hello: Hello) -> None:
    """ECDHE (curve_type 3 = named_curve) or DHE (p, g, Ys); told apart by the suite's name."""
    from pytest_autoglm.probes.tls.suites import SUITES  # the suite table, not needed for parsing hellos

    suite = SUITES.get(hello.suite or -1)
    if suite is None:
        return
    if suite.kx == "ECDHE" and len(body) >= 3 and body[0] == 3:
        hello.group = struct.unpack("!H", body[1:3])[0]
    elif suite.kx == "DHE" and len(body) >= 2:
        p_len = struct.unpack("!H", body[0:2])[0]
        hello.dh_p = int.from_bytes(body[2 : 2 + p_len], "big")
        g_len = struct.unpack("!H", body[2 + p_len : 4 + p_len])[0]
        hello.dh_g = int.from_bytes(body[4 + p_len : 4 + p_len + g_len], "big")


class _Reader:
    """Exact reads from a non-blocking socket through the event loop."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    async def exactly(self, count: int) -> bytes:
        loop = asyncio.get_running_loop()
        while len(self._buffer) < count:
            data = await loop.sock_recv(self._sock, 65536)
            if not data:
                raise EOFError
            self._buffer += data
        chunk, self._buffer = self._buffer[:count], self._buffer[count:]
        return chunk


async def server_hello(
    address: str,
    port: int,
    hello_record: bytes,
    deadline: float,
    *,
    full_flight: bool = False,
) -> Hello:
    """Send ``hello_record``; read the ServerHello (and with ``full_flight`` up to ServerHelloDone)."""
    loop = asyncio.get_running_loop()
    result = Hello()
    try:
        connected = await connect_socket(address, port, max(deadline - loop.time(), 0.0))
    except LocalSocketError as exc:
        result.tcp = (Reason.SETUP, str(exc.strerror))
        return result
    if not isinstance(connected, socket.socket):
        state, text = connected
        reason = {PortState.REFUSED: Reason.REFUSED, PortState.FILTERED: Reason.FILTERED}.get(state, Reason.UNREACHABLE)
        result.tcp = (reason, text)
        return result
    sock = connected
    try:
        async with asyncio.timeout_at(deadline):
            await loop.sock_sendall(sock, hello_record)
            await _read_flight(_Reader(sock), result, full_flight)
    except TimeoutError:
        result.error = "no answer to the ClientHello in time"
    except EOFError:
        result.error = "the server closed the connection"
    except (_Malformed, struct.error, IndexError) as exc:
        result.error = f"not a TLS answer ({exc})"
    except OSError as exc:
        result.error = f"the connection broke: {exc.strerror or exc}"
    finally:
        sock.close()
    return result


async def _read_flight(reader: _Reader, result: Hello, full_flight: bool) -> None:
    pending = b""
    seen = 0
    while True:
        header = await reader.exactly(5)
        kind, _version, length = struct.unpack("!BHH", header)
        if kind not in (20, 21, 22) or length > _MAX_RECORD:
            raise _Malformed(f"record type {kind}, length {length}")
        payload = await reader.exactly(length)
        seen += length
        if seen > MAX_FLIGHT_BYTES:
            raise _Malformed(f"more than {MAX_FLIGHT_BYTES} bytes before ServerHelloDone")
        if kind == 21:
            if len(payload) >= 2:
                result.alert = payload[1]
            return
        if kind == 20:
            continue  # TLS 1.3 middlebox-compatibility ChangeCipherSpec
        pending += payload
        while len(pending) >= 4:
            msg_type = pending[0]
            msg_len = int.from_bytes(pending[1:4], "big")
            if len(pending) < 4 + msg_len:
                break
            body, pending = pending[4 : 4 + msg_len], pending[4 + msg_len :]
            if msg_type == 2:
                _parse_server_hello(body, result)
                if not full_flight or result.retry or result.version in ("TLSv1.3", None):
                    return
            elif msg_type == 11:
                _parse_certificate(body, result)
            elif msg_type == 12:
                _parse_key_exchange(body, result)
            elif msg_type == 14:
                return  # ServerHelloDone
