"""Resolver specifications and expected DNS record values (pure: no network).

The inventory names resolvers as short strings (``system``, ``8.8.8.8``,
``tls://1.1.1.1``, ``https://dns.example/dns-query``). They are parsed once at
load time so a typo is a load error with a hint, not a failure at run time.

Record values are normalized here with the same function the DNS probe applies
to the answers, so an expectation and an answer compare equal exactly when
they mean the same record (``api.cdn.example.net`` == ``API.cdn.example.net.``,
``2001:DB8:0::1`` == ``2001:db8::1``).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

ResolverKind = Literal["system", "udp", "tcp", "tls", "https"]

#: Record types a ``dns:`` section may hold.
SUPPORTED_TYPES: tuple[str, ...] = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "PTR")

DEFAULT_PORTS: dict[str, int] = {"udp": 53, "tcp": 53, "tls": 853, "https": 443}

_EXPECTED_RESOLVER = "expected 'system', an IP address with optional :port, tcp://, tls:// or https://host/dns-query"

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class ResolverSpec:
    """One resolver of an inventory, parsed.

    ``host`` is an IP literal (compressed form) for ``udp``/``tcp``, an IP literal
    or a host name for ``tls`` and ``https``, and None for ``system``. ``text`` is
    the string the user wrote (stripped); reports and messages name resolvers by it.
    """

    kind: ResolverKind
    host: str | None
    port: int | None
    url: str | None
    text: str

    def __str__(self) -> str:
        return self.text


def _invalid(text: str, why: str | None = None) -> ValueError:
    detail = f"{why}; " if why else ""
    return ValueError(f"invalid resolver {text!r}: {detail}{_EXPECTED_RESOLVER}")


def _ip(value: str) -> str | None:
    """The compressed form of an IP literal, or None if ``value`` is not one."""
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return None


def _port(text: str, raw: str) -> int:
    if not _PORT_RE.match(raw):
        raise _invalid(text, f"port {raw!r} is not a number")
    port = int(raw)
    if not 1 <= port <= 65535:
        raise _invalid(text, f"port {port} is out of range 1..65535")
    return port


def _split_host_port(text: str, rest: str, default_port: int) -> tuple[str, int]:
    """Split ``addr``, ``addr:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 literal."""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise _invalid(text, "unclosed '['")
        host, tail = rest[1:end], rest[end + 1 :]
        if tail == "":
            return host, default_port
        if not tail.startswith(":"):
            raise _invalid(text, f"unexpected {tail!r} after ']'")
        return host, _port(text, tail[1:])
    if rest.count(":") == 1:
        host, raw = rest.split(":")
        return host, _port(text, raw)
    return rest, default_port  # no port, or a bare IPv6 literal (two or more colons)


def parse_resolver(text: str) -> ResolverSpec:
    """Parse one resolver string of the inventory; raise ValueError saying what would be right."""
    if not isinstance(text, str):
        # ValueError, not TypeError: the loader reports every bad inventory value the same way
        raise ValueError(f"invalid resolver {text!r}: expected a string; {_EXPECTED_RESOLVER}")
    stripped = text.strip()
    if not stripped or any(ch.isspace() or not ch.isprintable() for ch in stripped):
        raise _invalid(text, "empty or contains whitespace" if stripped else "empty")
    if stripped.lower() == "system":
        return ResolverSpec("system", None, None, None, stripped)

    scheme, sep, rest = stripped.partition("://")
    if not sep:
        scheme, rest = "udp", stripped
    scheme = scheme.lower()
    if scheme == "https":
        return _parse_doh(stripped)
    if scheme not in ("udp", "tcp", "tls"):
        raise _invalid(text, f"unknown scheme {scheme + '://'!r}")
    if not rest or "/" in rest or "?" in rest or "#" in rest or "@" in rest:
        raise _invalid(text, "expected addr[:port] with no path")

    host, port = _split_host_port(stripped, rest, DEFAULT_PORTS[scheme])
    ip = _ip(host)
    if ip is None:
        if scheme == "tls" and _HOSTNAME_RE.match(host):
            return ResolverSpec("tls", host.lower().rstrip("."), port, None, stripped)
        raise _invalid(
            text,
            f"{host!r} is not an IP address (a plain or tcp:// resolver must be an IP literal; "
            "named servers work with tls:// or https://)",
        )
    return ResolverSpec(scheme, ip, port, None, stripped)  # type: ignore[arg-type]


def _parse_doh(text: str) -> ResolverSpec:
    """``https://host[:port]/path`` (DNS over HTTPS, RFC 8484); the path is required."""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _invalid(text, str(exc)) from None
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None:
        raise _invalid(text, "credentials in the URL are not supported")
    if parts.fragment:
        raise _invalid(text, "a fragment is not allowed")
    if not host:
        raise _invalid(text, "missing host")
    ip = _ip(host)
    if ip is None and not _HOSTNAME_RE.match(host):
        raise _invalid(text, f"{host!r} is not a valid host name")
    if port is not None and not 1 <= port <= 65535:
        raise _invalid(text, f"port {port} is out of range 1..65535")
    if parts.path in ("", "/"):
        raise _invalid(text, "a DoH URL needs a path such as /dns-query")
    return ResolverSpec("https", ip or host.lower(), port or DEFAULT_PORTS["https"], text, text)


# --------------------------------------------------------------------------- record values

_VALUE_EXAMPLES: dict[str, str] = {
    "A": "an IPv4 address such as 192.0.2.10",
    "AAAA": "an IPv6 address such as 2001:db8::10",
    "CNAME": "a domain name such as target.example.com.",
    "NS": "a domain name such as ns1.example.com.",
    "PTR": "a domain name such as host.example.com.",
    "MX": "'preference exchange' such as '10 mail.example.com.'",
    "SRV": "'priority weight port target' such as '10 5 443 svc.example.com.'",
    "CAA": "'flags tag value' such as '0 issue \"letsencrypt.org\"'",
    "TXT": "any text",
}


def normalize_rdata(rdata: dns.rdata.Rdata) -> str:
    """The comparable text of one record: used for both expectations and answers.

    Names are lowercased and absolute (trailing dot); IPv6 compressed; TXT is the
    concatenation of its character-strings, unquoted; MX is ``"pref name."``.
    """
    rdtype = dns.rdatatype.to_text(rdata.rdtype)
    if rdtype == "A":
        return str(rdata.address)  # type: ignore[attr-defined]
    if rdtype == "AAAA":
        return ipaddress.IPv6Address(rdata.address).compressed  # type: ignore[attr-defined]
    if rdtype in ("CNAME", "NS", "PTR"):
        return str(rdata.target.canonicalize().to_text())  # type: ignore[attr-defined]
    if rdtype == "MX":
        return f"{rdata.preference} {rdata.exchange.canonicalize().to_text()}"  # type: ignore[attr-defined]
    if rdtype == "SRV":
        r = rdata
        return f"{r.priority} {r.weight} {r.port} {r.target.canonicalize().to_text()}"  # type: ignore[attr-defined]
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "backslashreplace")  # type: ignore[attr-defined]
    if rdtype == "CAA":
        flags, tag, value = rdata.to_text().split(" ", 2)
        return f"{flags} {tag.lower()} {value}"
    return rdata.to_text()


def validate_record_value(rdtype: str, value: str) -> str:
    """Check an expected record value for ``rdtype``; return its normalized text.

    TXT values are the record's text as one string (the character-strings
    joined); a value written in zone-file form with quotes (``"part1" "part2"``)
    is accepted too and joined.
    """
    kind = str(rdtype).upper()
    if kind not in SUPPORTED_TYPES:
        raise ValueError(f"unsupported record type {rdtype!r}: expected one of {', '.join(SUPPORTED_TYPES)}")
    if not isinstance(value, str):
        raise ValueError(f"invalid {kind} value {value!r}: expected a string, {_VALUE_EXAMPLES[kind]}")
    if kind == "TXT":
        stripped = value.strip()
        if len(stripped) >= 2 and stripped.startswith('"') and stripped.endswith('"'):
            try:
                return normalize_rdata(_from_text(kind, stripped))
            except ValueError:
                pass  # not zone-file syntax after all: take it literally
        return value
    if not value.strip():
        raise ValueError(f"invalid {kind} value {value!r}: empty; expected {_VALUE_EXAMPLES[kind]}")
    if kind in ("A", "AAAA"):  # the common case, 10x cheaper than a dnspython rdata
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            pass  # let dnspython word the error
        else:
            if address.version == (4 if kind == "A" else 6):
                return str(address)
    return normalize_rdata(_from_text(kind, value))


def _from_text(kind: str, value: str) -> dns.rdata.Rdata:
    try:
        # relativize=False with origin=root: "api.example.net" becomes "api.example.net."
        return dns.rdata.from_text(dns.rdataclass.IN, kind, value, origin=dns.name.root, relativize=False)
    except Exception as exc:
        why = str(exc) or type(exc).__name__
        raise ValueError(f"invalid {kind} value {value!r} ({why}): expected {_VALUE_EXAMPLES[kind]}") from None
