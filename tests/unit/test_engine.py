"""The engine's retry policy, layer blocking and per-address verdicts (real asyncio, seeded randomness)."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st

from pytest_autoglm.core.records import CheckResult, Verdict
from pytest_autoglm.core.vocabulary import Layer, Outcome, Reason
from pytest_autoglm.engine.retry import backoff_delay, with_retries
from pytest_autoglm.engine.runner import Engine, _combine, blocks
from pytest_autoglm.inventory.plan import Check
from tests.timing import Stopwatch


def make_check(kind: Layer) -> Check:
    return Check(
        id=f"{kind}[e:t:x]",
        kind=kind,
        environment="e",
        inventory="e.yaml",
        target="t",
        subject="x",
        host="h.test",
        severity="critical",
        tags=(),
        timeout=1.0,
        retries=2,
        backoff=0.01,
        resolvers=(),
        ca_bundle=None,
        proxy=None,
        spec=None,
    )


def failed(layer: Layer, reason: Reason) -> CheckResult:
    return CheckResult(Outcome.FAILED, layer, reason, "broken")


@given(attempt=st.integers(0, 10), base=st.floats(0, 5), seed=st.integers(0, 2**32))
def test_full_jitter_stays_within_the_exponential_ceiling(attempt, base, seed):
    delay = backoff_delay(attempt, base, random.Random(seed))
    assert 0 <= delay <= base * 2**attempt


def run_attempts(verdicts: list[Verdict], retries: int) -> tuple[Verdict, int, int]:
    calls = 0

    async def attempt() -> Verdict:
        nonlocal calls
        calls += 1
        return verdicts[min(calls, len(verdicts)) - 1]

    verdict, attempts = asyncio.run(with_retries(attempt, retries=retries, backoff=0.001, rng=random.Random(1)))
    return verdict, attempts, calls


def test_transient_failures_are_retried_until_they_pass():
    timeout = Verdict.fail(Layer.TCP, Reason.FILTERED, "no answer")
    verdict, attempts, calls = run_attempts([timeout, timeout, Verdict.ok()], retries=2)
    assert verdict.passed and attempts == calls == 3


def test_retries_run_out():
    servfail = Verdict.fail(Layer.DNS, Reason.SERVFAIL, "servfail")
    verdict, attempts, calls = run_attempts([servfail], retries=2)
    assert verdict.reason is Reason.SERVFAIL and attempts == calls == 3


def test_a_definite_wrong_answer_is_not_retried():
    mismatch = Verdict.fail(Layer.DNS, Reason.MISMATCH, "other addresses")
    verdict, attempts, calls = run_attempts([mismatch, Verdict.ok()], retries=5)
    assert verdict.reason is Reason.MISMATCH and attempts == calls == 1
    assert not Verdict.fail(Layer.TCP, Reason.UNEXPECTED_OPEN, "open").transient


def test_what_blocks_the_layers_above():
    dns, tcp, tls = make_check(Layer.DNS), make_check(Layer.TCP), make_check(Layer.TLS)
    for reason in (Reason.NXDOMAIN, Reason.SERVFAIL, Reason.REFUSED, Reason.TIMEOUT):
        assert blocks(dns, failed(Layer.DNS, reason))
    assert not blocks(dns, failed(Layer.DNS, Reason.MISMATCH))
    assert not blocks(dns, failed(Layer.DNS, Reason.NODATA))
    assert blocks(tcp, failed(Layer.TCP, Reason.FILTERED))
    assert blocks(tls, failed(Layer.TLS, Reason.UNTRUSTED))
    assert not blocks(tls, failed(Layer.TLS, Reason.EXPIRING))
    assert not blocks(tcp, CheckResult(Outcome.PASSED, None, None, "ok"))
    assert not blocks(tcp, CheckResult(Outcome.ERROR, Layer.TCP, Reason.SETUP, "no fds"))


def test_an_expectation_holds_only_if_it_holds_on_every_address():
    ok = (Verdict.ok("fine", address="127.0.0.1"), 1)
    bad = (Verdict.fail(Layer.TCP, Reason.REFUSED, "::1 port 80: refused", address="::1"), 3)
    result = _combine(["127.0.0.1", "::1"], [ok, bad])
    assert (result.outcome, result.reason, result.address, result.attempts) == (
        Outcome.FAILED,
        Reason.REFUSED,
        "::1",
        3,
    )
    assert result.details["addresses"] == {
        "127.0.0.1": {"outcome": "passed", "reason": None},
        "::1": {"outcome": "failed", "reason": "refused"},
    }
    assert "(3 attempts)" in result.message
    both = _combine(["127.0.0.1", "::1"], [ok, ok])
    assert both.outcome is Outcome.PASSED


def test_retries_stop_when_the_check_budget_is_spent():
    """A lookup that used most of the budget leaves the probe fewer attempts (spec: item bound)."""
    timeout = Verdict.fail(Layer.TCP, Reason.FILTERED, "no answer")
    calls = 0

    async def attempt() -> Verdict:
        nonlocal calls
        calls += 1
        return timeout

    verdict, attempts = asyncio.run(
        with_retries(attempt, retries=5, backoff=0.01, rng=random.Random(1), time_left=lambda: 0.0)
    )
    assert (verdict.reason, attempts, calls) == (Reason.FILTERED, 1, 1)


def test_an_item_stays_within_its_budget_when_the_lookup_is_slow(pytester):
    """Silent resolver (timeout 0.5s, retries 1): lookup and probe share one budget of 2 x 0.5s."""

    from tests.fakes.dns_server import FakeDnsServer

    with FakeDnsServer({}, mode="silent") as silent:
        (pytester.path / "b.yaml").write_text(
            f'version: 1\ndefaults: {{timeout: 500ms, retries: 1, backoff: 0, resolvers: ["{silent.address}"]}}\n'
            "targets:\n  - name: a\n    host: slow.test\n    tcp: {open: [443]}\n"
        )
        watch = Stopwatch().start()
        result = pytester.runpytest("--autoglm-target", "b.yaml", "--durations=1")
        elapsed = watch.now()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*reason:   timeout*"])
    assert elapsed < 8  # not a second budget for the probe after the lookup's two attempts


def test_when_done_schedules_a_check_nobody_scheduled():
    """An item another plugin adds after collection still gets its probe (and is walked)."""
    import concurrent.futures
    import dataclasses

    from pytest_autoglm.engine.runner import Engine
    from pytest_autoglm.inventory.plan import TcpCheckSpec
    from tests.fakes.tcp_servers import tcp_listener

    engine = Engine()
    settled: concurrent.futures.Future[CheckResult] = concurrent.futures.Future()
    try:
        with tcp_listener() as listener:
            check = dataclasses.replace(
                make_check(Layer.TCP), host="127.0.0.1", retries=0, spec=TcpCheckSpec(listener.port, "open")
            )
            engine.when_done(check, lambda future: settled.set_result(future.result()))
            assert settled.result(timeout=10).outcome is Outcome.PASSED
    finally:
        engine.close()


def test_both_engines_are_runners() -> None:
    """The plugin talks to either engine through the Runner protocol only."""
    from pytest_autoglm.engine.process import ProcessRunner
    from pytest_autoglm.engine.runner import Runner

    engine = Engine()
    runner: Runner = engine  # mypy checks the signatures, isinstance the names
    assert isinstance(runner, Runner)
    members = {name for name in dir(Runner) if not name.startswith("_")}
    assert members <= set(dir(ProcessRunner))
