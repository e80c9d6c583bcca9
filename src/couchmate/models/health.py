"""How a backend is doing: time to first token, error rate, and a circuit breaker.

The router reads this before every decision, so reads are cheap: the p95 and the TTFT fit
are recomputed only when a new sample arrives, and `snapshot()` is a handful of attribute
reads. Time to first token is learnt by prompt size (`couchmate.models.ttft`): each sample
carries the number of prompt tokens the server had to read.

A call cut by our own deadline (BudgetExceeded: the moment's budget, the player's patience)
is not a backend failure: it counts no error and never opens the breaker; it is a sample
that the first token takes at least that long at that prompt size. Connection failures,
HTTP errors, broken streams and garbage are failures.

Breaker: closed → open after `failure_threshold` consecutive failures → after `cooldown_s`
one probe call is let through (half-open) → its success closes the breaker, its failure
opens it again for another cool-down. While open, calls fail at once with no network.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from couchmate.errors import BackendUnavailable, BudgetExceeded
from couchmate.models.ttft import (
    IMAGE_TOKENS,
    REF_TOKENS,
    PrefixTracker,
    TtftEstimate,
    TtftModel,
)
from couchmate.types import now

if TYPE_CHECKING:
    from couchmate.models.prompt import Prompt


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class HealthOptions:
    failure_threshold: int = 3
    cooldown_s: float = 15.0
    # Rolling window (calls) for the TTFT p95 and the error rate.
    window: int = 50
    ewma_alpha: float = 0.3
    # What expected_ttft_s() says before the first sample (the TTFT fit's prior, taken
    # to hold at a 500-token prompt).
    prior_ttft_s: float = 1.0
    # A deadline-cut call's lower bound stops counting after this long.
    censored_ttl_s: float = 60.0


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    name: str
    state: BreakerState
    available: bool
    ttft_ewma_s: float | None
    ttft_p95_s: float | None
    error_rate: float
    calls: int
    consecutive_failures: int
    last_error: str
    #: TTFT by prompt size (new tokens), fitted from the calls so far
    ttft: TtftEstimate | None = None


@dataclass(slots=True)
class Permit:
    """Leave to make one call; `probe` marks the single half-open trial call."""

    probe: bool
    done: bool = False


class BackendHealth:
    def __init__(
        self,
        name: str,
        options: HealthOptions | None = None,
        *,
        base_url: str = "",
        clock: Callable[[], float] = now,
    ):
        self.name = name
        self.options = options or HealthOptions()
        self.base_url = base_url
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._consecutive_failures = 0
        self._ttft_ewma: float | None = None
        self._ttfts: deque[float] = deque(maxlen=self.options.window)
        self._p95: float | None = None
        self._outcomes: deque[bool] = deque(maxlen=self.options.window)  # True = failure
        self._failures_in_window = 0
        self._calls = 0
        self._last_error = ""
        self.ttft = TtftModel(
            self.options.prior_ttft_s, censored_ttl_s=self.options.censored_ttl_s, clock=clock
        )
        self._prefix = PrefixTracker()

    # -- reads (the router calls these on every decision) --

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._cooled_down():
            return BreakerState.HALF_OPEN
        return self._state

    def available(self) -> bool:
        """True when a call now would be let through (closed, or a probe is due)."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._probe_in_flight:
            return False
        return self._state is BreakerState.HALF_OPEN or self._cooled_down()

    def expected_ttft_s(self) -> float:
        return self.options.prior_ttft_s if self._ttft_ewma is None else self._ttft_ewma

    def ttft_p95_s(self) -> float | None:
        return self._p95

    def error_rate(self) -> float:
        return self._failures_in_window / len(self._outcomes) if self._outcomes else 0.0

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(
            name=self.name,
            state=self.state,
            available=self.available(),
            ttft_ewma_s=self._ttft_ewma,
            ttft_p95_s=self._p95,
            error_rate=self.error_rate(),
            calls=self._calls,
            consecutive_failures=self._consecutive_failures,
            last_error=self._last_error,
            ttft=self.ttft.estimate(),
        )

    # -- the call protocol: acquire, then exactly one of success / failure / release --

    def acquire(self) -> Permit:
        """Leave for one call, or BackendUnavailable (no network) while the breaker is open."""
        if self._state is BreakerState.CLOSED:
            return Permit(probe=False)
        if self._state is BreakerState.OPEN and self._cooled_down():
            self._state = BreakerState.HALF_OPEN
        if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return Permit(probe=True)
        wait = max(0.0, self._opened_at + self.options.cooldown_s - self._clock())
        raise BackendUnavailable(
            f"model backend {self.name!r} is paused after {self._consecutive_failures} "
            f"failures in a row (last: {self._last_error})",
            hint=(
                f"retrying in {wait:.0f}s; check the server at {self.base_url}"
                if self.base_url
                else f"retrying in {wait:.0f}s"
            ),
        )

    def request_tokens(self, prompt: Prompt, images: int = 0) -> int:
        """Prompt tokens the server must read for this request (what its cached prefix of
        the previous request leaves), images included. Call once per request sent."""
        parts = [prompt.system, *(t.text for t in prompt.history), prompt.context, prompt.user]
        return self._prefix.new_tokens("\n".join(parts)) + images * IMAGE_TOKENS

    def record_ttft(self, seconds: float, tokens: int | None = None) -> None:
        """A first token after `seconds` for a prompt of `tokens` new tokens (None: a
        prompt of typical size)."""
        self.ttft.observe(REF_TOKENS if tokens is None else tokens, seconds)
        a = self.options.ewma_alpha
        self._ttft_ewma = (
            seconds if self._ttft_ewma is None else a * seconds + (1 - a) * (self._ttft_ewma)
        )
        self._ttfts.append(seconds)
        self._p95 = _p95(self._ttfts)

    def record_ttft_at_least(self, seconds: float, tokens: int | None = None) -> None:
        """A first token did not come within `seconds`: the expectation must not stay lower."""
        self.ttft.observe_at_least(REF_TOKENS if tokens is None else tokens, seconds)
        if self._ttft_ewma is None or self._ttft_ewma < seconds:
            self._ttft_ewma = seconds

    def record_success(self, permit: Permit) -> None:
        if not self._finish(permit):
            return
        self._outcome(failed=False)
        self._consecutive_failures = 0
        self._state = BreakerState.CLOSED

    def record_failure(self, permit: Permit, error: BaseException) -> None:
        if isinstance(error, BudgetExceeded):
            # Our own deadline cut the call: no outcome (the caller records the TTFT bound).
            self._finish(permit)
            return
        if not self._finish(permit):
            return
        self._outcome(failed=True)
        self._consecutive_failures += 1
        self._last_error = str(error)[:200]
        if permit.probe or self._consecutive_failures >= self.options.failure_threshold:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()

    def release(self, permit: Permit) -> None:
        """The call was cancelled before it told us anything: no outcome."""
        self._finish(permit)

    def _finish(self, permit: Permit) -> bool:
        if permit.done:
            return False
        permit.done = True
        if permit.probe:
            self._probe_in_flight = False
        return True

    def _outcome(self, *, failed: bool) -> None:
        self._calls += 1
        if len(self._outcomes) == self._outcomes.maxlen and self._outcomes[0]:
            self._failures_in_window -= 1
        self._outcomes.append(failed)
        self._failures_in_window += failed

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.options.cooldown_s


def _p95(samples: deque[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
