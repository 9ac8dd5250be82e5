"""The remote side of a vantage (issue 17): what execnet runs in the vantage's interpreter.

:class:`~pytest_autoglm.engine.vantage.GatewayRunner` sends this file's *source* over the gateway
(``gateway.remote_exec(module)``), where it runs as ``__channelexec__`` with a ``channel`` in its
globals. So everything above :func:`serve` is the standard library only: the first thing the
remote does is try to import pytest-autoglm *there* and say which version it found (the
handshake), and that must work even when the import fails.

The conversation on the channel (every message a tuple of builtin values, as execnet requires)::

    remote -> controller  ("hello", version | None, where, python, pid, problem)
    controller -> remote  ("start", concurrency, tls_concurrency)   (only if the versions match)
    controller -> remote  ("checks", pickled list of Check)          (any number of times)
    remote -> controller  ("results", pickled list of (check id, CheckResult))   (small batches)
    remote -> controller  ("error", text)                            (its engine broke: a bug)

The controller ends it by closing the channel or exiting the gateway; the remote then stops
its engine and returns. Checks and results travel pickled: both sides run the same version of
pytest-autoglm (the handshake makes sure), so the classes match.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import queue
import sys
import threading
import time
import traceback
from typing import Any

#: How long finished results gather before a batch is sent (as the forked runner does).
BATCH_WAIT_S = 0.005
#: At most this many results per message, so results keep streaming under a burst.
BATCH_MAX = 256
#: How often the remote loop looks at its engine's health while nothing happens.
POLL_S = 1.0

_END = ("end",)  # put in the remote's queue when the controller's side of the channel closes


def hello() -> tuple[str, str | None, str, str, int, str]:
    """The handshake: pytest-autoglm's version here and where it lives, or why it cannot be imported."""
    try:  # by name: it is what the handshake probes for (and the root package's markers would import pytest)
        package = importlib.import_module("pytest_autoglm")
    except Exception as exc:  # a missing package, or a broken one: the controller says what to install
        return ("hello", None, "", sys.executable, os.getpid(), f"{type(exc).__name__}: {exc}")
    version = str(getattr(package, "__version__", "unknown"))
    where = str(getattr(package, "__file__", "") or "")
    try:  # the engine and its dependencies, not just the package's name
        importlib.import_module("pytest_autoglm.engine.runner")
    except Exception as exc:
        return ("hello", version, where, sys.executable, os.getpid(), f"{type(exc).__name__}: {exc}")
    return ("hello", version, where, sys.executable, os.getpid(), "")


def serve(channel: Any) -> None:
    """Handshake, then run every check sent on an in-process engine and stream the results back."""
    channel.send(hello())
    try:
        first = channel.receive()
    except EOFError:  # the controller refused the handshake (another version) and closed
        return
    if not (isinstance(first, tuple) and first and first[0] == "start"):
        return
    _, concurrency, tls_concurrency = first
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    channel.setcallback(inbox.put, endmarker=_END)
    try:
        _run(channel, inbox, int(concurrency), int(tls_concurrency))
    except Exception as exc:  # a bug: the controller puts it in the message of every check still open
        text = traceback.format_exception_only(type(exc), exc)[-1].strip()
        try:
            channel.send(("error", text))
        except Exception:
            pass


def _run(channel: Any, inbox: queue.SimpleQueue[tuple[Any, ...]], concurrency: int, tls_concurrency: int) -> None:
    from pytest_autoglm.core.records import CheckResult
    from pytest_autoglm.engine.process import pickle_batch, settled_result
    from pytest_autoglm.engine.runner import Engine

    engine = Engine(concurrency=concurrency, tls_concurrency=tls_concurrency)
    lock = threading.Lock()
    done: list[tuple[str, CheckResult]] = []

    def settled(check: Any, future: Any) -> None:
        result = settled_result(check, future)
        with lock:
            first = not done
            done.append((check.id, result))
        if first:  # one wake-up per batch, not one per result
            inbox.put(("done",))

    seen: set[str] = set()
    open_checks = 0
    try:
        while True:
            try:
                message = inbox.get(timeout=POLL_S)
            except queue.Empty:
                if open_checks and not engine.alive():
                    raise RuntimeError("the probe engine at the vantage stopped") from None
                continue
            if message == _END:
                return
            if message[0] == "checks":
                checks = pickle.loads(message[1])
                fresh = [c for c in checks if c.id not in seen]
                seen.update(c.id for c in fresh)
                open_checks += len(fresh)
                engine.schedule(fresh)
                for check in fresh:
                    engine.when_done(check, functools.partial(settled, check))
                continue
            time.sleep(BATCH_WAIT_S)  # a result: let others gather, one message for many
            with lock:
                batch, done[:] = list(done), []
            for start in range(0, len(batch), BATCH_MAX):
                part = batch[start : start + BATCH_MAX]
                channel.send(("results", pickle_batch(part)))
            open_checks -= len(batch)
    finally:
        engine.close()


if __name__ == "__channelexec__":
    serve(globals()["channel"])
