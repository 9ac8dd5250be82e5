"""Every example inventory loads, and the bundled demo gives its intended verdicts against its real services."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_autoglm import load_inventory
from pytest_autoglm.inventory.plan import build_plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "example_suites").glob("*.yaml") if not p.name.endswith("-base.yaml"))
ENVIRONMENT = {"AUTOGLM_DEMO_API_KEY": "demo-key", "INTERNAL_API_TOKEN": "token"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_loads_and_plans(example, tmp_path, monkeypatch):
    """Copied away with placeholder certificate files: the examples name files a team supplies."""
    folder = tmp_path / "example_suites"
    shutil.copytree(ROOT / "example_suites", folder, ignore=shutil.ignore_patterns(".demo"))
    for name in ("certs/internal-ca.pem", "certs/client.pem", ".demo/ca.pem"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("placeholder\n")
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    loaded = load_inventory(folder / example.name)
    checks = build_plan(loaded)
    assert checks, f"{example.name} plans no checks"
    assert len({c.id for c in checks}) == len(checks)


def test_the_demo_shows_its_five_mistakes_and_passes_the_rest(tmp_path):
    sys.path.insert(0, str(ROOT / "demo"))
    try:
        from services import API_PORT, DNS_PORT, TLS_PORT, DemoEnvironment, port_is_free
    finally:
        sys.path.pop(0)
    if not all(port_is_free(p) for p in (DNS_PORT, API_PORT, TLS_PORT)):
        pytest.skip("a demo port is taken on this machine")
    certs = ROOT / "example_suites" / ".demo"
    env = {**__import__("os").environ, "AUTOGLM_DEMO_API_KEY": "k3y-for-the-demo-test"}
    with DemoEnvironment(certs, env["AUTOGLM_DEMO_API_KEY"]):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--autoglm-target",
                str(ROOT / "example_suites" / "demo.yaml"),
                "--autoglm-report-dir",
                str(tmp_path),
                "-q",
                "--tb=no",
            ],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 1, run.stdout + run.stderr
    doc = json.loads((tmp_path / "demo.json").read_text())
    failed = {r["id"]: (r["layer"], r["reason"]) for r in doc["results"] if r["outcome"] == "failed"}
    assert failed == {
        "tcp[demo:api-lan:28000/open]": ("tcp", "refused"),
        "cors[demo:api:http://localhost:5173]": ("cors", "not_allowed"),
        "http[demo:api:GET http://api.autoglm.demo:28000/v1/chat/completions]": ("http", "auth"),
        "tls[demo:api:28443]": ("tls", "expiring"),
        "dns[demo:models-cdn:A]": ("dns", "nxdomain"),
        "tcp[demo:models-cdn:443/open]": ("dns", "upstream"),
    }
    assert doc["summary"]["passed"] == len(doc["results"]) - len(failed)
    assert (
        "k3y-for-the-demo-test"
        not in (tmp_path / "demo.json").read_text() + (tmp_path / "demo.html").read_text() + run.stdout
    )
