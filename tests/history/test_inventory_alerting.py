"""The inventory's ``alerting:`` block: defaults, per target key by key, the schema, the policies it makes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from pytest_autoglm.errors import InventoryError
from pytest_autoglm.history import AlertPolicy
from pytest_autoglm.inventory.schema import generate_schema
from pytest_autoglm.inventory.validate import load_inventory
from pytest_autoglm.plugin.history import alert_policies, unknown_notify_schemes

INVENTORY = """\
version: 1
environment: prod
secrets: {token: s3cr3t-hook-token}
defaults:
  alerting:
    after: 2
    remind_every: 12h
    notify: ["json://127.0.0.1:9/hook/${secrets.token}"]
targets:
  - name: api
    host: api.example.com
    tcp: {open: [443]}
  - name: db
    host: db.example.com
    alerting: {after: 5, remind_every: null}
    tcp: {open: [5432]}
  - name: web
    host: web.example.com
    alerting: {notify: []}
    tcp: {open: [80]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prod.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_target_overrides_the_defaults_key_by_key(tmp_path):
    loaded = load_inventory(write(tmp_path, INVENTORY))
    policies = alert_policies(loaded, {"a": "api", "d": "db", "w": "web"})
    hook = ("json://127.0.0.1:9/hook/s3cr3t-hook-token",)  # interpolated for sending; masked in messages
    assert policies["a"] == AlertPolicy(after=2, resolve_after=1, remind_every=timedelta(hours=12), notify=hook)
    assert policies["d"] == AlertPolicy(after=5, resolve_after=1, remind_every=None, notify=hook)
    assert policies["w"] == AlertPolicy(after=2, resolve_after=1, remind_every=timedelta(hours=12), notify=())
    assert loaded.redactor(hook[0]) == "json://127.0.0.1:9/hook/***"


def test_without_alerting_the_built_in_policy_applies(tmp_path):
    loaded = load_inventory(
        write(tmp_path, "version: 1\ntargets:\n  - {name: api, host: a.example, tcp: {open: [1]}}\n")
    )
    assert alert_policies(loaded, {"x": "api"}) == {"x": AlertPolicy()}


def test_schema_accepts_alerting_and_rejects_a_bad_one():
    schema = generate_schema()
    jsonschema.validate(yaml.safe_load(INVENTORY), schema)
    bad = yaml.safe_load(INVENTORY)
    bad["defaults"]["alerting"]["after"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad["defaults"]["alerting"] = {"notify": ["not a url"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(json.dumps(bad)), schema)


def test_an_unknown_scheme_is_an_error_at_its_line_with_secrets_masked(tmp_path):
    text = INVENTORY.replace("    alerting: {notify: []}", "    alerting: {notify: ['nosuch://x/${secrets.token}']}")
    path = write(tmp_path, text)
    load_inventory(path)  # without the check (the inventory package alone): accepted
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, notify_schemes=unknown_notify_schemes)
    rendered = caught.value.render()
    assert ":19:25: " in rendered.split("\n")[0] and "targets[2].alerting.notify[0]" in rendered
    assert "unknown notification scheme 'nosuch'" in rendered and "s3cr3t" not in rendered


def test_known_schemes_pass_and_no_urls_never_ask_apprise(tmp_path):
    asked: list[list[str]] = []

    def spy(urls):
        asked.append(list(urls))
        return unknown_notify_schemes(urls)

    load_inventory(write(tmp_path, INVENTORY), notify_schemes=spy)
    assert asked == [["json://127.0.0.1:9/hook/s3cr3t-hook-token"]]
    asked.clear()
    load_inventory(write(tmp_path, "version: 1\ntargets: []\n"), notify_schemes=spy)
    assert asked == []
