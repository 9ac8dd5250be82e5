"""Security headers of a response: HSTS (RFC 6797) and headers that must be present or absent.

Judged on the final response of the attempt (after redirects when followed). HSTS is parsed as
browsers do (RFC 6797 6.1): directives separated by ``;``, names case-insensitive, ``max-age``
required, quotes allowed around its value; only the first header counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_autoglm.core.vocabulary import Reason


@dataclass(frozen=True)
class HstsExpectation:
    min_max_age: int = 0
    include_subdomains: bool = False
    preload: bool = False


def parse_hsts(value: str) -> dict[str, Any] | str:
    """``{"max_age": int, "include_subdomains": bool, "preload": bool}``, or why the header is invalid."""
    directives: dict[str, str | None] = {}
    for part in value.split(";"):
        name, sep, raw = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in directives:
            return f"directive {name!r} appears twice (RFC 6797: the header is then invalid)"
        directives[name] = raw.strip().strip('"') if sep else None
    if "max-age" not in directives:
        return "no max-age directive (RFC 6797 requires it)"
    raw_age = directives["max-age"] or ""
    if not raw_age.isdigit():
        return f"max-age {raw_age!r} is not a number of seconds"
    return {
        "max_age": int(raw_age),
        "include_subdomains": "includesubdomains" in directives,
        "preload": "preload" in directives,
    }


def hsts_problem(expect: HstsExpectation, values: Sequence[str], https: bool) -> str | None:
    """What is wrong with the response's Strict-Transport-Security (None: it meets ``expect``)."""
    if not https:
        return "the final response came over plain HTTP, where browsers ignore Strict-Transport-Security"
    if not values:
        return "no Strict-Transport-Security header"
    parsed = parse_hsts(values[0])
    if isinstance(parsed, str):
        return f"Strict-Transport-Security {values[0]!r} is invalid: {parsed}"
    wanted = []
    if parsed["max_age"] < expect.min_max_age:
        wanted.append(f"max-age={parsed['max_age']} is below min_max_age {expect.min_max_age}")
    if expect.include_subdomains and not parsed["include_subdomains"]:
        wanted.append("includeSubDomains is missing (include_subdomains: true)")
    if expect.preload and not parsed["preload"]:
        wanted.append("preload is missing (preload: true)")
    if wanted:
        return f"Strict-Transport-Security {values[0]!r}: " + "; ".join(wanted)
    return None


def header_problems(present: Sequence[str], absent: Sequence[str], has: Any) -> list[tuple[Reason, str]]:
    """Missing ``present`` headers and found ``absent`` ones; ``has(name)`` gives a header's values."""
    problems: list[tuple[Reason, str]] = []
    missing = [name for name in present if not has(name)]
    if missing:
        problems.append(
            (Reason.HEADER, f"missing header{'s' if len(missing) > 1 else ''} {', '.join(missing)} (headers_present)")
        )
    found = [f"{name}: {', '.join(has(name))}" for name in absent if has(name)]
    if found:
        problems.append(
            (
                Reason.HEADER,
                f"header{'s' if len(found) > 1 else ''} {'; '.join(found)} must not be sent (headers_absent)",
            )
        )
    return problems


def expectation_extras(item: dict[str, Any]) -> dict[str, Any]:
    """``HttpExpectation`` keywords for the security keys of an inventory http item (its ``model_dump()``)."""
    hsts = item.get("hsts")
    return {
        "hsts": None
        if hsts is None
        else HstsExpectation(
            int(hsts.get("min_max_age") or 0), bool(hsts.get("include_subdomains")), bool(hsts.get("preload"))
        ),
        "headers_present": tuple(item.get("headers_present") or ()),
        "headers_absent": tuple(item.get("headers_absent") or ()),
    }
