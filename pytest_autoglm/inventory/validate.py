"""Load an inventory end to end: YAML, includes, ``${...}``, paths, models, with positioned errors."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_autoglm.errors import InventoryError
from pytest_autoglm.inventory.loader import LocatedDict, LocatedList, Mark, display_name, load_tree
from pytest_autoglm.inventory.models import (
    Alerting,
    CipherRules,
    CorsCheck,
    Defaults,
    DhRules,
    DnsSection,
    Group,
    GrpcCheck,
    HstsRules,
    HttpCheck,
    IcmpSection,
    Inventory,
    KeyRules,
    RevocationRules,
    StreamSpec,
    Target,
    TcpSection,
    TlsSection,
    VantageOverride,
)
from pytest_autoglm.inventory.secrets import Redactor, interpolate
from pytest_autoglm.inventory.vantages import (
    LOCAL_VANTAGE,
    check_vantage_name,
    effective_vantages,
    is_off,
    known_vantage_names,
)

_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]+$")

#: Which model a mapping is, by its path with list indices removed (for "did you mean").
_MODELS_BY_PATH: dict[tuple[str, ...], type[BaseModel]] = {
    (): Inventory,
    ("defaults",): Defaults,
    ("targets",): Target,
    ("targets", "dns"): DnsSection,
    ("targets", "tcp"): TcpSection,
    ("targets", "tls"): TlsSection,
    ("targets", "tls", "ciphers"): CipherRules,
    ("targets", "tls", "key"): KeyRules,
    ("targets", "tls", "dh"): DhRules,
    ("targets", "tls", "revocation"): RevocationRules,
    ("targets", "http"): HttpCheck,
    ("targets", "http", "hsts"): HstsRules,
    ("targets", "cors"): CorsCheck,
    ("targets", "grpc"): GrpcCheck,
    ("groups",): Group,
    ("targets", "icmp"): IcmpSection,
    ("targets", "http", "stream"): StreamSpec,
    ("defaults", "alerting"): Alerting,
    ("targets", "alerting"): Alerting,
    ("targets", "from", "*"): VantageOverride,
}
# A ``from`` entry's sections are a target's (``targets[0].from.internet.tls.ciphers`` is a CipherRules).
_MODELS_BY_PATH.update(
    {("targets", "from", "*", *path[1:]): model for path, model in list(_MODELS_BY_PATH.items()) if len(path) > 1}
)
#: Keys whose values are file paths, relative to the file that names them.
_PATH_KEYS = {"ca_bundle", "client_cert", "client_key"}
MAX_ERRORS_SHOWN = 10


@dataclass(frozen=True)
class LoadedInventory:
    """A validated inventory with what the run needs beside the model."""

    model: Inventory
    environment: str
    path: Path
    display: str
    redactor: Redactor


def load_inventory(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    *,
    notify_schemes: Callable[[Sequence[str]], Sequence[str]] | None = None,
    vantages: Sequence[tuple[str, str | None]] = (),
) -> LoadedInventory:
    """Load and validate one inventory file; raise :class:`InventoryError` on any bad input.

    ``notify_schemes`` names the unknown schemes among ``alerting.notify`` URLs (the plugin passes
    Apprise's check, which the inventory package may not import); called only when there are some.
    ``vantages``: the command line's ``--autoglm-vantage`` pairs (name, spec or None for off): names
    they add are valid in targets' ``vantages:`` and ``from:`` (issue 17).
    """
    file = Path(path)
    tree = load_tree(file)
    for key in [k for k in tree if k.startswith("x-")]:  # a place for YAML anchors, as in compose files
        del tree[key]
    tree, redactor = interpolate(tree, os.environ if environ is None else environ)
    _resolve_paths(tree)
    _check_duplicate_targets(tree)
    _check_vantage_names(tree, vantages)
    try:
        model = Inventory.model_validate(tree)
    except ValidationError as exc:
        raise _translate(exc, tree, redactor) from None
    _check_groups(tree, model)
    _check_vantage_overrides(tree, model, redactor)
    _check_some_vantage_left(tree, model, vantages)
    if notify_schemes is not None:
        _check_notify_schemes(tree, notify_schemes, redactor)
    environment = model.environment or file.stem
    if not _ENVIRONMENT.match(environment):
        raise InventoryError(
            f"the file name gives the environment name {environment!r}, which is not [A-Za-z0-9_.-]+; set 'environment:'",
            file=display_name(file),
            line=1,
            col=1,
        )
    return LoadedInventory(model, environment, file.resolve(), display_name(file), redactor)


def _did_you_mean(name: str, choices: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f"; {what}: {', '.join(choices) or 'none'}"


def _check_vantage_names(tree: LocatedDict, command_line: Sequence[tuple[str, str | None]]) -> None:
    """Issue 17: vantage names, ``local``, and the names targets use, at their place in the file.

    Before the models: a bad name is reported at the key the user wrote. Values of other types than
    expected are left to the models, which say what would be right.
    """
    declared = tree.get("vantages")
    names: list[str] = []
    if isinstance(declared, LocatedDict):
        for name, value in declared.items():
            key_mark = declared.key_marks[name]
            try:
                check_vantage_name(name)
            except ValueError as exc:
                raise _at(key_mark, str(exc), "vantages") from None
            if name == LOCAL_VANTAGE and not is_off(value):
                raise _at(
                    declared.value_marks[name],
                    "'local' is the running pytest process and takes no spec; only 'local: off' is allowed "
                    "(name another vantage for a gateway)",
                    "vantages.local",
                )
            names.append(name)
    known = list(known_vantage_names(names, command_line))
    targets = tree.get("targets")
    if not isinstance(targets, LocatedList):
        return
    for index, target in enumerate(targets):
        if not isinstance(target, LocatedDict):
            continue
        listed = target.get("vantages")
        allowed: list[str] | None = None
        if isinstance(listed, LocatedList) and listed:  # an empty list: the model says it needs an entry
            allowed = []
            for position, (name, mark) in enumerate(zip(listed, listed.item_marks, strict=True)):
                if isinstance(name, str) and name not in known:
                    hint = _did_you_mean(name, known, "vantages")
                    path = f"targets[{index}].vantages[{position}]"
                    raise _at(mark, f"unknown vantage {name!r}{hint}", path)
                allowed.append(str(name))
        overrides = target.get("from")
        if not isinstance(overrides, LocatedDict):
            continue
        for name in overrides:
            mark = overrides.key_marks[name]
            if name not in known:
                raise _at(
                    mark, f"unknown vantage {name!r}{_did_you_mean(name, known, 'vantages')}", f"targets[{index}].from"
                )
            if allowed is not None and name not in allowed:
                hint = _did_you_mean(name, allowed, "its vantages")
                raise _at(
                    mark,
                    f"vantage {name!r} is not in this target's vantages: list, so nothing is checked from it{hint}",
                    f"targets[{index}].from",
                )


def _check_some_vantage_left(
    tree: LocatedDict, model: Inventory, command_line: Sequence[tuple[str, str | None]]
) -> None:
    """``local: off`` and no other vantage checks nothing: the file's own mistake (the plugin reports the
    command line's, ``local=off``, as a usage error)."""
    if effective_vantages(model.vantages, command_line) != () or any(spec is None for _, spec in command_line):
        return
    mark = tree.value_marks.get("vantages", tree.mark)
    raise _at(
        mark,
        "every vantage is off ('local: off' and no other vantage): nothing would be checked; "
        "declare a vantage (name: execnet spec) or remove 'local: off'",
        "vantages",
    )


def _at(mark: Mark, message: str, path: str) -> InventoryError:
    return InventoryError(message, file=mark.file, line=mark.line, col=mark.col, path=path)


def _check_vantage_overrides(tree: LocatedDict, model: Inventory, redactor: Redactor) -> None:
    """Each target merged with each of its ``from`` entries validates as a target does (errors inside ``from``)."""
    for index, target in enumerate(model.targets):
        for vantage, override in target.from_.items():
            try:
                target.for_vantage(vantage)
            except ValidationError as exc:
                changed = override.model_fields_set
                moved = []
                for err in exc.errors(include_url=False):
                    loc = tuple(err["loc"])
                    inside = not loc or loc[0] in changed
                    prefix = ("targets", index, "from", vantage) if inside else ("targets", index)
                    moved.append({**err, "loc": prefix + loc})
                raise _translate_errors(moved, tree, redactor) from None


def _notify_urls(tree: LocatedDict) -> list[tuple[str, Mark, str]]:
    """Every ``alerting.notify`` URL with its place in the file and its path in the tree."""
    blocks: list[tuple[Any, str]] = [(tree.get("defaults"), "defaults")]
    targets = tree.get("targets")
    if isinstance(targets, LocatedList):
        blocks += [(target, f"targets[{i}]") for i, target in enumerate(targets)]
    found: list[tuple[str, Mark, str]] = []
    for block, where in blocks:
        alerting = block.get("alerting") if isinstance(block, LocatedDict) else None
        notify = alerting.get("notify") if isinstance(alerting, LocatedDict) else None
        if isinstance(notify, LocatedList):
            for i, (url, mark) in enumerate(zip(notify, notify.item_marks, strict=True)):
                if isinstance(url, str):
                    found.append((url.strip(), mark, f"{where}.alerting.notify[{i}]"))
    return found


def _check_notify_schemes(
    tree: LocatedDict, notify_schemes: Callable[[Sequence[str]], Sequence[str]], redactor: Redactor
) -> None:
    urls = _notify_urls(tree)
    if not urls:
        return
    unknown = set(notify_schemes([url for url, _, _ in urls]))
    for url, mark, path in urls:
        scheme = url.split("://", 1)[0].strip().lower()
        if scheme in unknown:
            raise InventoryError(
                redactor(
                    f"unknown notification scheme {scheme!r} in {url!r}: the installed Apprise cannot send to it "
                    "(a typo, or a plugin whose package is missing); see the Apprise wiki for the URLs it supports"
                ),
                file=mark.file,
                line=mark.line,
                col=mark.col,
                path=path,
            )


def _walk_paths(value: Any, key: str | None, mark: Mark | None) -> None:
    """``key`` is the path of ``value`` in the tree (``targets[0].tls``), for messages."""
    if isinstance(value, LocatedDict):
        for k in list(value):
            path = f"{key}.{k}" if key else k
            if k in _PATH_KEYS and isinstance(value[k], str):
                value[k] = _resolve_file(value[k], value.value_marks[k], path)
            else:
                _walk_paths(value[k], path, value.value_marks[k])
    elif isinstance(value, LocatedList):
        for i, (item, item_mark) in enumerate(zip(value, value.item_marks, strict=True)):
            _walk_paths(item, f"{key}[{i}]", item_mark)


def _resolve_paths(tree: LocatedDict) -> None:
    _walk_paths(tree, None, None)


def _resolve_file(text: str, mark: Mark, path: str) -> str:
    key = path.rsplit(".", 1)[-1]
    try:
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = Path(mark.file).resolve().parent / candidate
        found = candidate.is_file()
    except (OSError, RuntimeError, ValueError):  # unknown ~user, name too long, NUL byte
        candidate, found = Path(text), False
    if not found:
        raise InventoryError(
            f"{key} file not found: {text} (looked for {display_name(candidate)}); paths are relative to the file that names them",
            file=mark.file,
            line=mark.line,
            col=mark.col,
            path=path,
        )
    return str(candidate)


def _check_duplicate_targets(tree: LocatedDict) -> None:
    targets = tree.get("targets")
    if not isinstance(targets, LocatedList):
        return
    first_seen: dict[str, Mark] = {}
    for index, (target, mark) in enumerate(zip(targets, targets.item_marks, strict=True)):
        name = target.get("name") if isinstance(target, LocatedDict) else None
        if not isinstance(name, str):
            continue
        name_mark = target.value_marks.get("name", mark)
        if name in first_seen:
            first = first_seen[name]
            where = (
                f"lines {first.line} and {name_mark.line}"
                if first.file == name_mark.file
                else f"{first.file}:{first.line} and line {name_mark.line}"
            )
            raise InventoryError(
                f"duplicate target name {name!r} ({where}); target names must be unique in an environment",
                file=name_mark.file,
                line=name_mark.line,
                col=name_mark.col,
                path=f"targets[{index}].name",
            )
        first_seen[name] = name_mark


def _translate(exc: ValidationError, tree: LocatedDict, redactor: Redactor) -> InventoryError:
    return _translate_errors(exc.errors(include_url=False), tree, redactor)


def _translate_errors(raw: Sequence[Mapping[str, Any]], tree: LocatedDict, redactor: Redactor) -> InventoryError:
    errors = [_one_error(err, tree, redactor) for err in raw]
    errors = list(dict.fromkeys(errors, None))  # same place and text once
    first = errors[0]
    if len(errors) == 1:
        return first
    shown = errors[:MAX_ERRORS_SHOWN]
    more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
    combined = InventoryError(first.message, file=first.file, line=first.line, col=first.col, path=first.path)
    combined.args = ("\n".join(e.render() for e in shown) + more,)
    combined.all_errors = shown  # type: ignore[attr-defined]
    return combined


def _one_error(err: Mapping[str, Any], tree: LocatedDict, redactor: Redactor) -> InventoryError:
    loc = tuple(err["loc"])
    node: Any = tree
    mark = tree.mark
    path: list[str | int] = []
    key_mark: Mark | None = None
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, LocatedDict) and isinstance(part, str):
            if part in node:
                key_mark = node.key_marks[part]
                mark = node.value_marks[part]
                node = node[part]
                path.append(part)
                continue
            if last:
                break
        elif isinstance(node, LocatedList) and isinstance(part, int) and 0 <= part < len(node):
            mark = node.item_marks[part]
            node = node[part]
            path.append(part)
            continue
        # a union member tag or a mapping written where a list is accepted: not a place in the file

    kind = err["type"]
    text = _path_text(path)
    if kind == "extra_forbidden":
        unknown = str(loc[-1])
        parent = path[:-1] if path and path[-1] == unknown else path
        message = f"unknown key {unknown!r}"
        model = _MODELS_BY_PATH.get(_model_path(parent))
        if model is not None:
            known = [f.alias or name for name, f in model.model_fields.items()]
            close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6)
            message += f" (did you mean {close[0]!r}?)" if close else f"; expected one of: {', '.join(known)}"
        spot = key_mark or mark
        return InventoryError(
            redactor(message), file=spot.file, line=spot.line, col=spot.col, path=_path_text(parent) or None
        )
    if kind == "missing":
        missing = str(loc[-1])
        return InventoryError(
            f"missing required key {missing!r}", file=mark.file, line=mark.line, col=mark.col, path=text or None
        )
    return InventoryError(_describe(err, redactor), file=mark.file, line=mark.line, col=mark.col, path=text or None)


def _model_path(path: list[str | int]) -> tuple[str, ...]:
    """A tree path as :data:`_MODELS_BY_PATH` keys it: no list indices, ``*`` for the vantage under ``from``."""
    parts = [p for p in path if isinstance(p, str)]
    if parts[:2] == ["targets", "from"] and len(parts) > 2:
        parts[2] = "*"
    return tuple(parts)


def _path_text(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _describe(err: Mapping[str, Any], redactor: Redactor) -> str:
    """The message for one pydantic error; secrets are masked before any value is shortened."""
    kind = err["type"]
    value = err.get("input")
    shown = _short(redactor(value) if isinstance(value, str) else value)
    ctx = err.get("ctx") or {}
    if kind == "value_error":
        return redactor(str(err["msg"]).removeprefix("Value error, "))
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {shown}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {shown}"
    if kind == "string_pattern_mismatch":
        return f"{shown} is not allowed here: it must match {ctx.get('pattern')}"
    bounds = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {limit}, got {shown}"
    if kind == "too_short":
        return (
            "needs at least one entry"
            if ctx.get("min_length") == 1
            else f"needs at least {ctx.get('min_length')} entries"
        )
    if kind in ("too_long", "string_too_long", "string_too_short"):
        return f"{err['msg'].lower()}"
    return f"{err['msg']}, got {shown}"


def _short(value: Any) -> str:
    if isinstance(value, LocatedDict | dict):
        return "a mapping"
    if isinstance(value, LocatedList | list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_groups(tree: LocatedDict, model: Inventory) -> None:
    """Failover groups (issue 19) name targets of this inventory, and are no target themselves."""
    groups = tree.get("groups")
    if not isinstance(groups, LocatedList):
        return
    targets = [t.name for t in model.targets]
    names: set[str] = set()
    for index, (group, raw) in enumerate(zip(model.groups, groups, strict=True)):
        marks = raw.value_marks if isinstance(raw, LocatedDict) else {}
        here = marks.get("name", groups.item_marks[index])
        if group.name in targets or group.name in names:
            what = "a target" if group.name in targets else "another group"
            raise InventoryError(
                f"group name {group.name!r} is already {what}'s name; the report shows both as rows, so choose another",
                file=here.file,
                line=here.line,
                col=here.col,
                path=f"groups[{index}].name",
            )
        names.add(group.name)
        members = raw.get("any_of") if isinstance(raw, LocatedDict) else None
        for position, member in enumerate(group.any_of):
            if member in targets:
                continue
            mark = members.item_marks[position] if isinstance(members, LocatedList) else here
            close = difflib.get_close_matches(member, targets, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; targets: {', '.join(targets) or 'none'}"
            raise InventoryError(
                f"group {group.name!r} names unknown target {member!r}{hint}",
                file=mark.file,
                line=mark.line,
                col=mark.col,
                path=f"groups[{index}].any_of[{position}]",
            )
