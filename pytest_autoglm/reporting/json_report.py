"""The machine report ``<environment>.json`` (contract: results.md, ``autoglm-results/1``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_autoglm.reporting.crossvantage import vantages_section
from pytest_autoglm.reporting.records import (
    ReportDocument,
    ResultEntry,
    ResultFacts,
    Selection,
    full_selection,
    summary_of,
)

SCHEMA = "autoglm-results/1"


def entry_of(facts: ResultFacts) -> ResultEntry:
    """A result entry in the contract's key order; the flags only when they apply."""
    entry = ResultEntry(
        id=facts["id"],
        target=facts["target"],
        check=facts["check"],
        subject=facts["subject"],
        outcome=facts["outcome"],
        layer=facts["layer"],
        reason=facts["reason"],
        message=facts["message"],
        address=facts["address"],
        severity=facts["severity"],
        attempts=facts["attempts"],
        duration_ms=facts["duration_ms"],
        details=facts["details"],
    )
    if facts.get("warned"):
        entry["warned"] = True
    if facts.get("xfailed"):
        entry["xfailed"] = True
    if facts.get("vantage"):
        entry["vantage"] = facts["vantage"]
    return entry


def build_document(
    *,
    environment: str,
    inventory: str,
    started_at: str,
    duration_s: float,
    results: Sequence[ResultFacts],
    selection: Selection | None = None,
    partial: bool = False,
) -> ReportDocument:
    """The document of one environment. ``selection`` says whether every planned check ran; without
    it, every check counts as selected and ``partial`` alone says the run stopped early."""
    entries = [entry_of(r) for r in sorted(results, key=lambda r: (r.get("order", 0), r["id"]))]
    if selection is None:
        selection = full_selection(len(entries))
        if partial:
            selection["partial"] = selection["stopped_early"] = True
            selection["narrowed_by"] = ["stopped_early"]
    document = ReportDocument(
        schema=SCHEMA,
        environment=environment,
        inventory=inventory,
        started_at=started_at,
        duration_s=round(duration_s, 2),
        summary=summary_of(entries),
        selection=selection,
        results=entries,
    )
    if selection["stopped_early"]:
        document["partial"] = True  # the 1.0 extension, kept for the scripts that read it
    vantages = vantages_section(entries)
    if vantages is not None:  # issue 17: only a run that defines vantages has the key
        document["vantages"] = vantages
    return document


def write_json(path: Path, document: ReportDocument) -> None:
    write_atomically(path, encode_json(document))


def encode_json(document: Mapping[str, Any]) -> str:
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
