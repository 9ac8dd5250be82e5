"""Issue 4's acceptance check: a real browser is the judge of the ``cors`` probe.

For every case in ``CASES`` (a target URL, a method, request headers, credentials), the
probe's verdict (``check_cors_origin(..., should_allow=True)``: passed means allowed) must
agree with headless Chromium running ``fetch(url, {method, headers, credentials, mode:
'cors'})`` from the same origin (allowed: the promise resolved; denied: a TypeError).

How: an "origin" server on ``127.0.0.2`` serves one page that runs every case at once and
POSTs the outcomes back to its own ``/result``; cases marked ``null`` run in a sandboxed
iframe of that page (an opaque origin, so Chromium sends ``Origin: null``) and reach the
page by ``postMessage``. The targets are ``cors_app()`` (Starlette's CORSMiddleware and the
hand-written ``/hand``) plus ``/mine/``, a CORSMiddleware configured for the page's origin,
all on ``127.0.0.1`` - two loopback hosts, two ports: two origins. Chromium is started once
per module (once per xdist worker), with the lab's flags (no outside traffic) and a new,
empty profile, and stopped by its PID (and its leftover children by theirs). Every URL gets
a ``case=`` query of its own, so neither Chromium's preflight cache nor its HTTP cache
carries one case's answer over to another.

Skipped (with the reason) without ``chromium`` on PATH or when not root (the lab's flags
include ``--no-sandbox``, which is only meant for root here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pytest_autoglm.core.records import Verdict
from pytest_autoglm.probes.cors import CorsExpectation, check_cors_origin
from tests.fakes.http_servers import UvicornServer, _hand_written, cors_app

CHROMIUM = shutil.which("chromium")
# The lab's flags (shared/lab-facts.md, "HTTP and browsers"): without the networking ones
# Chromium keeps trying to reach outside hosts. Plus a new, empty --user-data-dir per start.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ORIGIN_HOST = "127.0.0.2"  # the page's host; the targets listen on 127.0.0.1
FETCH_TIMEOUT_MS = 5000  # per fetch() in the page
RESULTS_TIMEOUT = 30.0  # Chromium start + page + every case, in seconds
STOP_TIMEOUT = 5.0
PROBE_TIMEOUT = 3.0


def _skip_reason() -> str | None:
    if CHROMIUM is None:
        return "chromium is not on PATH (Debian package 'chromium'; scripts/test.sh installs it as root)"
    if os.geteuid() != 0:
        return "not root: headless Chromium runs here only as root with --no-sandbox"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """One cross-origin fetch. ``path`` is on the target server; in ``query`` the value
    ``{origin}`` stands for the page's origin (``$origin`` makes /hand echo the request's)."""

    id: str
    path: str
    spec: str  # what the Fetch standard says: "allowed" or "denied" (documentation and messages)
    query: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    credentials: bool = False
    null: bool = False  # from a sandboxed iframe: Origin: null
    disagreement: str | None = None  # the plugin and Chromium are known to disagree: why


KEY = {"X-Api-Key": "k1"}
JSON_CT = {"Content-Type": "application/json"}
ECHO = "$origin"

CASES: tuple[Case, ...] = (
    # /mine/: Starlette's CORSMiddleware for the page's origin, credentials, GET/POST/PUT, X-Api-Key
    Case("mine-exact-origin", "/mine/", "allowed"),
    Case("mine-exact-origin-credentials", "/mine/", "allowed", credentials=True),
    Case("mine-put-header-credentials", "/mine/", "allowed", method="PUT", headers=KEY, credentials=True),
    Case("mine-delete-not-in-allow-methods", "/mine/", "denied", method="DELETE"),
    Case("mine-header-not-in-allow-headers", "/mine/", "denied", headers={"X-Other": "1"}),
    # cors_app(): the other origins' policies
    Case("strict-other-origin", "/strict/", "denied"),
    Case("strict-other-origin-preflight", "/strict/", "denied", method="PUT", headers=KEY, credentials=True),
    Case("public-wildcard", "/public/", "allowed"),
    Case("public-wildcard-put-header", "/public/", "allowed", method="PUT", headers=KEY),
    Case("public-wildcard-credentials", "/public/", "denied", credentials=True),
    Case("any-credentials-reflects", "/any-credentials/", "allowed", credentials=True),
    Case("any-credentials-reflects-no-credentials", "/any-credentials/", "allowed"),
    Case("plain-no-cors", "/plain", "denied"),
    Case("plain-preflight-405", "/plain", "denied", method="PUT"),
    # /hand: exactly the headers the query asks for
    Case("hand-exact-origin", "/hand", "allowed", {"acao": "{origin}"}),
    Case("hand-origin-trailing-slash", "/hand", "denied", {"acao": "{origin}/"}),
    Case("hand-other-origin", "/hand", "denied", {"acao": "http://127.0.0.3:1"}),
    Case("hand-wildcard", "/hand", "allowed", {"acao": "*"}),
    Case("hand-wildcard-credentials", "/hand", "denied", {"acao": "*", "acac": "true"}, credentials=True),
    Case("hand-credentials-missing", "/hand", "denied", {"acao": ECHO}, credentials=True),
    Case("hand-credentials-True", "/hand", "denied", {"acao": ECHO, "acac": "True"}, credentials=True),
    Case("hand-credentials-true", "/hand", "allowed", {"acao": ECHO, "acac": "true"}, credentials=True),
    Case("hand-put-allowed", "/hand", "allowed", {"acao": ECHO, "acam": "PUT"}, method="PUT"),
    Case("hand-put-not-allowed", "/hand", "denied", {"acao": ECHO, "acam": "GET, POST, DELETE"}, method="PUT"),
    Case("hand-methods-wildcard", "/hand", "allowed", {"acao": ECHO, "acam": "*"}, method="PUT"),
    Case(
        "hand-methods-wildcard-credentials",
        "/hand",
        "denied",
        {"acao": ECHO, "acac": "true", "acam": "*"},
        method="PUT",
        credentials=True,
    ),
    Case("hand-header-allowed", "/hand", "allowed", {"acao": ECHO, "acah": "X-Api-Key"}, headers=KEY),
    Case("hand-header-name-any-case", "/hand", "allowed", {"acao": ECHO, "acah": "x-API-KEY"}, headers=KEY),
    Case("hand-header-not-allowed", "/hand", "denied", {"acao": ECHO, "acah": "X-Other"}, headers=KEY),
    Case("hand-headers-wildcard", "/hand", "allowed", {"acao": ECHO, "acah": "*"}, headers=KEY),
    Case(
        "hand-headers-wildcard-authorization",
        "/hand",
        "denied",
        {"acao": ECHO, "acah": "*"},
        headers={"Authorization": "Bearer t"},
        # The Fetch standard says '*' never covers Authorization, but Chromium (the judge of issue 4)
        # lets it: the probe follows the browser and says so in its message.
    ),
    Case(
        "hand-authorization-listed-credentials",
        "/hand",
        "allowed",
        {"acao": ECHO, "acac": "true", "acah": "Authorization"},
        headers={"Authorization": "Bearer t"},
        credentials=True,
    ),
    Case(
        "hand-headers-wildcard-credentials",
        "/hand",
        "denied",
        {"acao": ECHO, "acac": "true", "acah": "*"},
        headers=KEY,
        credentials=True,
    ),
    Case("hand-preflight-405", "/hand", "denied", {"acao": ECHO, "acam": "PUT", "pstatus": "405"}, method="PUT"),
    Case("hand-preflight-500", "/hand", "denied", {"acao": ECHO, "acam": "PUT", "pstatus": "500"}, method="PUT"),
    Case("hand-preflight-no-cors-headers", "/hand", "denied", {"pstatus": "200"}, method="PUT"),
    Case("hand-simple-post", "/hand", "allowed", {"acao": ECHO}, method="POST"),
    Case("hand-actual-503-with-cors", "/hand", "allowed", {"acao": ECHO, "status": "503"}),
    Case("hand-actual-503-without-cors", "/hand", "denied", {"status": "503"}),
    # method names: put is normalised to PUT, patch is sent as written; both compared exactly
    Case("method-put-lowercase-vs-PUT", "/hand", "allowed", {"acao": ECHO, "acam": "PUT"}, method="put"),
    Case("method-put-lowercase-vs-put", "/hand", "denied", {"acao": ECHO, "acam": "put"}, method="put"),
    # (/hand-any: /hand's answers for any method; /hand's route knows only upper-case methods)
    Case("method-patch-lowercase-vs-patch", "/hand-any", "allowed", {"acao": ECHO, "acam": "patch"}, method="patch"),
    Case("method-patch-lowercase-vs-PATCH", "/hand-any", "denied", {"acao": ECHO, "acam": "PATCH"}, method="patch"),
    Case("method-PATCH-vs-patch", "/hand-any", "denied", {"acao": ECHO, "acam": "patch"}, method="PATCH"),
    Case(
        "hand-actual-patch-405-without-cors",
        "/hand",
        "denied",
        {"acao": ECHO, "acam": "patch"},
        method="patch",
    ),
    # Content-Type
    Case("content-type-json-not-allowed", "/hand", "denied", {"acao": ECHO}, method="POST", headers=JSON_CT),
    Case(
        "content-type-json-allowed",
        "/hand",
        "allowed",
        {"acao": ECHO, "acah": "Content-Type"},
        method="POST",
        headers=JSON_CT,
    ),
    Case(
        "content-type-text-plain",
        "/hand",
        "allowed",
        {"acao": ECHO},
        method="POST",
        headers={"Content-Type": "text/plain"},
    ),
    Case(
        "content-type-form-urlencoded",
        "/hand",
        "allowed",
        {"acao": ECHO},
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "content-type-multipart",
        "/hand",
        "allowed",
        {"acao": ECHO},
        method="POST",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    ),
    # Origin: null, from a sandboxed iframe
    Case("null-allowed", "/null/", "allowed", null=True),
    Case("null-not-in-list", "/strict/", "denied", null=True),
    Case("null-hand-credentials", "/hand", "allowed", {"acao": "null", "acac": "true"}, credentials=True, null=True),
)


# --------------------------------------------------------------------------- the servers


class _RequestLog:
    """ASGI wrapper: what the target received, per ``case=`` id (method, preflight or not)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = dict(
                p.split("=", 1) for p in scope.get("query_string", b"").decode("latin-1").split("&") if "=" in p
            )
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            what = scope["method"]
            if what == "OPTIONS" and "access-control-request-method" in headers:
                what = f"preflight({headers['access-control-request-method']}"
                if "access-control-request-headers" in headers:
                    what += f"; {headers['access-control-request-headers']}"
                what += ")"
            what += f" Origin={headers.get('origin', '-')}"
            if "case" in query:
                with self._lock:
                    self.seen.setdefault(query["case"], []).append(what)
        await self.app(scope, receive, send)

    def get(self, case: str) -> list[str]:
        with self._lock:
            return list(self.seen.get(case, []))


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("hello")(scope, receive, send)


def target_app(origin: str) -> _RequestLog:
    """``cors_app()`` plus ``/mine/``: Starlette's CORSMiddleware configured for ``origin``."""
    mine = CORSMiddleware(
        _hello,
        allow_origins=[origin],
        allow_methods=["GET", "POST", "PUT"],
        allow_headers=["X-Api-Key"],
        allow_credentials=True,
    )
    routes = [Mount("/mine", app=mine), Route("/hand-any", _AnyMethodHand()), *cors_app().routes]
    return _RequestLog(Starlette(routes=routes))


class _AnyMethodHand:
    """``/hand``'s answers for every method, lower-case ones too (an ASGI app: no method filter)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await _hand_written(Request(scope, receive))
        await response(scope, receive, send)


_RUNNER_JS = """
const TIMEOUT_MS = %(timeout)d;
async function runCase(c) {
  const init = {method: c.method, headers: c.headers, mode: 'cors', cache: 'no-store',
                credentials: c.credentials ? 'include' : 'omit', signal: AbortSignal.timeout(TIMEOUT_MS)};
  try {
    const response = await fetch(c.url, init);
    return {id: c.id, outcome: 'allowed', status: response.status};
  } catch (e) {
    return {id: c.id, outcome: e instanceof TypeError ? 'denied' : 'error', error: e.name + ': ' + e.message};
  }
}
function runAll(cases) { return Promise.all(cases.map(runCase)); }
"""

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cors judge</title></head><body>
<pre id="results">running</pre>
<script>
%(runner)s
const CASES = %(cases)s;
const NULL_CASES = %(null_count)d;
function fromFrame() {
  if (NULL_CASES === 0) return Promise.resolve([]);
  return new Promise(resolve => {
    const frame = document.createElement('iframe');
    const timer = setTimeout(() => resolve([{id: '(iframe)', outcome: 'error', error: 'no answer from the iframe'}]),
                             TIMEOUT_MS + 3000);
    window.addEventListener('message', event => {
      if (event.source !== frame.contentWindow) return;
      clearTimeout(timer);
      resolve(event.data);
    });
    frame.setAttribute('sandbox', 'allow-scripts');  // no allow-same-origin: an opaque origin
    frame.src = '/frame';
    document.body.appendChild(frame);
  });
}
Promise.all([runAll(CASES), fromFrame()]).then(async ([here, framed]) => {
  const results = here.concat(framed);
  document.getElementById('results').textContent = JSON.stringify(results);
  await fetch('/result', {method: 'POST', body: JSON.stringify(results)});
});
</script></body></html>
"""

_FRAME = """<!doctype html>
<html><head><meta charset="utf-8"></head><body><script>
%(runner)s
runAll(%(cases)s).then(results => parent.postMessage(results, '*'));
</script></body></html>
"""


class OriginSite:
    """The page's server on ``ORIGIN_HOST``: ``/`` (the main cases), ``/frame`` (the null
    cases, for a sandboxed iframe) and ``/result`` (the page POSTs the outcomes here)."""

    def __init__(self) -> None:
        self.page = ""
        self.frame = ""
        self.results: list[dict[str, Any]] | None = None
        self.got_results = threading.Event()
        app = Starlette(
            routes=[
                Route("/", self._page),
                Route("/frame", self._frame),
                Route("/result", self._result, methods=["POST"]),
            ]
        )
        self.server = UvicornServer(app, host=ORIGIN_HOST)
        self.origin = f"http://{ORIGIN_HOST}:{self.server.port}"

    async def _page(self, request: Request) -> Response:
        return HTMLResponse(self.page)

    async def _frame(self, request: Request) -> Response:
        return HTMLResponse(self.frame)

    async def _result(self, request: Request) -> Response:
        self.results = await request.json()
        self.got_results.set()
        return JSONResponse({"ok": True})


def case_url(target: UvicornServer, case: Case, origin: str) -> str:
    query = {k: v.replace("{origin}", origin) for k, v in case.query.items()}
    query["case"] = case.id
    return target.url(f"{case.path}?{urlencode(query)}")


def _script_cases(cases: list[Case], target: UvicornServer, origin: str) -> str:
    data = [
        {
            "id": c.id,
            "url": case_url(target, c, origin),
            "method": c.method,
            "headers": c.headers,
            "credentials": c.credentials,
        }
        for c in cases
    ]
    return json.dumps(data).replace("</", "<\\/")


# --------------------------------------------------------------------------- Chromium


def _group_members(pgid: int) -> list[int]:
    """PIDs still alive in process group ``pgid`` (Chromium's helpers), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def _stop_chromium(proc: subprocess.Popen[bytes]) -> None:
    """Stop the browser by its PID, then any of its helpers left behind, each by its own PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while (left := _group_members(proc.pid)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def run_in_chromium(url: str, site: OriginSite, workdir: Path) -> list[dict[str, Any]]:
    """Open ``url`` in a new headless Chromium and wait (bounded) for the page's results."""
    profile = workdir / "profile"
    profile.mkdir()
    log_path = workdir / "chromium.log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # loopback only, no proxy
    env["HOME"] = env["TMPDIR"] = str(workdir)  # its scratch files stay in the test's temporary folder
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: its helpers can be found and stopped
        )
    try:
        deadline = time.monotonic() + RESULTS_TIMEOUT
        while not site.got_results.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exited with {proc.returncode}" if proc.poll() is not None else f"no results in {RESULTS_TIMEOUT}s"
                )
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"Chromium {why}; its log ends with:\n{tail}")
    finally:
        _stop_chromium(proc)
    assert site.results is not None
    return site.results


@dataclass
class Lab:
    origin: str
    target: UvicornServer
    log: _RequestLog
    browser: dict[str, dict[str, Any]]  # case id -> {"outcome": "allowed"|"denied"|"error", ...}
    seconds: float


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = time.monotonic()
    site = OriginSite()
    log = target_app(site.origin)
    with site.server, UvicornServer(log) as target:
        main = [c for c in CASES if not c.null]
        framed = [c for c in CASES if c.null]
        runner = _RUNNER_JS % {"timeout": FETCH_TIMEOUT_MS}
        site.page = _PAGE % {
            "runner": runner,
            "cases": _script_cases(main, target, site.origin),
            "null_count": len(framed),
        }
        site.frame = _FRAME % {"runner": runner, "cases": _script_cases(framed, target, "null")}
        results = run_in_chromium(site.server.url("/"), site, tmp_path_factory.mktemp("chromium"))
        browser = {r["id"]: r for r in results}
        yield Lab(site.origin, target, log, browser, time.monotonic() - started)


# --------------------------------------------------------------------------- the check


def plugin_verdict(lab: Lab, case: Case) -> Verdict:
    origin = "null" if case.null else lab.origin
    expect = CorsExpectation(
        case_url(lab.target, case, origin),
        methods=(case.method,),
        headers=tuple(f"{name}: {value}" for name, value in case.headers.items()),  # values decide safelisting
        credentials=case.credentials,
    )
    return asyncio.run(check_cors_origin(expect, origin, should_allow=True, timeout=PROBE_TIMEOUT))


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.disagreement)] if case.disagreement else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_plugin_agrees_with_chromium(lab: Lab, case: Case) -> None:
    browser = lab.browser.get(case.id)
    assert browser is not None, f"the page reported nothing for {case.id}: {sorted(lab.browser)}"
    assert browser["outcome"] in ("allowed", "denied"), f"Chromium could not judge {case.id}: {browser}"
    seen_by_browser = lab.log.get(case.id)
    verdict = plugin_verdict(lab, case)
    plugin = "allowed" if verdict.passed else "denied"
    assert plugin == browser["outcome"], (
        f"{case.id}: plugin says {plugin} ({verdict.reason}: {verdict.message}); Chromium says "
        f"{browser['outcome']} ({browser.get('error') or browser.get('status')}); Fetch says {case.spec}; "
        f"Chromium sent {seen_by_browser}"
    )


def test_the_table_has_both_outcomes(lab: Lab) -> None:
    """A broken lab (every fetch failing) must not pass as agreement."""
    outcomes = {r["outcome"] for r in lab.browser.values()}
    assert {"allowed", "denied"} <= outcomes, lab.browser
    assert len(lab.browser) == len(CASES)
    assert lab.seconds < 40, f"the browser part took {lab.seconds:.1f}s"
