"""The shipped JSON Schema is generated from the models and must not be stale."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from pytest_autoglm.inventory.schema import SCHEMA_PATH, render_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "example_suites"


def test_shipped_schema_matches_the_models():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "the shipped inventory schema is stale: run `python -m pytest_autoglm.inventory.schema --write`"
    )


def test_schema_is_valid_and_accepts_the_spec_example():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    example = yaml.safe_load(
        """
version: 1
environment: prod
include: [base.yaml]
defaults: {timeout: 5s, retries: 2, backoff: 200ms, resolvers: [system], severity: critical}
secrets: {api_key: "${AUTOGLM_API_KEY}"}
targets:
  - name: api
    host: api.example.com
    tags: [public, critical]
    timeout: 3s
    dns:
      A: [203.0.113.10, 203.0.113.11]
      AAAA: present
      CNAME: api.cdn.example.net.
      MX: absent
      TXT: {contains: ["v=spf1 include:_spf.example.com ~all"]}
      consistent: true
    tcp: {open: [443, 80], closed: [22], refused: [8081], filtered: [3306]}
    tls: {port: 443, verify: true, min_version: TLSv1.2, accept: [TLSv1.2, TLSv1.3], min_days_valid: 30, ocsp_stapling: required}
    http:
      - {url: "https://api.example.com/health", status: 200, json: {status: ok}, max_latency: 500ms}
    cors:
      - {url: "https://api.example.com/v1/chat", allow: ["https://app.example.com"], deny: ["null"], methods: [POST], credentials: true}
"""
    )
    jsonschema.validate(example, schema)


def test_schema_rejects_an_unknown_key():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    bad = {"version": 1, "targets": [{"name": "api", "host": "a.example.com", "tsl": {}}]}
    validator = jsonschema.Draft202012Validator(schema)
    assert any("tsl" in error.message for error in validator.iter_errors(bad))
