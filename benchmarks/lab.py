"""The benchmark's lab: peers on loopback and in a network namespace, all bounded in time.

What a target of the benchmark can be (see ``bench.py``):

- **open**: a name that resolves to one of several 127.0.0.x listeners that accept and close;
- **refused**: a name that resolves to 127.0.1.x, a port nothing listens on (the kernel sends RST);
- **dropped**: a name that resolves to the lab side of a :class:`tests.fakes.netns.NetnsLab`,
  a port an nft rule drops (needs root);
- **web**: a name that resolves to 127.0.0.1, the port of an HTTPS uvicorn (certificate for
  ``*.bench.test`` from a trustme CA) - one tcp, one tls and one http item.

Names are answered by a DNS server on 127.0.0.1 (``--dns``):

- ``fast`` (default): an asyncio UDP responder in its own process with every answer
  prebuilt (a few microseconds per query) and a 16 MiB receive buffer;
- ``fake``: the test suite's :class:`tests.fakes.dns_server.FakeDnsServer` (threaded dnspython),
  run in the lab's server process;
- ``nsd``: Debian's nsd with a generated zone (``apt-get install -y nsd``).

Every process started here is ours, is stopped by PID, and also exits by itself when its
parent is gone or after ``max_seconds``. Run as a module only through ``bench.py``; the
``serve`` and ``https`` subcommands are the entry points of those child processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ZONE = "bench.test"
OPEN_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 10)]  # 8 listeners
REFUSED_NET = "127.0.1."  # nothing binds there
READY_TIMEOUT = 15.0


# --------------------------------------------------------------------------- the fast DNS responder


def _parse_question(wire: bytes) -> tuple[bytes, int, int] | None:
    """(lower-case name in wire form, qtype, end of the question) of a query, or None."""
    if len(wire) < 17:
        return None
    i = 12
    for _ in range(128):
        n = wire[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            return None
        i += 1 + n
        if i >= len(wire):
            return None
    else:
        return None
    if i + 4 > len(wire):
        return None
    qtype = struct.unpack_from("!H", wire, i)[0]
    return wire[12:i].lower(), qtype, i + 4


def _wire_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def _soa_record() -> bytes:
    """The zone's SOA as an authority record (what a real server sends with NODATA and NXDOMAIN)."""
    rdata = _wire_name(f"ns.{ZONE}") + _wire_name(f"hostmaster.{ZONE}") + struct.pack("!IIIII", 1, 3600, 600, 86400, 60)
    return _wire_name(ZONE) + struct.pack("!HHIH", 6, 1, 300, len(rdata)) + rdata


class FastDns(asyncio.DatagramProtocol):
    """Authoritative for the zone given; A from the zone, NODATA for any other type, NXDOMAIN else.

    Negative answers carry the zone's SOA in the authority section, as real servers' do; positive
    answers are minimal (no NS/glue), as a recursive resolver's usually are.
    """

    def __init__(self, zone: dict[str, str]) -> None:
        self.answers = {_wire_name(name).lower(): socket.inet_aton(ip) for name, ip in zone.items()}
        self.soa = _soa_record()
        self.transport: asyncio.DatagramTransport | None = None
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, wire: bytes, addr: tuple[str, int]) -> None:
        parsed = _parse_question(wire)
        if parsed is None:
            return
        self.count += 1
        name, qtype, end = parsed
        rd = wire[2] & 0x01
        ip = self.answers.get(name)
        if ip is None:
            rcode, records, an, ns = 3, self.soa, 0, 1  # NXDOMAIN
        elif qtype == 1:
            rcode, records, an, ns = 0, b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + ip, 1, 0
        else:
            rcode, records, an, ns = 0, self.soa, 0, 1  # NODATA
        flags = 0x8000 | 0x0400 | (rd << 8) | 0x0080 | rcode
        header = wire[:2] + struct.pack("!HHHHH", flags, 1, an, ns, 0)
        assert self.transport is not None
        self.transport.sendto(header + wire[12:end] + records, addr)


def _big_udp_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 16 << 20)
            break
        except OSError:
            continue
    sock.bind((host, 0))
    return sock


class _CloseAtOnce(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def _serve(
    zone_file: str | None, listen: list[str], parent: int, max_seconds: float, dns_impl: str = "fast"
) -> None:
    loop = asyncio.get_running_loop()
    ready: dict[str, Any] = {"listeners": []}
    dns_proto: FastDns | None = None
    fake: Any = None
    if zone_file and dns_impl == "fast":
        zone = json.loads(Path(zone_file).read_text())
        sock = _big_udp_socket("127.0.0.1")
        _, proto = await loop.create_datagram_endpoint(lambda: FastDns(zone), sock=sock)
        dns_proto = proto  # type: ignore[assignment]
        ready["dns_port"] = sock.getsockname()[1]
        ready["dns_rcvbuf"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    elif zone_file and dns_impl == "fake":
        sys.path.insert(0, str(ROOT))
        from tests.fakes.dns_server import FakeDnsServer

        zone = json.loads(Path(zone_file).read_text())
        fake = FakeDnsServer({name: {"A": [ip]} for name, ip in zone.items()}).__enter__()
        ready["dns_port"] = fake.port
        ready["dns_rcvbuf"] = 0
    servers = []
    for address in listen:
        server = await loop.create_server(_CloseAtOnce, address, 0, backlog=4096, reuse_address=True)
        servers.append(server)
        ready["listeners"].append([address, server.sockets[0].getsockname()[1]])
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(json.dumps(ready), flush=True)
    for _ in range(max(1, int(max_seconds * 4))):
        if os.getppid() != parent or stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
    if dns_proto is not None:
        print(json.dumps({"dns_queries": dns_proto.count}), flush=True)
    if fake is not None:
        print(json.dumps({"dns_queries": fake.queries}), flush=True)
        fake.__exit__(None, None, None)


# --------------------------------------------------------------------------- the HTTPS server


async def _ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b'{"status":"ok"}'
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _https_main(cert_chain: str, parent: int, max_seconds: float) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    config = uvicorn.Config(
        _ok_app,
        lifespan="off",
        log_config=None,
        log_level="critical",
        access_log=False,
        http="h11",
        loop="asyncio",
        ssl_certfile=cert_chain,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )
    server = uvicorn.Server(config)

    def watchdog() -> None:
        deadline = time.monotonic() + max_seconds
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.25)
        server.should_exit = True

    threading.Thread(target=watchdog, daemon=True).start()
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    server.run(sockets=[sock])


# --------------------------------------------------------------------------- children


class Child:
    """A child process of ours that prints one JSON line when ready; stopped by its PID."""

    def __init__(self, argv: list[str], what: str, *, stdout_json: bool = True) -> None:
        self.what = what
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_json else subprocess.DEVNULL,
            stderr=self.log,
        )
        self.info: dict[str, Any] = {}
        if stdout_json:
            self.info = self._read_ready()

    def _read_ready(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        box: list[bytes] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(READY_TIMEOUT)
        if not box or not box[0]:
            self.stop()
            raise RuntimeError(f"{self.what} did not start: {self.stderr()[-800:]}")
        return json.loads(box[0])

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> str:
        """Stop by PID (TERM, then KILL); return what it printed after its ready line."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        rest = ""
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                rest = self.proc.stdout.read().decode(errors="replace")
            self.proc.stdout.close()
        self.log.close()
        return rest


# --------------------------------------------------------------------------- the whole lab


@dataclass
class Target:
    name: str  # target name in the inventory
    host: str  # DNS name
    kind: str  # open | refused | dropped | web
    address: str
    port: int


@dataclass
class Lab:
    """Everything a run needs: the targets, the resolver, the CA bundle; ``close()`` stops it all."""

    targets: list[Target]
    resolver: str
    dns_kind: str
    ca_pem: Path | None
    web_port: int | None
    netns: Any = None
    notes: list[str] = field(default_factory=list)
    _children: list[Child] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)

    def pids(self) -> set[int]:
        """Our lab processes (to tell their CPU from other load on the machine)."""
        out = {child.proc.pid for child in self._children}
        server = getattr(self.netns, "_server", None)
        if server is not None:
            out.add(server.pid)
        return out

    def close(self) -> dict[str, str]:
        out = {}
        for child in reversed(self._children):
            out[child.what] = child.stop()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        if self.netns is not None:
            self.netns.close()
        return out


def _free_port_everywhere() -> int:
    """A port that nothing listens on right now (on any address)."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _nsd(zone: dict[str, str], workdir: Path, max_seconds: float) -> tuple[Child, int]:
    if shutil.which("nsd") is None:
        raise RuntimeError("nsd is not installed (apt-get install -y nsd)")
    port = 0
    for _ in range(50):  # a port free for UDP and TCP
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.bind(("127.0.0.1", 0))
            candidate = t.getsockname()[1]
            try:
                u.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port = candidate
            break
    zone_path = workdir / "bench.zone"
    lines = [
        f"$ORIGIN {ZONE}.",
        "$TTL 300",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60",
        f"@ IN NS ns.{ZONE}.",
        "ns IN A 127.0.0.1",
    ]
    lines += [f"{name.removesuffix('.' + ZONE + '.')} IN A {ip}" for name, ip in zone.items()]
    zone_path.write_text("\n".join(lines) + "\n")
    conf = workdir / "nsd.conf"
    conf.write_text(
        f"""server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{workdir}"
  database: ""
  pidfile: "{workdir}/nsd.pid"
  xfrdfile: "{workdir}/xfrd.state"
  zonelistfile: "{workdir}/zone.list"
  logfile: "{workdir}/nsd.log"
  hide-version: yes
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: "{ZONE}"
  zonefile: "{zone_path}"
"""
    )
    # nsd -d: stays in the foreground, so the PID we hold is nsd's own; bounded by `timeout`.
    argv = ["timeout", "-s", "TERM", str(int(max_seconds)), "nsd", "-d", "-c", str(conf)]
    child = Child(argv, "nsd", stdout_json=False)
    try:
        _wait_dns(port, f"ns.{ZONE}.")
    except RuntimeError as exc:
        log = child.stderr()
        child.stop()
        raise RuntimeError(f"{exc}: {log.strip()[-500:]}") from None
    return child, port


def _wait_dns(port: int, name: str) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.2)
            return
        time.sleep(0.05)
    raise RuntimeError(f"DNS server on 127.0.0.1:{port} not answering")


def build_lab(
    n: int,
    *,
    dropped: float,
    refused: float,
    web_share: float,
    dns_kind: str,
    workdir: Path,
    max_seconds: float,
    seed: int = 8,
) -> Lab:
    """Make the targets and start what they need. Kinds are interleaved deterministically."""
    import random

    n_drop, n_ref, n_web = round(n * dropped), round(n * refused), round(n * web_share)
    if n_drop + n_ref + n_web > n:
        raise ValueError("--dropped + --refused + --web-share exceed 1")
    kinds = ["dropped"] * n_drop + ["refused"] * n_ref + ["web"] * n_web
    kinds += ["open"] * (n - len(kinds))
    random.Random(seed).shuffle(kinds)
    notes: list[str] = []
    children: list[Child] = []
    closers: list[Any] = []
    netns = None
    lab: Lab | None = None
    try:
        # -- the namespace with the dropped ports
        drop_ports = list(range(20000, 20000 + max(n_drop, 1)))
        lab_address = ""
        if n_drop:
            sys.path.insert(0, str(ROOT))
            from tests.fakes.netns import NetnsLab, netns_prerequisites

            why = netns_prerequisites()
            if why:
                raise RuntimeError(f"cannot build the dropped ports: {why} (use --dropped 0)")
            netns = NetnsLab(dropped=drop_ports, max_seconds=max_seconds).__enter__()
            lab_address = netns.address
        # -- listeners (+ the fast DNS responder) in one child process
        targets: list[Target] = []
        refused_port = _free_port_everywhere()
        counters = {"open": 0, "refused": 0, "dropped": 0, "web": 0}
        zone: dict[str, str] = {}
        layout: list[tuple[str, str, int]] = []  # kind, host, index
        for i, kind in enumerate(kinds):
            k = counters[kind]
            counters[kind] += 1
            host = f"{kind[0]}{i:05d}.{ZONE}"
            layout.append((kind, host, k))
        zone_file = workdir / "zone.json"
        serve_argv = [sys.executable, "-I", str(Path(__file__).resolve()), "serve", "--parent", str(os.getpid())]
        serve_argv += ["--max-seconds", str(max_seconds), "--listen", ",".join(OPEN_ADDRESSES)]
        # -- the HTTPS server for the web share
        ca_pem: Path | None = None
        web_port: int | None = None
        if n_web:
            import trustme

            ca = trustme.CA()
            leaf = ca.issue_cert(f"*.{ZONE}", ZONE)
            chain = workdir / "server.pem"
            leaf.private_key_and_cert_chain_pem.write_to_path(str(chain))
            ca_pem = workdir / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_pem))
            https = Child(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "https",
                    "--cert",
                    str(chain),
                    "--parent",
                    str(os.getpid()),
                    "--max-seconds",
                    str(max_seconds),
                ],
                "https",
            )
            children.append(https)
            web_port = int(https.info["port"])
        # the zone first (the serve child reads it when it starts); answers need addresses only
        for kind, host, k in layout:
            if kind == "open":
                address = OPEN_ADDRESSES[k % len(OPEN_ADDRESSES)]
            elif kind == "refused":
                address = f"{REFUSED_NET}{1 + k % 250}"
            elif kind == "dropped":
                address = lab_address
            else:
                address = "127.0.0.1"
            zone[host + "."] = address
        zone_file.write_text(json.dumps(zone))
        if dns_kind in ("fast", "fake"):
            serve_argv += ["--zone", str(zone_file), "--dns-impl", dns_kind]
        serve = Child(serve_argv, "serve")
        children.append(serve)
        listener_ports = {a: p for a, p in serve.info["listeners"]}
        # -- DNS
        if dns_kind == "fast":
            dns_port = int(serve.info["dns_port"])
            notes.append(f"DNS: asyncio responder (own process), receive buffer {serve.info['dns_rcvbuf'] // 1024} KiB")
        elif dns_kind == "fake":
            dns_port = int(serve.info["dns_port"])
            notes.append("DNS: tests.fakes.dns_server.FakeDnsServer (threads, in the lab's server process)")
        elif dns_kind == "nsd":
            nsd_child, dns_port = _nsd(zone, workdir, max_seconds)
            children.append(nsd_child)
            notes.append("DNS: nsd (Debian), server-count 1")
        else:
            raise ValueError(f"unknown --dns {dns_kind!r}")
        for kind, host, k in layout:
            if kind == "open":
                address = OPEN_ADDRESSES[k % len(OPEN_ADDRESSES)]
                port = listener_ports[address]
            elif kind == "refused":
                address, port = f"{REFUSED_NET}{1 + k % 250}", refused_port
            elif kind == "dropped":
                address, port = lab_address, drop_ports[k]
            else:
                address, port = "127.0.0.1", web_port or 0
            targets.append(Target(f"t{len(targets):05d}", host, kind, address, port))
        lab = Lab(targets, f"127.0.0.1:{dns_port}", dns_kind, ca_pem, web_port, netns, notes, children, closers)
        return lab
    except BaseException:
        for child in reversed(children):
            child.stop()
        for closer in closers:
            with contextlib.suppress(Exception):
                closer()
        if netns is not None:
            netns.close()
        raise


@contextlib.contextmanager
def lab_context(*args: Any, **kwargs: Any) -> Iterator[Lab]:
    lab = build_lab(*args, **kwargs)
    try:
        yield lab
    finally:
        lab.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--zone")
    serve.add_argument("--dns-impl", choices=["fast", "fake"], default="fast")
    serve.add_argument("--listen", default="")
    serve.add_argument("--parent", type=int, required=True)
    serve.add_argument("--max-seconds", type=float, default=600)
    https = sub.add_parser("https")
    https.add_argument("--cert", required=True)
    https.add_argument("--parent", type=int, required=True)
    https.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        listen = [a for a in args.listen.split(",") if a]
        asyncio.run(_serve(args.zone, listen, args.parent, args.max_seconds, args.dns_impl))
    else:
        _https_main(args.cert, args.parent, args.max_seconds)


if __name__ == "__main__":
    main()
