"""The published JSON Schema of the inventory, generated from the same models that validate it.

Regenerate after changing :mod:`.models`::

    python -m pytest_autoglm.inventory.schema --write

A test fails when the shipped file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pytest_autoglm.inventory.models import Inventory

SCHEMA_PATH = Path(__file__).with_name("inventory.schema.json")
SCHEMA_ID = "https://pytest-autoglm.invalid/schema/inventory-1.json"


def generate_schema() -> dict[str, Any]:
    schema = Inventory.model_json_schema(mode="validation", by_alias=True)
    properties = schema.setdefault("properties", {})
    # `include` is consumed by the loader before validation; publish it for editors all the same.
    properties["include"] = {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "files merged underneath this one (paths relative to this file)",
    }
    defs = schema["$defs"]
    _one_or_many(defs["Target"]["properties"], ("tls", "http", "cors", "grpc"))
    _one_many_or_none(defs["VantageOverride"]["properties"], ("tls", "http", "cors", "grpc"))
    # Vantage names are the keys of these mappings (issue 17): no other key is valid.
    for named in (properties["vantages"], defs["Target"]["properties"]["from"]):
        named["additionalProperties"] = False
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "pytest-autoglm inventory (version 1)",
        **schema,
    }


def _one_or_many(properties: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Sections the loader accepts as one mapping or a list of them (models use a BeforeValidator)."""
    for key in keys:
        prop = properties[key]
        item = prop["items"]
        properties[key] = {
            "anyOf": [item, {"type": "array", "items": item}],
            **{k: v for k, v in prop.items() if k not in ("items", "type")},
        }


def _one_many_or_none(properties: dict[str, Any], keys: tuple[str, ...]) -> None:
    """The same sections in a target's ``from`` entry, where ``null`` removes the section."""
    for key in keys:
        prop = properties[key]
        array = next(a for a in prop["anyOf"] if a.get("type") == "array")
        properties[key] = {
            "anyOf": [array["items"], array, {"type": "null"}],
            **{k: v for k, v in prop.items() if k != "anyOf"},
        }


def render_schema() -> str:
    return json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render_schema()
    if "--write" in argv:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
