"""The machine report ``<environment>.json`` (contract: results.md, ``autoglm-results/1``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCHEMA = "autoglm-results/1"
#: Keys of a result entry in the contract's order; anything else in the facts is an extension.
RESULT_KEYS = (
    "id",
    "target",
    "check",
    "subject",
    "outcome",
    "layer",
    "reason",
    "message",
    "address",
    "severity",
    "attempts",
    "duration_ms",
    "details",
)

#: Extension flags, present (and true) only when they apply: a failure that did not fail the run.
RESULT_FLAGS = ("warned", "xfailed")


def build_document(
    *,
    environment: str,
    inventory: str,
    started_at: str,
    duration_s: float,
    results: Sequence[dict[str, Any]],
    partial: bool,
) -> dict[str, Any]:
    ordered = sorted(results, key=lambda r: (r.get("order", 0), r["id"]))
    entries = [
        {key: r.get(key) for key in RESULT_KEYS} | {flag: True for flag in RESULT_FLAGS if r.get(flag)} for r in ordered
    ]
    summary = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for entry in entries:
        summary[entry["outcome"]] = summary.get(entry["outcome"], 0) + 1
    summary["warnings"] = sum(
        1 for e in entries if e["outcome"] == "failed" and e["severity"] == "warning" and not e.get("xfailed")
    )
    summary["xfailed"] = sum(1 for e in entries if e.get("xfailed"))
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "environment": environment,
        "inventory": inventory,
        "started_at": started_at,
        "duration_s": round(duration_s, 2),
        "summary": summary,
        "results": entries,
    }
    if partial:
        document["partial"] = True
    return document


def write_json(path: Path, document: dict[str, Any]) -> None:
    write_atomically(path, encode_json(document))


def encode_json(document: dict[str, Any]) -> str:
    """The document indented, with one result per line.

    Easy to read and to grep, and fast: ``json`` encodes in C only without ``indent``, and the
    pure-Python encoder costs ~0.1 ms per result, which is a lot of a run of thousands.
    """
    head = {key: value for key, value in document.items() if key != "results"}
    text = json.dumps(head, indent=2, ensure_ascii=False, default=str)
    results = document.get("results")
    if results is None:
        return text + "\n"
    lines = ",\n".join("    " + json.dumps(entry, ensure_ascii=False, default=str) for entry in results)
    body = f'"results": [\n{lines}\n  ]' if lines else '"results": []'
    return (text[:-2] + ",\n  " if head else "{\n  ") + body + "\n}\n"


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a reader (or a crash) never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
