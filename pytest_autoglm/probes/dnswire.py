"""The engine's most common DNS question written and read straight from the wire (RFC 1035 4.1).

dnspython builds and parses every message as objects (names, rdatasets, enums); at thousands of
questions per run that was half of the engine's CPU. The common case, A or AAAA of a plain
ASCII name answered with records of that very name, is simple enough to do by hand. Anything
else gives ``None`` or :data:`FULL_PARSE` and goes through dnspython as before: names that need
IDNA or escapes, CNAME chains, truncated answers, unexpected layouts. The tests check this
module against dnspython on generated messages.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from dataclasses import dataclass
from typing import Final

RDTYPES: Final = {"A": 1, "AAAA": 28}
_CNAME, _OPT, _IN = 5, 41, 1
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}\Z")
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_QR, _TC, _RD = 0x8000, 0x0200, 0x0100

#: The answer is one to this question, but not the plain case: parse it in full.
FULL_PARSE: Final = object()


@dataclass(frozen=True)
class PlainQuery:
    qid: int
    rdtype: int
    qname: bytes  # the name in wire format, lowercased, for comparing with the answer's question
    wire: bytes


@dataclass(frozen=True)
class PlainAnswer:
    rcode: int
    records: tuple[str, ...]  # sorted, unique, normalized as inventory.resolvers.normalize_rdata does


def plain_query(qid: int, name: str, rdtype: str, payload: int) -> PlainQuery | None:
    """The query for ``name`` ``rdtype`` (RD set, EDNS0 with ``payload``), or None if not a plain case."""
    code = RDTYPES.get(rdtype)
    if code is None:
        return None
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if not all(_PLAIN_LABEL.match(label) for label in labels):
        return None
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"
    if len(qname) > 255:
        return None
    header = _HEADER.pack(qid, _RD, 1, 0, 0, 1)
    opt = b"\0" + _RR_FIXED.pack(_OPT, payload, 0, 0)
    return PlainQuery(qid, code, qname.lower(), header + qname + struct.pack("!HH", code, _IN) + opt)


def read_answer(data: bytes, query: PlainQuery) -> PlainAnswer | object | None:
    """The answer to ``query``; :data:`FULL_PARSE` when it needs dnspython; None if it is not an answer to it."""
    try:
        return _read(data, query)
    except (struct.error, IndexError, ValueError):
        return FULL_PARSE if _answers(data, query) else None


def _answers(data: bytes, query: PlainQuery) -> bool:
    """Header and question match the query (so a failure past them is a message to parse in full)."""
    if len(data) < 12 + len(query.qname) + 4:
        return False
    qid, flags, qdcount = struct.unpack_from("!HHH", data)
    end = 12 + len(query.qname)
    return (
        qid == query.qid
        and bool(flags & _QR)
        and (flags >> 11) & 0xF == 0
        and qdcount == 1
        and data[12:end].lower() == query.qname
        and struct.unpack_from("!HH", data, end) == (query.rdtype, _IN)
    )


def _read(data: bytes, query: PlainQuery) -> PlainAnswer | object | None:
    if not _answers(data, query):
        return None
    _, flags, _, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & _TC:
        return FULL_PARSE
    offset = 12 + len(query.qname) + 4
    records: set[str] = set()
    for _ in range(ancount):
        owner_is_qname, offset = _owner(data, offset, query.qname)
        rtype, rclass, _, length = _RR_FIXED.unpack_from(data, offset)
        offset += _RR_FIXED.size
        rdata = data[offset : offset + length]
        offset += length
        if len(rdata) != length or not owner_is_qname or rclass != _IN or rtype != query.rdtype:
            return FULL_PARSE  # CNAME chains, other owners or types: dnspython's job
        records.add(_address(rdata, query.rdtype))
    for _ in range(nscount):
        offset = _skip_rr(data, offset)
    rcode = flags & 0xF
    for _ in range(arcount):
        fixed = _skip_name(data, offset)
        rtype, _, ttl, length = _RR_FIXED.unpack_from(data, fixed)
        if rtype == _OPT:
            rcode |= (ttl >> 24) << 4  # EDNS extended rcode
        offset = fixed + _RR_FIXED.size + length
    if offset > len(data):
        return FULL_PARSE
    return PlainAnswer(rcode, tuple(sorted(records)))


def _owner(data: bytes, offset: int, qname: bytes) -> tuple[bool, int]:
    """Whether the name at ``offset`` is ``qname`` (the question's, at offset 12), and the offset past it."""
    if data[offset] & 0xC0 == 0xC0:
        pointer = ((data[offset] & 0x3F) << 8) | data[offset + 1]
        return pointer == 12, offset + 2
    end = _skip_name(data, offset)
    return data[offset:end].lower() == qname, end


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        size = data[offset]
        if size == 0:
            return offset + 1
        if size & 0xC0 == 0xC0:
            return offset + 2
        if size & 0xC0:
            raise ValueError("bad label type")
        offset += 1 + size


def _skip_rr(data: bytes, offset: int) -> int:
    offset = _skip_name(data, offset)
    _, _, _, length = _RR_FIXED.unpack_from(data, offset)
    return offset + _RR_FIXED.size + int(length)


def _address(rdata: bytes, rdtype: int) -> str:
    if rdtype == RDTYPES["A"] and len(rdata) == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if rdtype == RDTYPES["AAAA"] and len(rdata) == 16:
        return ipaddress.IPv6Address(rdata).compressed
    raise ValueError("bad address length")
