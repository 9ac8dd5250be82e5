"""HTTP and CORS items through the whole plugin: ids, layered dependencies, verdicts in the JSON report."""

from __future__ import annotations

import json

import pytest

from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.http_servers import ALLOWED_ORIGIN, UvicornServer, basic_app, cors_app
from tests.fakes.tcp_servers import free_port


@pytest.fixture(scope="module")
def web():
    with UvicornServer(basic_app()) as server:
        yield server


@pytest.fixture(scope="module")
def cors_server():
    with UvicornServer(cors_app()) as server:
        yield server


def results(pytester: pytest.Pytester, env: str) -> dict[str, dict]:
    doc = json.loads((pytester.path / "reports" / f"{env}.json").read_text())
    return {r["id"]: r for r in doc["results"]}


def test_http_items_by_name_through_the_inventory_resolver(pytester, web):
    zone = {"api.web.test.": {"A": ["127.0.0.1"]}}
    with FakeDnsServer(zone) as dns_server:
        base = f"http://api.web.test:{web.port}"
        (pytester.path / "web.yaml").write_text(
            f"""\
version: 1
defaults: {{timeout: 2s, retries: 0, resolvers: ["{dns_server.address}"]}}
targets:
  - name: api
    host: api.web.test
    dns: {{A: [127.0.0.1]}}
    tcp: {{open: [{web.port}]}}
    http:
      - url: {base}/ok
        json: {{status: ok}}
      - url: {base}/status/503
      - url: {base}/auth
        status: 200
"""
        )
        result = pytester.runpytest("--autoglm-target", "web.yaml")
    result.assert_outcomes(passed=3, failed=2)
    by_id = results(pytester, "web")
    ok = by_id[f"http[web:api:GET {base}/ok]"]
    assert ok["outcome"] == "passed"
    assert ok["address"] == "127.0.0.1"
    assert set(ok["details"]["timings_ms"]) >= {"dns", "connect", "tls", "first_byte", "total"}
    assert by_id[f"http[web:api:GET {base}/status/503]"]["reason"] == "status"
    assert by_id[f"http[web:api:GET {base}/auth]"]["reason"] == "auth"


def test_http_item_fails_upstream_when_the_port_is_closed(pytester):
    port = free_port()
    (pytester.path / "down.yaml").write_text(
        f"""\
version: 1
defaults: {{timeout: 1s, retries: 0}}
targets:
  - name: api
    host: 127.0.0.1
    tcp: {{open: [{port}]}}
    http:
      - url: http://127.0.0.1:{port}/health
"""
    )
    result = pytester.runpytest("--autoglm-target", "down.yaml")
    result.assert_outcomes(failed=2)
    item = results(pytester, "down")[f"http[down:api:GET http://127.0.0.1:{port}/health]"]
    assert (item["layer"], item["reason"]) == ("tcp", "upstream")
    assert f"tcp[down:api:{port}/open]" in item["message"]


def test_cors_items_one_per_origin_and_misconfigurations(pytester, cors_server):
    url = cors_server.url("/suffix/")
    (pytester.path / "cors.yaml").write_text(
        f"""\
version: 1
defaults: {{timeout: 2s, retries: 0}}
targets:
  - name: api
    host: 127.0.0.1
    cors:
      url: {url}
      allow: ["{ALLOWED_ORIGIN}"]
      deny: ["https://evil.example.org"]
      methods: [PUT]
"""
    )
    result = pytester.runpytest("--autoglm-target", "cors.yaml")
    by_id = results(pytester, "cors")
    assert by_id[f"cors[cors:api:{ALLOWED_ORIGIN}]"]["outcome"] == "passed"
    assert by_id["cors[cors:api:https://evil.example.org]"]["outcome"] == "passed"
    suffix = by_id["cors[cors:api:misconfig/suffix_bypass]"]
    assert (suffix["outcome"], suffix["layer"]) == ("failed", "cors")
    vary = by_id["cors[cors:api:misconfig/vary_origin]"]
    assert vary["severity"] == "warning"
    assert result.ret == 1


def test_users_probe_http_with_the_inventory_settings_and_masked_results(pytester, web, monkeypatch):
    monkeypatch.setenv("AUTOGLM_TEST_TOKEN", "tok-9f8e7d6c5b")
    (pytester.path / "u.yaml").write_text(
        f"""\
version: 1
secrets: {{token: "${{AUTOGLM_TEST_TOKEN}}"}}
defaults: {{timeout: 2s, retries: 0}}
targets:
  - name: api
    host: 127.0.0.1
    http:
      - url: {web.url("/echo")}
        headers: {{Authorization: "Bearer ${{secrets.token}}"}}
        body_contains: "no such text"
"""
    )
    pytester.makepyfile(
        test_mine="""
        from pytest_autoglm import http

        @http
        def test_echo(autoglm_target, autoglm_probe):
            result = autoglm_probe.http(autoglm_target)
            assert result.reason == "body"
            assert "tok-9f8e7d6c5b" not in result.message + str(result.details)
        """
    )
    result = pytester.runpytest("--autoglm-target", "u.yaml", "test_mine.py", "-k", "test_echo")
    result.assert_outcomes(passed=1)
