"""Cross-vantage diagnosis (issue 17): where the same check differs between vantages, and what that means.

One vantage cannot see the most common reachability mistake: a service bound to ``127.0.0.1``
answers on its own host and refuses everyone else. Two vantages can. These pure functions take
the results of one environment (``ResultFacts`` from the sink, or ``ResultEntry`` read back from a
JSON report), group the results of one check across vantages, and name the pattern of the
difference:

- ``loopback_bind``: tcp open from a vantage that connected to a loopback address, refused from
  vantages that connected to another address: the service listens on loopback only;
- ``firewall_drop``: open from one vantage, no answer (``filtered``) from another;
- ``firewall_reject``: open from one vantage, refused or unreachable from another, same address;
- ``split_horizon``: DNS answers differ between vantages;
- ``differs``: anything else that passes from one vantage and fails from another (or fails
  differently), with each side's layer/reason.

TCP results are compared by (target, port) and the observed ``details.state``, not by id: with a
per-vantage ``from:`` override one port may be expected ``open`` from one vantage and ``filtered``
from another, so the subjects (and ids) differ. Other checks are compared by
:func:`~pytest_autoglm.inventory.plan.check_key` (the id without ``@vantage``).

A group is diagnosed only when some vantage failed it and the vantages really differ (in what
they observed, or in outcome): a difference every vantage passes was expected by the inventory
(a ``from:`` override), and a failure every vantage sees alike is the target's, not the path's.
Results that judged nothing about the target are left out of the comparison: errors (the
vantage could not run it: ``vantage_unreachable``, ``setup``), skips, and ``upstream`` (blocked by a
lower layer, which gets its own diagnosis).

Read defensively: a report may hold anything a server sent, so every value is type-checked.
No pytest here; the lead's end-to-end test and any script can call :func:`diagnose` and
:func:`vantages_section` on a list of result dicts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pytest_autoglm.inventory.plan import check_key
from pytest_autoglm.reporting.records import DiagnosisEntry, VantageFacts, VantagesEntry
from pytest_autoglm.reporting.view import vantage_of, vantages_of

#: The patterns, in the order diagnoses of one check are listed.
LOOPBACK_BIND: Final = "loopback_bind"
FIREWALL_DROP: Final = "firewall_drop"
FIREWALL_REJECT: Final = "firewall_reject"
SPLIT_HORIZON: Final = "split_horizon"
DIFFERS: Final = "differs"
PATTERNS: Final = (LOOPBACK_BIND, FIREWALL_DROP, FIREWALL_REJECT, SPLIT_HORIZON, DIFFERS)

#: The end of a ``loopback_bind`` message: the likely mistake and its fix.
LOOPBACK_HINT: Final = "listens on loopback only (bind address 127.0.0.1? use 0.0.0.0)"

_MAX_RECORDS = 4  # DNS records shown per vantage in a message; the rest counted
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Diagnosis:
    """A named difference of one check between vantages (see the module docstring for the patterns)."""

    target: str
    check: str
    subject: str
    pattern: str
    message: str
    affected: tuple[str, ...]
    by_vantage: tuple[tuple[str, VantageFacts], ...]  # in the order of the run's vantages

    def as_entry(self) -> DiagnosisEntry:
        return DiagnosisEntry(
            target=self.target,
            check=self.check,
            subject=self.subject,
            pattern=self.pattern,
            message=self.message,
            affected=list(self.affected),
            by_vantage={name: facts.copy() for name, facts in self.by_vantage},
        )


# ----------------------------------------------------------------------------- reading results


def _text(value: Any) -> str:
    """A value as one line of text (a report may hold anything a server sent)."""
    if isinstance(value, str) and value.isprintable() and "  " not in value:
        return value.strip()  # the usual case, without the regex
    return "" if value is None else _SPACES.sub(" ", str(value)).strip()


def is_loopback(address: Any) -> bool:
    """``127.0.0.0/8``, ``::1`` (also IPv4-mapped), or the name ``localhost``."""
    text = _text(address).lower()
    if not text:
        return False
    if text == "localhost" or text.endswith(".localhost"):
        return True
    host = text.removeprefix("[").split("]", 1)[0].split("%", 1)[0]
    if host.count(":") == 1:  # "127.0.0.1:8080"
        host = host.rsplit(":", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _details(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    details = entry.get("details")
    return details if isinstance(details, Mapping) else {}


def tcp_port(entry: Mapping[str, Any]) -> str:
    """A tcp entry's port as text: ``details.port``, else the number the subject starts with ("" if none)."""
    port = _details(entry).get("port")
    if isinstance(port, int) and not isinstance(port, bool):
        return str(port)
    match = re.match(r"\s*(\d{1,5})(?!\d)", _text(entry.get("subject")))
    return match.group(1) if match else ""


def _subject(entry: Mapping[str, Any]) -> str:
    subject, vantage = _text(entry.get("subject")), vantage_of(entry)
    return subject.removesuffix(f"@{vantage}") if vantage else subject


def group_key(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    """What makes results of different vantages "the same check": (target, check, subject).

    tcp: the port (expectations may differ per vantage); others: the id without ``@vantage``.
    """
    target, check = _text(entry.get("target")), _text(entry.get("check"))
    if check == "tcp" and (port := tcp_port(entry)):
        return target, check, port
    return target, check, check_key(_text(entry.get("id"))) or _subject(entry)


@dataclass(frozen=True)
class _Seen:
    """One vantage's comparable result of a check."""

    vantage: str
    entry: Mapping[str, Any]
    outcome: str  # passed | failed
    fault: str  # "tcp/refused"; "" when passed
    address: str
    state: str  # tcp: the observed state; "" otherwise or unknown
    answers: tuple[str, ...] | None  # dns: what the resolvers gave; None when not known

    @property
    def observation(self) -> tuple[str, ...]:
        """What the vantage saw, whatever it expected: the tcp state, the DNS answers, else the verdict."""
        if self.state:
            return ("state", self.state)
        if self.answers is not None:
            return ("answers", *self.answers)
        return ("verdict", self.outcome, self.fault)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


def _answers(entry: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Every record (and not-resolving code) the resolvers gave, sorted; None when the entry has none."""
    answers = _details(entry).get("answers")
    if not isinstance(answers, Mapping) or not answers:
        return None
    seen: set[str] = set()
    for value in answers.values():
        if isinstance(value, list | tuple):
            seen.update(_text(v) for v in value)
        elif value is not None:
            seen.add(_text(value).upper())  # "nxdomain" -> "NXDOMAIN", as dig prints it
    return tuple(sorted(seen))


def _seen(entry: Mapping[str, Any]) -> _Seen | None:
    """The entry as a comparable observation, or None when it judged nothing about the target."""
    outcome = entry.get("outcome")
    reason = _text(entry.get("reason"))
    if outcome not in ("passed", "failed") or reason == "upstream":
        return None  # error (vantage_unreachable, setup ...), skipped, blocked by a lower layer
    layer = _text(entry.get("layer"))
    state = _details(entry).get("state") if entry.get("check") == "tcp" else None
    return _Seen(
        vantage=vantage_of(entry),
        entry=entry,
        outcome=outcome,
        fault="" if outcome == "passed" else (f"{layer}/{reason}" if layer else reason) or "failed",
        address=_text(entry.get("address")),
        state=_text(state) if isinstance(state, str) else "",
        answers=_answers(entry) if entry.get("check") == "dns" else None,
    )


# ----------------------------------------------------------------------------- diagnosing


def diagnose(results: Iterable[Mapping[str, Any]]) -> list[Diagnosis]:
    """Every diagnosed difference of the results of one environment, in the results' order.

    Results without a vantage are ignored (a run without vantages has no diagnoses).
    """
    results = [entry for entry in results if isinstance(entry, Mapping)]
    order = []
    groups: dict[tuple[str, str, str], dict[str, Mapping[str, Any]]] = {}
    for entry in results:
        if not (vantage := vantage_of(entry)):
            continue
        key = group_key(entry)
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key].setdefault(vantage, entry)  # one result per vantage and check: the first
    names = {name: i for i, name in enumerate(vantages_of(results))}
    found: list[Diagnosis] = []
    for key in order:
        per_vantage = groups[key]
        if len(per_vantage) > 1:
            ranked = sorted(per_vantage.items(), key=lambda item: names.get(item[0], len(names)))
            found.extend(diagnose_check(key, [entry for _, entry in ranked]))
    return found


def diagnose_check(key: tuple[str, str, str], entries: Sequence[Mapping[str, Any]]) -> list[Diagnosis]:
    """The diagnoses of one check seen from several vantages (``entries``: one per vantage)."""
    if not any(entry.get("outcome") == "failed" for entry in entries):
        return []  # the usual case, decided before reading anything else
    seen = [s for s in (_seen(e) for e in entries) if s is not None and s.vantage]
    if len(seen) < 2 or not any(s.failed for s in seen):
        return []  # nothing to compare, or nothing wrong: a difference every vantage passes was expected
    if len({s.observation for s in seen}) == 1 and len({(s.outcome, s.fault) for s in seen}) == 1:
        return []  # every vantage saw the same: the target's fault, not the path's
    target, check, subject = key
    by_vantage = tuple((s.vantage, _facts(s)) for s in seen)
    if check == "tcp":
        parts = _tcp_patterns(target, subject, seen)
    elif check == "dns" and len({s.observation for s in seen}) > 1 and all(s.answers is not None for s in seen):
        parts = [(SPLIT_HORIZON, _split_horizon_message(seen), _differing(seen))]
    else:
        parts = [(DIFFERS, _differs_message(check, target, subject, seen), [s for s in seen if s.failed])]
    if check != "tcp":
        subject = _subject(entries[0]) or subject
    return [
        Diagnosis(target, check, subject, pattern, message, tuple(s.vantage for s in affected), by_vantage)
        for pattern, message, affected in parts
    ]


def _facts(seen: _Seen) -> VantageFacts:
    facts = VantageFacts(
        id=_text(seen.entry.get("id")),
        outcome=seen.outcome,
        reason=_text(seen.entry.get("reason")) or None,
        address=seen.address or None,
    )
    if seen.state:
        facts["state"] = seen.state
    if seen.answers is not None:
        facts["answers"] = list(seen.answers)
    return facts


def _tcp_patterns(target: str, port: str, seen: Sequence[_Seen]) -> list[tuple[str, str, list[_Seen]]]:
    """tcp: each vantage that did not find the port open, classified against the ones that did."""
    opened = [s for s in seen if s.state == "open"]
    if not opened:
        return [(DIFFERS, _differs_message("tcp", target, port, seen), [s for s in seen if s.failed])]
    local_open = [s for s in opened if is_loopback(s.address)]
    classes: dict[str, list[_Seen]] = {pattern: [] for pattern in PATTERNS}
    for other in seen:
        if other.state == "open":
            continue
        if other.state == "filtered":
            classes[FIREWALL_DROP].append(other)
        elif (
            other.state in ("refused", "unreachable")
            and other.address
            and not is_loopback(other.address)
            and any(s.address == other.address for s in opened)
        ):
            classes[FIREWALL_REJECT].append(other)
        elif other.state == "refused" and local_open and other.address and not is_loopback(other.address):
            classes[LOOPBACK_BIND].append(other)
        else:
            classes[DIFFERS].append(other)
    if not any(classes.values()):  # every vantage found it open: the outcomes differ by expectation
        return [(DIFFERS, _differs_message("tcp", target, port, seen), [s for s in seen if s.failed])]
    where = f"{target} port {port}"
    parts: list[tuple[str, str, list[_Seen]]] = []
    if bad := classes[LOOPBACK_BIND]:
        parts.append(
            (LOOPBACK_BIND, f"{where}: open from {_at(local_open)}, refused from {_at(bad)}: {LOOPBACK_HINT}", bad)
        )
    if bad := classes[FIREWALL_DROP]:
        parts.append(
            (
                FIREWALL_DROP,
                f"{where}: open from {_at(opened)}, no answer from {_at(bad)}: "
                f"a firewall between {_names(bad)} and {target} drops port {port}",
                bad,
            )
        )
    if bad := classes[FIREWALL_REJECT]:
        words = "/".join(dict.fromkeys(s.state for s in bad))
        parts.append(
            (
                FIREWALL_REJECT,
                f"{where}: open from {_at(opened)}, {words} from {_at(bad)} (the same address): "
                f"something between {_names(bad)} and {target} rejects port {port}, or the service accepts some sources only",
                bad,
            )
        )
    if bad := classes[DIFFERS]:
        parts.append((DIFFERS, _differs_message("tcp", target, port, [*opened, *bad]), bad))
    return parts


def _names(seen: Sequence[_Seen]) -> str:
    return ", ".join(s.vantage for s in seen)


def _at(seen: Sequence[_Seen]) -> str:
    """``local (127.0.0.1), lan (10.0.0.5)``: each vantage with the address it connected to."""
    return ", ".join(f"{s.vantage} ({s.address})" if s.address else s.vantage for s in seen)


def _shown(answers: tuple[str, ...] | None) -> str:
    if not answers:
        return "no answer"
    more = f" (+{len(answers) - _MAX_RECORDS} more)" if len(answers) > _MAX_RECORDS else ""
    return ", ".join(answers[:_MAX_RECORDS]) + more


def _differing(seen: Sequence[_Seen]) -> list[_Seen]:
    """The vantages whose view differs from the reference view: the first passing vantage's (else the first's)."""
    reference = next((s for s in seen if not s.failed), seen[0]).observation
    return [s for s in seen if s.observation != reference]


def _split_horizon_message(seen: Sequence[_Seen]) -> str:
    details = _details(seen[0].entry)
    name = " ".join(part for part in (_text(details.get("name")), _text(details.get("type"))) if part)
    views: dict[tuple[str, ...] | None, list[str]] = {}
    for s in seen:
        views.setdefault(s.answers, []).append(s.vantage)
    said = "; ".join(
        f"{', '.join(names)} {'sees' if len(names) == 1 else 'see'} {_shown(answers)}"
        for answers, names in views.items()
    )
    subject = name or f"{_text(seen[0].entry.get('target'))} {_text(seen[0].entry.get('subject'))}".strip()
    return f"{subject} resolves differently: split-horizon DNS ({said})"


def _differs_message(check: str, target: str, subject: str, seen: Sequence[_Seen]) -> str:
    """``tcp api 8080 differs by vantage: passed from local at 10.0.0.5 (open); failed from lan at 10.0.0.6 (tcp/refused)``."""
    sides: dict[tuple[str, str], list[str]] = {}
    for s in seen:
        what = s.fault if s.failed else ""
        if s.state and s.state not in what:
            what = f"{what}, {s.state}" if what else s.state
        sides.setdefault((s.outcome, what), []).append(f"{s.vantage} at {s.address}" if s.address else s.vantage)
    said = "; ".join(
        f"{outcome} from {', '.join(names)}" + (f" ({what})" if what else "")
        for (outcome, what), names in sides.items()
    )
    shown_subject = subject if check == "tcp" else _subject(seen[0].entry) or subject
    return f"{check} {target} {shown_subject} differs by vantage: {said}"


def vantages_section(results: Sequence[Mapping[str, Any]]) -> VantagesEntry | None:
    """The JSON report's ``vantages`` object, or None when no result carries a vantage."""
    names = vantages_of(results)
    if not names:
        return None
    return VantagesEntry(names=names, diagnoses=[d.as_entry() for d in diagnose(results)])


__all__ = [
    "DIFFERS",
    "FIREWALL_DROP",
    "FIREWALL_REJECT",
    "LOOPBACK_BIND",
    "LOOPBACK_HINT",
    "PATTERNS",
    "SPLIT_HORIZON",
    "Diagnosis",
    "DiagnosisEntry",
    "VantageFacts",
    "VantagesEntry",
    "diagnose",
    "diagnose_check",
    "group_key",
    "is_loopback",
    "tcp_port",
    "vantage_of",
    "vantages_of",
    "vantages_section",
]
