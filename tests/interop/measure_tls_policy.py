"""Figures for docs/performance.md: a full TLS policy check of one server, and of 100 servers at once.

Run: ``python -m tests.interop.measure_tls_policy`` (needs nginx and openssl; loopback only).
One nginx serves the policy set plus ``--servers`` copies of the Mozilla "old" server (the
widest: TLS 1.0-1.3, 30 suites, DHE), each on its own port; the probe checks them with
``policy: mozilla-old`` (every version x suite asked), one alone, then all concurrently.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from pytest_autoglm.probes.tls import TlsExpectation, TlsPolicy, check_tls
from tests.interop import tls_policy_lab
from tests.interop.tls_policy_lab import HOST, policy_lab


async def _one(port: int, root: Path, policy: TlsPolicy) -> tuple[float, bool, int]:
    started = time.perf_counter()
    verdict = await check_tls(HOST, "127.0.0.1", TlsExpectation(port=port, policy=policy), timeout=10.0, ca_bundle=root)
    return time.perf_counter() - started, verdict.passed, int(verdict.details["accepted"]["handshakes"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    old = tls_policy_lab.SERVERS["mozilla_old"]
    for i in range(args.servers):
        tls_policy_lab.SERVERS[f"old_{i}"] = old
    policy = TlsPolicy(profile="mozilla-old")
    with tempfile.TemporaryDirectory() as folder, policy_lab(Path(folder)) as lab:
        port = lab.ports["mozilla_old"]
        singles = [asyncio.run(_one(port, lab.root_pem, policy)) for _ in range(args.repeat)]
        times = sorted(s[0] for s in singles)
        print(
            f"one server, {singles[0][2]} handshakes: median {statistics.median(times) * 1000:.0f} ms,"
            f" max {times[-1] * 1000:.0f} ms over {args.repeat} runs; all passed: {all(s[1] for s in singles)}"
        )
        ports = [lab.ports[f"old_{i}"] for i in range(args.servers)]

        async def together() -> list[tuple[float, bool, int]]:
            return await asyncio.gather(*(_one(p, lab.root_pem, policy) for p in ports))

        for _ in range(3):
            started, cpu = time.perf_counter(), time.process_time()
            results = asyncio.run(together())
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"{args.servers} servers at once: {wall:.2f} s wall, {sum(r[2] for r in results)} handshakes,"
                f" slowest check {max(r[0] for r in results):.2f} s, passed {sum(r[1] for r in results)},"
                f" client CPU {cpu:.2f} s ({cpu / sum(r[2] for r in results) * 1000:.2f} ms per ClientHello)"
            )


if __name__ == "__main__":
    main()
