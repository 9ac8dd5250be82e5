"""Read inventory files into plain data that remembers where every value came from.

PyYAML only *composes* here (no object construction), so a tag such as
``!!python/object`` never builds anything: it is rejected with its position.
The result is made of :class:`LocatedDict` and :class:`LocatedList`, ordinary
containers that carry a :class:`Mark` per key and item, so that the model
validation in :mod:`.models` can point at ``file:line:col``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_autoglm.errors import InventoryError

#: Scalar tags allowed in an inventory; anything else (python/object, binary, custom !tags) is refused.
_PLAIN_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"  # kept as the text the user wrote
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

#: libyaml's parser when present (30x faster on large inventories), else the pure-Python one; both are safe.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Bound on nodes visited while expanding aliases ("billion laughs").
MAX_NODES = 200_000
#: Bound on the size of one inventory file.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Bound on nesting (a deeper document would exhaust Python's recursion limit).
MAX_DEPTH = 100
#: Characters YAML refuses (the reader's own set), to place the error at line:col.
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a file."""

    file: str
    line: int
    col: int

    @classmethod
    def of(cls, node: Node, file: str) -> Mark:
        return cls(file, node.start_mark.line + 1, node.start_mark.column + 1)


class LocatedDict(dict[str, Any]):
    """A mapping with the marks of its keys and values."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}


class LocatedList(list[Any]):
    """A sequence with the mark of each item."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []


def display_name(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when under it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def read_text(path: Path, *, named_at: Mark | None = None) -> str:
    """The file's text, refusing what is not UTF-8 with the position of the first bad byte."""
    name = display_name(path)
    where: dict[str, Any] = {"file": named_at.file, "line": named_at.line, "col": named_at.col} if named_at else {}
    try:
        with path.open("rb") as stream:  # bounded: an include of /dev/zero must not eat memory
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InventoryError(
            f"file not found: {name}; check the path (relative paths are relative to the file that names them)",
            **(where or {"file": name}),
        ) from None
    except IsADirectoryError:
        raise InventoryError(
            f"{name} is a directory; name an inventory YAML file", **(where or {"file": name})
        ) from None
    except OSError as exc:
        raise InventoryError(f"cannot read {name}: {exc.strerror}", **(where or {"file": name})) from None
    if len(data) > MAX_FILE_BYTES:
        raise InventoryError(
            f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it with include:", file=name
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise InventoryError(
            f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded; save the file as UTF-8",
            file=name,
            line=line,
            col=col,
        ) from None
    return text


def parse_yaml(text: str, file: str) -> LocatedDict:
    """Compose one YAML document safely and convert it into located plain data."""
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise InventoryError("empty inventory; it needs at least 'version: 1' and 'targets:'", file=file, line=1, col=1)
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise InventoryError(f"invalid YAML: {problem}", file=file, line=line, col=col) from None
    except yaml.YAMLError as exc:  # ReaderError (control characters) and friends
        bad = _NON_PRINTABLE.search(text)
        if bad is None:
            raise InventoryError(f"invalid YAML: {exc}".splitlines()[0], file=file, line=1, col=1) from None
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise InventoryError(
            f"invalid YAML: control character U+{ord(bad.group()):04X} is not allowed; remove it",
            file=file,
            line=line,
            col=col,
        ) from None
    except RecursionError:  # the pure-Python composer on absurdly deep nesting
        raise InventoryError(
            f"invalid YAML: nested more than {MAX_DEPTH} levels deep", file=file, line=1, col=1
        ) from None
    finally:
        loader.dispose()
    if node is None:
        raise InventoryError("empty inventory; it needs at least 'version: 1' and 'targets:'", file=file, line=1, col=1)
    data = _Converter(file).convert(node)
    if not isinstance(data, LocatedDict):
        where = Mark.of(node, file)
        raise InventoryError(
            "the top level must be a mapping with keys such as version, defaults and targets",
            file=file,
            line=where.line,
            col=where.col,
        )
    return data


class _Converter:
    """Turns composed nodes into located plain data, refusing unsafe or ambiguous YAML."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.visited = 0
        self.active: set[int] = set()
        self.depth = 0
        self.constructor = yaml.SafeLoader("")

    def error(self, node: Node, message: str) -> InventoryError:
        mark = Mark.of(node, self.file)
        return InventoryError(message, file=self.file, line=mark.line, col=mark.col)

    def convert(self, node: Node) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise self.error(node, f"document expands to more than {MAX_NODES} values (aliases?); simplify it")
        if id(node) in self.active:
            raise self.error(node, "recursive alias: a value refers to itself")
        if self.depth >= MAX_DEPTH:
            raise self.error(node, f"nested more than {MAX_DEPTH} levels deep; an inventory is much flatter")
        self.active.add(id(node))
        self.depth += 1
        try:
            if isinstance(node, ScalarNode):
                return self._scalar(node)
            if isinstance(node, SequenceNode):
                return self._sequence(node)
            if isinstance(node, MappingNode):
                return self._mapping(node)
            raise self.error(node, "unsupported YAML node")
        finally:
            self.depth -= 1
            self.active.discard(id(node))

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag in (_TIMESTAMP_TAG, _STR_TAG):  # most values: no constructor needed
            return node.value
        if node.tag not in _PLAIN_SCALAR_TAGS:
            raise self.error(
                node, f"YAML tag {node.tag!r} is not allowed: an inventory holds plain data only; remove the tag"
            )
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):  # `!!int abc`, `!!bool maybe`
            kind = node.tag.rsplit(":", 1)[-1]
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise self.error(
                node, f"{shown!r} is not a valid {kind}; fix the value (or remove its !!{kind} tag)"
            ) from None

    def _sequence(self, node: SequenceNode) -> LocatedList:
        if node.tag != _SEQ_TAG:
            raise self.error(
                node, f"YAML tag {node.tag!r} is not allowed: an inventory holds plain data only; remove the tag"
            )
        out = LocatedList(Mark.of(node, self.file))
        for item in node.value:
            out.append(self.convert(item))
            out.item_marks.append(Mark.of(item, self.file))
        return out

    def _mapping(self, node: MappingNode) -> LocatedDict:
        if node.tag != _MAP_TAG:
            raise self.error(
                node, f"YAML tag {node.tag!r} is not allowed: an inventory holds plain data only; remove the tag"
            )
        out = LocatedDict(Mark.of(node, self.file))
        merged: list[LocatedDict] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                raise self.error(key_node, "a mapping key must be a plain string")
            key = self.convert(key_node)
            if not isinstance(key, str):
                key = key_node.value  # `80: x` or `true: y`: keys are always names here
            if key in out:
                first = out.key_marks[key]
                raise self.error(key_node, f"duplicate key {key!r} (first at line {first.line}); keep only one")
            out[key] = self.convert(value_node)
            out.key_marks[key] = Mark.of(key_node, self.file)
            out.value_marks[key] = Mark.of(value_node, self.file)
        for source in merged:  # `<<: *base`: explicit keys win
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    out.key_marks[key] = source.key_marks[key]
                    out.value_marks[key] = source.value_marks[key]
        return out

    def _merge_sources(self, node: Node) -> Iterator[LocatedDict]:
        value = self.convert(node)
        sources = value if isinstance(value, LocatedList) else [value]
        for source in sources:
            if not isinstance(source, LocatedDict):
                raise self.error(node, "'<<' merges mappings only; give an alias of a mapping")
            yield source


def load_tree(path: Path) -> LocatedDict:
    """Read ``path`` and its includes, merged (the including file wins, key by key)."""
    return _load_with_includes(path.resolve(), chain=(), named_at=None, root_entry=None)


def _load_with_includes(
    path: Path, chain: tuple[Path, ...], named_at: Mark | None, root_entry: Mark | None
) -> LocatedDict:
    """``root_entry``: the include entry of the file pytest was given that led here; a cycle is
    reported there, in the file the user named (as the spec's ``prod.yaml:3:1: include cycle``)."""
    name = display_name(path)
    text = read_text(path, named_at=named_at)
    data = parse_yaml(text, name)
    includes = data.pop("include", None)
    include_mark = data.value_marks.pop("include", data.mark)
    data.key_marks.pop("include", None)
    if includes is None:
        return data
    if isinstance(includes, str):
        entries: list[tuple[Any, Mark]] = [(includes, include_mark)]
    elif isinstance(includes, LocatedList):
        entries = list(zip(includes, includes.item_marks, strict=True))
    else:
        raise InventoryError(
            "include must be a file name or a list of file names",
            file=name,
            line=include_mark.line,
            col=include_mark.col,
            path="include",
        )
    if not entries:  # `include: []`
        return data
    merged: LocatedDict | None = None
    for entry, mark in entries:
        if not isinstance(entry, str) or not entry.strip() or "\0" in entry:
            raise InventoryError(
                "include entries must be file names", file=name, line=mark.line, col=mark.col, path="include"
            )
        target = (path.parent / entry).resolve()
        if target in (*chain, path):
            names = " -> ".join(display_name(p) for p in (*chain, path, target))
            spot = root_entry or mark
            raise InventoryError(f"include cycle: {names}", file=spot.file, line=spot.line, col=spot.col)
        included = _load_with_includes(target, (*chain, path), named_at=mark, root_entry=root_entry or mark)
        merged = included if merged is None else merge_trees(merged, included)
    assert merged is not None
    return merge_trees(merged, data)


def merge_trees(base: LocatedDict, top: LocatedDict) -> LocatedDict:
    """Deep-merge ``top`` over ``base``; ``targets`` merge by name, other lists are replaced."""
    out = LocatedDict(top.mark)
    for source in (base, top):
        for key, value in source.items():
            current = out.get(key)
            merged: Any = value
            if key == "targets" and isinstance(current, LocatedList) and isinstance(value, LocatedList):
                merged = _merge_targets(current, value)
            elif isinstance(current, LocatedDict) and isinstance(value, LocatedDict):
                merged = merge_trees(current, value)
            out[key] = merged
            out.key_marks[key] = source.key_marks[key]
            out.value_marks[key] = source.value_marks[key]
    return out


def _merge_targets(base: LocatedList, top: LocatedList) -> LocatedList:
    """Targets of the including file override included targets of the same name, key by key."""
    out = LocatedList(top.mark)
    index: dict[str, int] = {}
    for items in (base, top):
        for item, mark in zip(items, items.item_marks, strict=True):
            name = item.get("name") if isinstance(item, LocatedDict) else None
            if (
                isinstance(name, str)
                and name in index
                and items is top
                and _from_other_file(out.item_marks[index[name]], mark)
            ):
                position = index[name]
                out[position] = merge_trees(out[position], item)
                out.item_marks[position] = mark
                continue
            if isinstance(name, str):
                index.setdefault(name, len(out))
            out.append(item)
            out.item_marks.append(mark)
    return out


def _from_other_file(a: Mark, b: Mark) -> bool:
    return a.file != b.file
