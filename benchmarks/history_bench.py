"""History write time and store growth for a large run (issue 16's figures).

    python benchmarks/history_bench.py [--checks 10000] [--runs 8] [--postgres URL]

Records ``--runs`` nightly runs of ``--checks`` checks each (a mix shaped like real results:
DNS answers, TLS certificate facts, HTTP status and latency, about 3 % failing, each run a
little different) into a fresh SQLite store in a temp dir, and prints per run the time
``record_run`` took (the whole transaction: state read, upserts, results, retention, commit)
and how many bytes the store (file + WAL) grew. The first run creates every check's row, so
the steady-state figure is the median of the later runs. CPU time is printed beside wall time:
on a shared machine the wall time grows with the load, the CPU time much less. ``--postgres`` measures the same on
a PostgreSQL database (its growth is not measured).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_autoglm.history import CheckRecord, RunRecord, open_store, record_run
from pytest_autoglm.history.store import SqliteStore

KINDS = ("dns", "tcp", "tls", "http", "cors")


def make_checks(n: int, night: int, rng: random.Random) -> list[CheckRecord]:
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        target = f"svc{i // len(KINDS):05d}"
        failing = rng.random() < 0.03
        facts: dict[str, object] = {"addresses": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"]}
        if kind == "dns":
            facts = {"answers": [f"192.0.2.{i % 250}"]}
        elif kind == "tls":
            facts |= {
                "serial": f"{i:040x}",
                "issuer": "CN=Example Issuing CA 2,O=Example Org,C=DE",
                "not_after": "2027-03-01T12:00:00Z",
                "days_left": 90 - night,
            }
        elif kind in ("http", "cors"):
            facts |= {"status": 503 if failing else 200, "latency_ms": round(rng.uniform(5, 400), 1)}
        out.append(
            CheckRecord(
                id=f"{kind}[prod:{target}:443]",
                letter="F" if failing else "P",
                target=target,
                check=kind,
                layer=kind if failing else None,
                reason="timeout" if failing else None,
                message=f"{target}: {'no answer within 2s' if failing else 'ok'}",
                attempts=3 if failing else 1,
                duration_ms=round(rng.uniform(1, 300), 1),
                address=f"10.0.{i // 256 % 256}.{i % 256}",
                facts=facts,
            )
        )
    return out


def size(path: Path) -> int:
    """The store's bytes on disk once the WAL is checkpointed into the file (what a cache keeps)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL to measure instead of SQLite")
    args = parser.parse_args()
    rng = random.Random(16)
    start = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.sqlite"
        store = open_store(args.postgres or path)
        times: list[float] = []
        cpus: list[float] = []
        growth: list[int] = []
        before = size(path) if not args.postgres else 0
        for night in range(args.runs):
            checks = make_checks(args.checks, night, rng)
            at = start + timedelta(days=night)
            began, cpu = time.perf_counter(), time.process_time()
            record_run(store, RunRecord("prod", at, at + timedelta(seconds=30)), checks)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            times.append(elapsed)
            cpus.append(cpu)
            line = f"run {night + 1}: record_run {elapsed * 1000:7.1f} ms wall, {cpu * 1000:7.1f} ms CPU"
            if isinstance(store, SqliteStore):
                after = size(path)
                growth.append(after - before)
                line += f", store +{after - before:,} bytes (now {after:,})"
                before = after
            print(line)
        store.close()
    wall, cpu = statistics.median(times[1:] or times), statistics.median(cpus[1:] or cpus)
    print(
        f"\n{args.checks} checks, {store.kind}: median record_run {wall * 1000:.1f} ms wall, "
        f"{cpu * 1000:.1f} ms CPU (runs 2..; load average {os.getloadavg()[0]:.1f})"
    )
    if growth:
        print(f"median growth per run {statistics.median(growth[1:] or growth):,.0f} bytes (runs 2..)")


if __name__ == "__main__":
    main()
