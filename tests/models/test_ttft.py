"""Time to first token by prompt size: the fit, its prior, deadline-cut calls as lower bounds,
and the rule that a call cut by our own deadline is not a backend failure."""

from __future__ import annotations

import asyncio

import pytest

from couchmate.errors import BackendUnavailable, BudgetExceeded
from couchmate.models.health import BackendHealth, BreakerState, HealthOptions
from couchmate.models.prompt import Prompt, Turn
from couchmate.models.retry import RetryPolicy
from couchmate.models.scripted_server import Answer, ScriptedServer, Stall
from couchmate.models.ttft import PrefixTracker, TtftModel, estimate_tokens
from tests.models.support import make_backend


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_before_any_sample_the_prior_grows_with_prompt_size():
    e = TtftModel(prior_ttft_s=1.0).estimate()
    assert e.samples == 0
    assert e.at(50) < e.at(500) < e.at(900)
    assert e.base_s + e.per_token_s * 500 == pytest.approx(1.0)  # the prior holds at 500


def test_the_fit_learns_a_cpu_models_line_from_its_calls():
    """SmolLM2-135M on this machine: ~0.1 s + ~5 ms per prompt token (single thread)."""
    m = TtftModel(prior_ttft_s=1.0)
    for i in range(30):
        n = (40, 150, 300, 600)[i % 4]
        m.observe(n, 0.1 + 0.005 * n)
    e = m.estimate()
    assert e.samples == 30
    assert e.per_token_s == pytest.approx(0.005, rel=0.15)
    assert e.base_s == pytest.approx(0.1, abs=0.1)
    assert e.at(600) == pytest.approx(3.1, rel=0.2)
    # The inverse: how big a prompt starts within a second and a half.
    n = e.tokens_within(1.5)
    assert e.at(n) <= 1.5 < e.at(n + 5)
    assert e.tokens_within(0.01) == -1


def test_spread_is_the_p95_of_how_far_calls_land_above_the_line():
    m = TtftModel()
    for i in range(40):
        m.observe(200, 1.0 if i % 10 else 2.0)  # one call in ten takes twice as long
    e = m.estimate()
    assert e.spread > 1.3 and e.at(200) >= 1.9


def test_a_deadline_cut_call_raises_the_line_where_it_is_lower_and_expires():
    clock = Clock()
    m = TtftModel(censored_ttl_s=60.0, clock=clock)
    for _ in range(10):
        m.observe(100, 0.5)
    before = m.estimate().at(100)
    m.observe_at_least(100, 0.3)  # under the line already: tells nothing new
    assert m.estimate().at(100) == pytest.approx(before, rel=0.01)
    for _ in range(3):
        m.observe_at_least(300, 4.0)  # far above it: the line must come up
    assert m.estimate().at(300) >= 3.0
    clock.t += 61  # a minute on, the bounds no longer count: the backend gets tried again
    assert m.estimate().at(300) < 3.0


def test_only_the_new_part_of_a_request_costs_tokens():
    p = PrefixTracker()
    system = "You are Sunny. " * 100
    assert p.new_tokens(system + "what's up?") == estimate_tokens(system + "what's up?")
    assert p.new_tokens(system + "how am I doing?") == estimate_tokens("how am I doing?")
    h = BackendHealth("fast")
    first = h.request_tokens(Prompt(system=system, user="hi"))
    again = h.request_tokens(Prompt(system=system, history=[Turn("user", "hi")], user="yo"))
    assert first > 300 and again < 20


def test_our_own_deadline_is_not_a_backend_failure():
    """The user's failure: a CPU model slower than the budget. Every call was cut by our
    deadline, counted as an error, and after three the breaker opened — no model at all."""
    h = BackendHealth("fast", HealthOptions(failure_threshold=3))
    for _ in range(5):
        h.record_failure(h.acquire(), BudgetExceeded("no first token", budget_s=2.5))
    snap = h.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.available
    assert snap.consecutive_failures == 0 and snap.error_rate == 0.0 and snap.calls == 0


def test_deadline_cuts_over_real_sockets_leave_the_breaker_closed():
    async def main():
        async with ScriptedServer(default=Stall()) as srv:
            backend = make_backend(
                srv.base_url,
                retry=RetryPolicy(max_attempts=1),
                health=HealthOptions(failure_threshold=3),
            )
            for _ in range(4):
                with pytest.raises(BudgetExceeded):
                    async with backend.stream(Prompt(user="what is my health?"), budget_s=0.2) as r:
                        async for _ in r:
                            pass
            snap = backend.health.snapshot()
            assert snap.state is BreakerState.CLOSED, snap
            assert snap.consecutive_failures == 0
            # …and it learnt that this prompt takes at least the budget to start.
            assert snap.ttft.at(backend.health.ttft._samples[-1].tokens) >= 0.2
            srv.default = Answer("Your health is 45.", ttft_s=0.05)
            try:
                async with backend.stream(Prompt(user="and now?"), budget_s=2.0) as r:
                    text = "".join([d async for d in r])
            except BackendUnavailable:  # the old rule: open after three cuts
                text = "<breaker open>"
            await backend.aclose()
            return text

    assert asyncio.run(main()) == "Your health is 45."
