"""Vantages (issue 17): the places an inventory is checked from, named execnet gateway specs.

The running pytest process is the vantage ``local``; every other one is a spec as pytest-xdist's
``--tx`` takes it (``popen//python=...``, ``ssh=user@host//python=python3``, ``socket=host:port``).
This module only names and validates them and works out a run's effective set; opening gateways is
the engine's. It imports the standard library only (execnet when a spec is checked), because the
options module calls it in every session that gives ``--autoglm-vantage``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The vantage that is the running pytest process itself (always there unless ``local=off``).
LOCAL_VANTAGE = "local"
#: The value that removes a vantage (YAML 1.1 reads a bare ``off`` as false: both mean it).
OFF = "off"
VANTAGE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
_VANTAGE_NAME = re.compile(VANTAGE_NAME_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: execnet's gateway types: a spec has exactly one.
GATEWAY_KEYS = ("popen", "ssh", "socket", "vagrant_ssh")
#: The ``//`` keys execnet honours besides the gateway type (``env:NAME`` aside).
OPTION_KEYS = ("python", "chdir", "id", "nice", "dont_write_bytecode", "execmodel", "ssh_config")
EXECMODELS = ("thread", "main_thread_only", "eventlet", "gevent")
#: Keys written without ``=value`` (execnet reads a bare key as true).
_FLAG_KEYS = frozenset({"popen", "dont_write_bytecode"})


@dataclass(frozen=True, slots=True)
class Vantage:
    """One place checks run from: ``spec`` is None for ``local`` (this process)."""

    name: str
    spec: str | None = None

    @property
    def is_local(self) -> bool:
        return self.spec is None


def check_vantage_name(name: object) -> str:
    """``name`` if it is a valid vantage name, else ValueError saying what is allowed."""
    if not isinstance(name, str) or not _VANTAGE_NAME.fullmatch(name):  # fullmatch: no "name\n"
        raise ValueError(
            f"{name!r} is not a vantage name: a letter, then up to 62 letters, digits, '_' or '-' (e.g. 'office')"
        )
    return name


def is_off(value: object) -> bool:
    """``off`` (or YAML's false, which a bare ``off`` becomes) removes a vantage."""
    return value is False or (isinstance(value, str) and value.strip() == OFF)


def check_spec(value: object) -> str:
    """The spec, stripped, if execnet can open a gateway from it; else ValueError saying what is wrong.

    Exactly one gateway type (popen, ssh=, socket=, vagrant_ssh=) and only the ``//`` keys execnet
    knows: a typo such as ``//pyhton=`` would otherwise be silently ignored by execnet.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            "expected an execnet gateway spec such as 'popen//python=python3', 'ssh=user@host//python=python3' "
            f"or 'socket=host:8888', or 'off'; got {value!r}"
        )
    spec = value.strip()
    seen: set[str] = set()
    gateways: list[str] = []
    for part in spec.split("//"):
        if not part:
            raise ValueError(f"{spec!r} has an empty '//' part; write KEY or KEY=VALUE between the '//'")
        key, eq, val = part.partition("=")
        if key in seen:
            raise ValueError(f"{spec!r} gives {key!r} twice; keep one")
        seen.add(key)
        _check_key(spec, key, bool(eq), val)
        if key in GATEWAY_KEYS:
            gateways.append(key)
    if len(gateways) != 1:
        what = "no gateway type" if not gateways else f"{len(gateways)} gateway types ({', '.join(gateways)})"
        raise ValueError(
            f"{spec!r} has {what}; give exactly one of popen, ssh=HOST, socket=HOST:PORT, vagrant_ssh=HOST"
        )
    if "ssh_config" in seen and gateways != ["ssh"]:
        raise ValueError(f"{spec!r}: ssh_config goes with an ssh= gateway only")
    _confirm_with_execnet(spec)
    return spec


def _check_key(spec: str, key: str, has_value: bool, value: str) -> None:
    if key.startswith("env:"):
        if not _ENV_NAME.match(key[4:]):
            raise ValueError(f"{spec!r}: {key!r} must name an environment variable, e.g. 'env:LANG=C'")
        if not has_value:
            raise ValueError(f"{spec!r}: {key!r} needs a value, e.g. '{key}=VALUE'")
        return
    known = (*GATEWAY_KEYS, *OPTION_KEYS)
    if key not in known:
        close = difflib.get_close_matches(key, [*known, "env:NAME"], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}, env:NAME"
        raise ValueError(f"{spec!r}: unknown key {key!r} ({hint})")
    if key in _FLAG_KEYS:
        if has_value:
            raise ValueError(f"{spec!r}: {key!r} takes no value; write just '{key}'")
        return
    if not has_value or not value.strip():
        raise ValueError(f"{spec!r}: {key!r} needs a value, e.g. '{key}={_EXAMPLES[key]}'")
    if key == "socket":
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{spec!r}: socket= takes HOST:PORT with a port 1..65535, e.g. 'socket=10.0.0.7:8888'")
    elif key == "nice" and not re.fullmatch(r"-?\d+", value.strip()):
        raise ValueError(f"{spec!r}: nice= takes a whole number, e.g. 'nice=10'")
    elif key == "execmodel" and value not in EXECMODELS:
        raise ValueError(f"{spec!r}: execmodel= takes one of {', '.join(EXECMODELS)}")


_EXAMPLES = {
    "ssh": "user@host",
    "socket": "host:8888",
    "vagrant_ssh": "default",
    "python": "python3",
    "chdir": "/tmp",
    "id": "office",
    "nice": "10",
    "execmodel": "thread",
    "ssh_config": "~/.ssh/config",
}


def _confirm_with_execnet(spec: str) -> None:
    """execnet's own parser must read the spec the same way (its public ``XSpec``)."""
    import execnet

    try:
        parsed = execnet.XSpec(spec)
    except (ValueError, AttributeError, IndexError) as exc:  # pragma: no cover - the checks above come first
        raise ValueError(f"{spec!r} is not an execnet spec: {exc}") from None
    if not any(getattr(parsed, key) for key in GATEWAY_KEYS):  # pragma: no cover - as above
        raise ValueError(f"{spec!r} names no gateway execnet knows")


def parse_vantage_option(text: str) -> tuple[str, str | None]:
    """``NAME=SPEC`` or ``NAME=off`` (of ``--autoglm-vantage``) -> (name, spec or None for off)."""
    name, eq, spec = text.strip().partition("=")
    if not eq:
        raise ValueError(f"expected NAME=SPEC or NAME=off, e.g. 'lan=popen//python=python3', got {text!r}")
    name = check_vantage_name(name.strip())
    if is_off(spec):
        return name, None
    if name == LOCAL_VANTAGE:
        raise ValueError("'local' is this pytest process and takes no spec; only 'local=off' is allowed")
    return name, check_spec(spec)


def effective_vantages(
    declared: Mapping[str, str | None] | None, command_line: Iterable[tuple[str, str | None]] = ()
) -> tuple[Vantage, ...] | None:
    """The vantages a run checks one inventory from, in order, or None when none are defined.

    ``declared`` is the inventory's ``vantages:`` (name -> spec, None: off); ``command_line`` the
    ``--autoglm-vantage`` pairs, which override by name or add. Order: ``local`` first (unless off),
    the inventory's in its order, then names only the command line gives. An empty tuple means
    every vantage was switched off (the caller says so: there is nothing to check from).
    """
    cli = dict(command_line)
    declared = declared or {}
    if not declared and not cli:
        return None
    names = [LOCAL_VANTAGE, *(n for n in declared if n != LOCAL_VANTAGE)]
    names += [n for n in cli if n not in names]
    local_off = LOCAL_VANTAGE in cli or LOCAL_VANTAGE in declared  # ``local`` may only be switched off
    out = [] if local_off else [Vantage(LOCAL_VANTAGE)]
    for name in names[1:]:
        spec = cli[name] if name in cli else declared[name]
        if spec is not None:
            out.append(Vantage(name, spec))
    return tuple(out)


def known_vantage_names(
    declared: Iterable[str], command_line: Iterable[tuple[str, str | None]] = ()
) -> tuple[str, ...]:
    """Every name a target may use in ``vantages:`` and ``from:``: ``local``, declared ones (even off), the command line's."""
    names = dict.fromkeys([LOCAL_VANTAGE, *declared, *(name for name, _ in command_line)])
    return tuple(names)


def mask_spec(spec: str) -> str:
    """A spec for the header and logs: ``//env:TOKEN=s3cret`` shows as ``//env:TOKEN=***``."""
    return "//".join(
        f"{part.partition('=')[0]}=***" if part.startswith("env:") and "=" in part else part
        for part in spec.split("//")
    )
