"""Other tools doing the benchmark's probes on the same lab, for a side-by-side table.

    python benchmarks/competitors.py {blackbox|nmap|testinfra} plan.json WORKDIR

Each runs what that tool's users would run, with the plan's timeout, and prints one JSON
line: ``{"tool", "elapsed_s", "checks", "outcomes", "notes"}``. Outcome keys use the
benchmark's words (``dns:passed``, ``tcp:passed``, ``tcp:refused``, ``tcp:filtered``,
``tls:passed``, ``http:passed``); a tool that cannot tell a refused port from a dropped one
says ``tcp:failed``. ``bench.py --competitors`` runs them as measured subprocesses, so their
wall time, CPU time (with the helper processes each one waits for: the exporter, curl, nmap,
nc) and peak RSS are measured like the plugin's.

- **blackbox**: Prometheus blackbox_exporter (Debian's ``prometheus-blackbox-exporter``),
  one module per DNS question (``query_name`` is per module, and the answer is validated
  against the expected address) and per web name (SNI), driven like a Prometheus scrape of
  every target at once: ``curl --parallel`` (256 at a time, the plugin's concurrency) on
  ``/probe``. Its TCP and HTTP probes get the address, not the name: the exporter resolves
  through the system resolver, which cannot be pointed at the lab's DNS port.
- **nmap**: ``nmap -sT -Pn -n --max-retries 0`` with the per-probe timeout fixed to the
  plan's (``--min/max/initial-rtt-timeout``), TCP only (nmap has no per-port resolver). One
  nmap per kind of target, run at the same time, each on its addresses x its ports.
- **testinfra**: pytest-testinfra on ``local://`` with ``-n 2``: ``host.addr(ip).port(p).is_reachable``
  (``nc -w 1 -z``: its timeout is fixed at 1 s), DNS with ``dig`` through ``host.run`` and
  the web targets with ``curl`` through ``host.run`` (one curl counts for tls and http).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

CONCURRENCY = 256


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ----------------------------------------------------------------------------- blackbox_exporter


def blackbox(plan: dict[str, Any], work: Path) -> dict[str, Any]:
    exporter = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if exporter is None or shutil.which("curl") is None:
        raise RuntimeError(
            "needs prometheus-blackbox-exporter and curl (apt-get install prometheus-blackbox-exporter curl)"
        )
    timeout = float(plan["timeout"])
    resolver = plan["resolver"]
    seconds = f"{timeout:g}s"
    modules: dict[str, Any] = {"tcp": {"prober": "tcp", "timeout": seconds, "tcp": {"preferred_ip_protocol": "ip4"}}}
    probes: list[tuple[str, str, str]] = []  # kind, module, target
    for i, t in enumerate(plan["targets"]):
        answer = [rf".*\tIN\tA\t{re.escape(t['address'])}$"]
        modules[f"dns{i}"] = {
            "prober": "dns",
            "timeout": seconds,
            "dns": {
                "query_name": t["host"],
                "query_type": "A",
                "transport_protocol": "udp",
                "preferred_ip_protocol": "ip4",
                "valid_rcodes": ["NOERROR"],
                "validate_answer_rrs": {"fail_if_not_matches_regexp": answer, "fail_if_none_matches_regexp": answer},
            },
        }
        probes.append(("dns", f"dns{i}", resolver))
        probes.append(("tcp", "tcp", f"{t['address']}:{t['port']}"))
        if t["kind"] == "web":
            tls_config = {"ca_file": plan["ca"], "server_name": t["host"]}
            modules[f"tls{i}"] = {
                "prober": "tcp",
                "timeout": seconds,
                "tcp": {"preferred_ip_protocol": "ip4", "tls": True, "tls_config": tls_config},
            }
            modules[f"http{i}"] = {
                "prober": "http",
                "timeout": seconds,
                "http": {"preferred_ip_protocol": "ip4", "tls_config": tls_config, "headers": {"Host": t["host"]}},
            }
            probes.append(("tls", f"tls{i}", f"{t['address']}:{t['port']}"))
            probes.append(("http", f"http{i}", f"https://{t['address']}:{t['port']}/ok"))
    config = work / "blackbox.yml"
    config.write_text(yaml.safe_dump({"modules": modules}))
    port = _free_port()
    out = work / "blackbox-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    lines = []
    for n, (_, module, target) in enumerate(probes):
        lines += [f'url = "http://127.0.0.1:{port}/probe?module={module}&target={target}"', f'output = "{out}/{n}"']
    urls = work / "blackbox-urls.txt"
    urls.write_text("\n".join(lines) + "\n")

    started = time.monotonic()
    proc = subprocess.Popen(
        [exporter, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, started + 10)
        subprocess.run(
            [
                "curl",
                "-s",
                "--no-progress-meter",
                "--parallel",
                "--parallel-immediate",
                "--parallel-max",
                str(CONCURRENCY),
                "--max-time",
                str(timeout + 5),
                "-H",
                f"X-Prometheus-Scrape-Timeout-Seconds: {timeout + 1:g}",
                "--config",
                str(urls),
            ],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout * 4 + 60,
        )
    finally:
        _stop(proc)
    elapsed = time.monotonic() - started
    outcomes: Counter[str] = Counter()
    for n, (kind, _, _) in enumerate(probes):
        path = out / str(n)
        text = path.read_text() if path.exists() else ""
        outcomes[f"{kind}:{'passed' if re.search(r'^probe_success 1$', text, re.MULTILINE) else 'failed'}"] += 1
    return {
        "elapsed_s": elapsed,
        "checks": len(probes),
        "outcomes": dict(outcomes),
        "notes": "dns + tcp + tls + http; tcp/tls/http probe the address (the exporter resolves via the system resolver)",
    }


# ----------------------------------------------------------------------------- nmap


def nmap(plan: dict[str, Any], work: Path) -> dict[str, Any]:
    if shutil.which("nmap") is None:
        raise RuntimeError("needs nmap (apt-get install nmap)")
    ms = int(float(plan["timeout"]) * 1000)
    groups: dict[str, tuple[set[str], set[int]]] = {}
    for t in plan["targets"]:
        addresses, ports = groups.setdefault(t["kind"], (set(), set()))
        addresses.add(t["address"])
        ports.add(t["port"])
    started = time.monotonic()
    procs = []
    for kind, (addresses, ports) in groups.items():
        xml_out = work / f"nmap-{kind}.xml"
        argv = ["nmap", "-sT", "-Pn", "-n", "-T4", "--max-retries", "0", "--min-parallelism", str(CONCURRENCY)]
        argv += ["--initial-rtt-timeout", f"{ms}ms", "--min-rtt-timeout", f"{ms}ms", "--max-rtt-timeout", f"{ms}ms"]
        argv += ["-p", ",".join(map(str, sorted(ports))), "-oX", str(xml_out), *sorted(addresses)]
        procs.append((xml_out, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    states: dict[tuple[str, int], str] = {}
    rest: dict[str, str] = {}  # nmap folds many ports of one state into <extraports state=...>
    probes = 0
    try:
        for _, proc in procs:
            proc.wait(float(plan["timeout"]) * 10 + 60)
    except subprocess.TimeoutExpired:
        raise RuntimeError("nmap did not finish in time") from None
    finally:
        for _, proc in procs:
            _stop(proc)
    for xml_out, _ in procs:
        for host in ET.parse(xml_out).getroot().iter("host"):
            address = str(host.find("address").get("addr"))  # type: ignore[union-attr]
            for port in host.iter("port"):
                states[(address, int(port.get("portid", 0)))] = port.find("state").get("state", "")  # type: ignore[union-attr]
                probes += 1
            folded = {extra.get("state", "") for extra in host.iter("extraports")}
            probes += sum(int(extra.get("count", 0)) for extra in host.iter("extraports"))
            # Ports nmap folds away have one state per <extraports>; with two states on one host
            # a folded port's own state is unknown, and the lab check reports it as "missing".
            if len(folded) == 1:
                rest[address] = folded.pop()
    elapsed = time.monotonic() - started
    word = {"open": "passed", "closed": "refused", "filtered": "filtered"}
    outcomes = Counter(
        f"tcp:{word.get(states.get((t['address'], t['port']), rest.get(t['address'], '')), 'missing')}"
        for t in plan["targets"]
    )
    return {
        "elapsed_s": elapsed,
        "checks": len(plan["targets"]),
        "outcomes": dict(outcomes),
        "notes": f"tcp only; {probes} distinct address:port probes for {len(plan['targets'])} targets",
    }


# ----------------------------------------------------------------------------- pytest-testinfra

_TESTINFRA_TESTS = """
import json, math, os, pytest

PLAN = json.load(open(os.environ["COMPETITOR_PLAN"]))
HOST, PORT = PLAN["resolver"].rsplit(":", 1)
TIMEOUT = max(1, math.ceil(float(PLAN["timeout"])))  # dig and curl take whole seconds; 0 means none
TARGETS = PLAN["targets"]
WEB = [t for t in TARGETS if t["kind"] == "web"]


@pytest.mark.parametrize("t", TARGETS, ids=[t["host"] for t in TARGETS])
def test_dns(host, t):
    out = host.run(f"dig +short +time={TIMEOUT} +tries=1 -p {PORT} @{HOST} {t['host']} A")
    assert out.stdout.split() == [t["address"]]


@pytest.mark.parametrize("t", TARGETS, ids=[t["host"] for t in TARGETS])
def test_tcp(host, t):
    assert host.addr(t["address"]).port(t["port"]).is_reachable


@pytest.mark.parametrize("t", WEB, ids=[t["host"] for t in WEB])
def test_web(host, t):
    url = f"https://{t['host']}:{t['port']}/ok"
    out = host.run(
        f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time {TIMEOUT} --cacert {PLAN['ca']} "
        f"--resolve {t['host']}:{t['port']}:{t['address']} {url}"
    )
    assert out.stdout.startswith("2")
"""


def testinfra(plan: dict[str, Any], work: Path) -> dict[str, Any]:
    try:
        import testinfra as _  # noqa: F401
    except ImportError:
        raise RuntimeError("needs pytest-testinfra (pip install pytest-testinfra)") from None
    for tool in ("nc", "dig", "curl"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"needs {tool} (apt-get install netcat-openbsd dnsutils curl)")
    folder = work / "testinfra"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "test_lab.py").write_text(_TESTINFRA_TESTS)
    (folder / "plan.json").write_text(json.dumps(plan))
    junit = folder / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AUTOGLM_"))}
    env["COMPETITOR_PLAN"] = str(folder / "plan.json")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:autoglm", "-p", "no:randomly"]
    argv += [
        "--hosts=local://",
        "-n",
        "2",
        f"--junitxml={junit}",
        "--rootdir",
        str(folder),
        str(folder / "test_lab.py"),
    ]
    started = time.monotonic()
    subprocess.run(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    outcomes: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        kind = case.get("name", "").split("[", 1)[0].removeprefix("test_")
        ok = case.find("failure") is None and case.find("error") is None and case.find("skipped") is None
        for layer in ("tls", "http") if kind == "web" else (kind,):
            outcomes[f"{layer}:{'passed' if ok else 'failed'}"] += 1
    return {
        "elapsed_s": elapsed,
        "checks": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "notes": "pytest -n 2; tcp: nc -w 1 (fixed 1 s timeout); dns: dig; web: curl (one request for tls + http)",
    }


TOOLS = {"blackbox": blackbox, "nmap": nmap, "testinfra": testinfra}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in TOOLS:
        print(f"usage: competitors.py {{{'|'.join(TOOLS)}}} plan.json WORKDIR", file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[1]).read_text())
    work = Path(argv[2])
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = TOOLS[argv[0]](plan, work)
    except (RuntimeError, OSError, ET.ParseError, subprocess.TimeoutExpired) as exc:
        print(json.dumps({"tool": argv[0], "error": str(exc)}))
        return 1
    print(json.dumps({"tool": argv[0], **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
