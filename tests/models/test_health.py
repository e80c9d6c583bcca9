"""Backend health: TTFT statistics, error rate, and the circuit breaker's state machine.

The breaker's clock is a constructor argument, so these tests step time instead of sleeping
(the real-time version runs against real sockets in test_faults.py).
"""

from __future__ import annotations

import pytest

from couchmate.errors import BackendUnavailable, ModelError
from couchmate.models.health import BackendHealth, BreakerState, HealthOptions


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _fail(h: BackendHealth, n: int = 1) -> None:
    for _ in range(n):
        h.record_failure(h.acquire(), ModelError("boom", status=500))


def test_ttft_ewma_p95_and_prior():
    h = BackendHealth("fast", HealthOptions(ewma_alpha=0.5, window=20, prior_ttft_s=0.7))
    assert h.expected_ttft_s() == 0.7 and h.ttft_p95_s() is None
    for s in [0.1] * 19 + [1.0]:
        h.record_ttft(s)
    assert h.ttft_p95_s() == pytest.approx(0.1)  # 1 slow call in 20 is the top 5%, not p95
    h.record_ttft(1.0)
    assert h.ttft_p95_s() == pytest.approx(1.0)  # window slid: 2 slow in the last 20
    # EWMA with alpha 0.5 after ..., 0.1, 1.0, 1.0: 0.1 → 0.55 → 0.775
    assert h.expected_ttft_s() == pytest.approx(0.775)


def test_error_rate_is_rolling():
    h = BackendHealth("fast", HealthOptions(window=4, failure_threshold=100))
    _fail(h, 2)
    for _ in range(2):
        h.record_success(h.acquire())
    assert h.error_rate() == pytest.approx(0.5)
    for _ in range(2):
        h.record_success(h.acquire())
    assert h.error_rate() == 0.0  # the two failures slid out of the window
    snap = h.snapshot()
    assert snap.calls == 6 and snap.error_rate == 0.0 and snap.state is BreakerState.CLOSED


def test_breaker_opens_half_opens_and_closes():
    clock = Clock()
    h = BackendHealth("smart", HealthOptions(failure_threshold=3, cooldown_s=10), clock=clock)
    _fail(h, 2)
    assert h.available() and h.state is BreakerState.CLOSED
    _fail(h)
    assert h.state is BreakerState.OPEN and not h.available()
    with pytest.raises(BackendUnavailable) as info:
        h.acquire()
    assert not info.value.retryable and "3 failures" in info.value.message

    clock.t += 10
    assert h.state is BreakerState.HALF_OPEN and h.available()
    probe = h.acquire()
    assert probe.probe
    assert not h.available()  # one probe at a time
    with pytest.raises(BackendUnavailable):
        h.acquire()
    h.record_success(probe)
    assert h.state is BreakerState.CLOSED and h.snapshot().consecutive_failures == 0


def test_failed_probe_reopens_and_cancelled_probe_frees_the_slot():
    clock = Clock()
    h = BackendHealth("smart", HealthOptions(failure_threshold=2, cooldown_s=5), clock=clock)
    _fail(h, 2)
    clock.t += 5
    h.release(h.acquire())  # probe cancelled: no verdict, still half-open
    assert h.state is BreakerState.HALF_OPEN and h.available()
    h.record_failure(h.acquire(), ModelError("still down"))
    assert h.state is BreakerState.OPEN
    clock.t += 4.9
    assert not h.available()
    clock.t += 0.1
    assert h.available()


def test_outcome_counts_once_per_permit():
    h = BackendHealth("fast", HealthOptions(failure_threshold=2))
    p = h.acquire()
    h.record_failure(p, ModelError("x"))
    h.record_failure(p, ModelError("x"))  # same call reported twice: ignored
    assert h.snapshot().consecutive_failures == 1 and h.state is BreakerState.CLOSED


def test_timeout_raises_expected_ttft():
    h = BackendHealth("smart", HealthOptions(prior_ttft_s=0.5))
    h.record_ttft(0.2)
    h.record_ttft_at_least(1.5)
    assert h.expected_ttft_s() == 1.5
