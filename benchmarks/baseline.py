"""The floor the plugin is measured against: the same probes, plain asyncio, no pytest.

``python benchmarks/baseline.py plan.json`` reads the plan ``bench.py`` writes (resolver,
timeout, CA bundle, one entry per target) and, with every target in flight at once:

- asks the resolver for the target's A record (dnspython, UDP, EDNS payload 1232, like the
  plugin) and compares it with the expected address -> one ``dns`` result;
- connects to the answered address and port with a raw non-blocking socket, bounded by the
  timeout -> one ``tcp`` result (``upstream`` if the name did not resolve);
- for a web target also a TLS handshake (verifying against the CA, SNI = the name) and one
  HTTPS GET on a new connection (status 2xx) -> one ``tls`` and one ``http`` result.

It prints one JSON line: the internal elapsed time, the checks made and the outcomes, so
``bench.py`` can check both runs saw the same lab. No retries (the benchmark uses 0).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import sys
import time
from collections import Counter
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype


async def _dns_a(host: str, resolver: tuple[str, int], timeout: float) -> list[str] | str:
    q = dns.message.make_query(host, "A", use_edns=0, payload=1232)
    try:
        async with asyncio.timeout(timeout):
            r = await dns.asyncquery.udp(q, resolver[0], port=resolver[1], timeout=timeout)
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"error:{type(exc).__name__}"
    if r.rcode() != 0:
        return f"rcode:{r.rcode()}"
    for rrset in r.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return [rd.address for rd in rrset]
    return "nodata"


async def _tcp(address: str, port: int, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (address, port))
        return "open"
    except TimeoutError:
        return "filtered"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"error:{exc.errno}"
    finally:
        sock.close()


async def _tls(address: str, port: int, host: str, ctx: ssl.SSLContext, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port, ssl=ctx, server_hostname=host)
        writer.transport.abort()
        return "ok"
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"error:{type(exc).__name__}"


async def _http(address: str, port: int, host: str, ctx: ssl.SSLContext, timeout: float) -> str:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port, ssl=ctx, server_hostname=host)
            writer.write(f"GET /ok HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            status = await reader.readline()
            while await reader.read(65536):
                pass
        writer.transport.abort()
        code = int(status.split()[1])
        return "ok" if 200 <= code < 300 else f"status:{code}"
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return f"error:{type(exc).__name__}"


async def _target(t: dict[str, Any], plan: dict[str, Any], ctx: ssl.SSLContext | None, out: Counter[str]) -> None:
    timeout = plan["timeout"]
    host, port = t["host"], t["port"]
    answer = await _dns_a(host, tuple(plan["resolver"]), timeout)
    if isinstance(answer, str):
        out[f"dns:{answer}"] += 1
        out["tcp:upstream"] += 1
        return
    out["dns:passed" if answer == [t["address"]] else "dns:mismatch"] += 1
    state = await _tcp(answer[0], port, timeout)
    out[f"tcp:{'passed' if state == t.get('expect', 'open') else state}"] += 1
    if t["kind"] == "web" and ctx is not None:
        if state != "open":
            out["tls:upstream"] += 1
            out["http:upstream"] += 1
            return
        tls, http = await asyncio.gather(
            _tls(answer[0], port, host, ctx, timeout), _http(answer[0], port, host, ctx, timeout)
        )
        out[f"tls:{'passed' if tls == 'ok' else tls}"] += 1
        out[f"http:{'passed' if http == 'ok' else http}"] += 1


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    ctx = None
    if plan.get("ca"):
        ctx = ssl.create_default_context(cafile=plan["ca"])
    out: Counter[str] = Counter()
    started = time.monotonic()
    await asyncio.gather(*(_target(t, plan, ctx, out) for t in plan["targets"]))
    elapsed = time.monotonic() - started
    return {"elapsed_s": round(elapsed, 4), "checks": sum(out.values()), "outcomes": dict(sorted(out.items()))}


if __name__ == "__main__":
    if sys.argv[1] == "--version":  # the benchmark's warm-up: imports only
        raise SystemExit(0)
    with open(sys.argv[1]) as handle:
        loaded = json.load(handle)
    loaded["resolver"] = (loaded["resolver"].rsplit(":", 1)[0], int(loaded["resolver"].rsplit(":", 1)[1]))
    print(json.dumps(asyncio.run(main(loaded))))
