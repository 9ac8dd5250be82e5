"""``<env>.prom`` for node_exporter's textfile collector, and a Pushgateway push.

Metric names are blackbox_exporter's where one exists (``probe_success``,
``probe_duration_seconds``, ``probe_ssl_earliest_cert_expiry``, ``probe_http_status_code``,
``probe_dns_lookup_time_seconds``); the rest carry an ``autoglm_`` prefix. Every sample has
the labels ``env``, ``target``, ``check`` (the check id) and ``layer`` (the check's protocol:
dns, tcp, tls, http, cors), so one alert rule can key on any of them. Skipped checks are left
out. The text is OpenMetrics (ends with ``# EOF``) and also valid Prometheus text 0.0.4, which
is what node_exporter and the Pushgateway parse.
"""

from __future__ import annotations

import base64
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_autoglm.history.errors import PushFailed

#: (name, help) in the order they are written.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("probe_success", "1 when the check passed, 0 when it failed or errored"),
    ("probe_duration_seconds", "How long the check took, retries included"),
    ("probe_ssl_earliest_cert_expiry", "Not-after of the leaf certificate as Unix time"),
    ("probe_http_status_code", "Status code of the final HTTP response"),
    ("probe_dns_lookup_time_seconds", "Time of the DNS lookup before connecting"),
    ("autoglm_probe_attempts", "Attempts the check made"),
    ("autoglm_check_failure_info", "1 for a failing check, with its failing layer and reason code"),
    ("autoglm_consecutive_failures", "Failing runs in a row (history)"),
    ("autoglm_alert_firing", "1 when the check's alert is firing (history)"),
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    """A label value per the OpenMetrics/Prometheus text format: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _unix(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _samples(environment: str, result: Mapping[str, Any]) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name, _ in FAMILIES}
    outcome = result.get("outcome")
    if outcome not in ("passed", "failed", "error"):
        return out
    labels = {
        "env": environment,
        "target": str(result.get("target") or ""),
        "check": str(result.get("id") or ""),
        "layer": str(result.get("check") or ""),
    }
    details = result.get("details") or {}
    out["probe_success"].append((labels, 1.0 if outcome == "passed" else 0.0))
    out["probe_duration_seconds"].append((labels, float(result.get("duration_ms") or 0.0) / 1000.0))
    not_after = details.get("not_after")
    if result.get("check") == "tls" and isinstance(not_after, str) and (expiry := _unix(not_after)) is not None:
        out["probe_ssl_earliest_cert_expiry"].append((labels, expiry))
    if result.get("check") in ("http", "cors") and isinstance(details.get("status"), int):
        out["probe_http_status_code"].append((labels, float(details["status"])))
    timings = details.get("timings_ms")
    if isinstance(timings, Mapping) and isinstance(timings.get("dns"), int | float):
        out["probe_dns_lookup_time_seconds"].append((labels, float(timings["dns"]) / 1000.0))
    elif result.get("check") == "dns":
        out["probe_dns_lookup_time_seconds"].append((labels, float(result.get("duration_ms") or 0.0) / 1000.0))
    out["autoglm_probe_attempts"].append((labels, float(result.get("attempts") or 0)))
    if outcome != "passed":
        failure = labels | {"failed_layer": str(result.get("layer") or ""), "reason": str(result.get("reason") or "")}
        out["autoglm_check_failure_info"].append((failure, 1.0))
    history = result.get("history")
    if isinstance(history, Mapping):
        out["autoglm_consecutive_failures"].append((labels, float(history.get("consecutive_failures") or 0)))
        out["autoglm_alert_firing"].append((labels, 1.0 if history.get("state") == "firing" else 0.0))
    return out


def render_openmetrics(environment: str, results: Sequence[Mapping[str, Any]]) -> str:
    """The text of ``<env>.prom`` for results shaped as the JSON report's ``results``."""
    families: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name, _ in FAMILIES}
    for result in results:
        for name, samples in _samples(environment, result).items():
            families[name].extend(samples)
    lines: list[str] = []
    for name, help_text in FAMILIES:
        samples = families[name]
        if not samples:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_openmetrics(path: str | Path, environment: str, results: Sequence[Mapping[str, Any]]) -> str:
    """Write ``render_openmetrics`` to ``path`` atomically (the collector never reads half a file)."""
    text = render_openmetrics(environment, results)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return text


def _segment(name: str, value: str) -> str:
    """One grouping key path segment; values with a ``/`` (or empty) go base64 as the Pushgateway asks."""
    if value and "/" not in value:
        return f"{quote(name, safe='')}/{quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
    return f"{quote(name, safe='')}@base64/{encoded}"


def push_to_gateway(
    url: str, text: str, job: str, *, grouping: Mapping[str, str] | None = None, timeout: float = 10.0
) -> None:
    """PUT ``text`` to a Pushgateway under ``job`` (and ``grouping``, e.g. ``{"env": "prod"}``).

    PUT replaces the group's previous metrics, so a check removed from the inventory disappears.
    Raises ``PushFailed`` naming the gateway (without credentials) on any failure.
    """
    import httpx

    path = "/metrics/" + "/".join(_segment(k, v) for k, v in {"job": job, **(grouping or {})}.items())
    endpoint = url.rstrip("/") + path
    shown = httpx.URL(url).copy_with(username=None, password=None)
    try:
        response = httpx.put(endpoint, content=text.encode(), headers={"Content-Type": CONTENT_TYPE}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise PushFailed(
            f"pushgateway {shown}: {type(exc).__name__}: {exc}; check --autoglm-pushgateway and that it is up"
        ) from exc
    if response.status_code >= 300:
        raise PushFailed(
            f"pushgateway {shown}: HTTP {response.status_code} {response.text.strip()[:200]}; "
            "check --autoglm-pushgateway and the metrics it rejected"
        )
