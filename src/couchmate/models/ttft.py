"""Time to first token as a function of prompt size, learnt per backend as calls come in.

A model reads its prompt before it writes: on a CPU, SmolLM2-135M takes ~0.1 s for a
50-token prompt and ~3 s for 600 (measured on this project's machine), so one TTFT figure
per backend is wrong for every prompt but the typical one. `TtftModel` fits

    ttft(n) ≈ base_s + per_token_s · n        n: prompt tokens the server must read

by weighted least squares over the last calls (newer calls weigh more: a CPU's speed moves
with its load), starting from a prior worth a couple of calls, so the first estimate is
sane and the first samples move it quickly. `spread` is the p95 of observed / fitted over
the window: `TtftEstimate.at(n)` is a cautious figure, not a median.

A call cut by our own deadline is a sample too: the first token takes *at least* that long
at that size (censored). Such samples pull the fit up where it is lower, never down, and
they expire after `censored_ttl_s`: a backend that went silent is tried again later instead
of being written off for good.

"Tokens the server must read": llama.cpp, Ollama and vLLM keep the previous prompt's
prefix, and couchmate's system message is byte-identical from request to request, so the
cost of a prompt is the part after the prefix it shares with the previous one.
`PrefixTracker` measures that from the request text; `estimate_tokens` counts tokens the
cheap way (the fit absorbs its scale).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from couchmate.types import now

#: what one keyframe costs a vision model, roughly (a ~1 MP image is 256–1300 tokens)
IMAGE_TOKENS = 300
#: the prompt size at which `prior_ttft_s` is taken to hold
REF_TOKENS = 500


def estimate_tokens(text: str) -> int:
    """A cheap token count: CJK characters ~1 token each, other text ~4 characters."""
    cjk = sum(1 for c in text if "\u3040" <= c <= "\u9fff")
    return cjk + math.ceil((len(text) - cjk) / 4)


class PrefixTracker:
    """How many tokens of a request the server has not seen as the previous one's prefix."""

    def __init__(self) -> None:
        self._last = ""

    def new_tokens(self, text: str, *, commit: bool = True) -> int:
        last = self._last
        n = min(len(last), len(text))
        i = 0
        # Compare in blocks first: prompts share long prefixes.
        step = 256
        while i + step <= n and last[i : i + step] == text[i : i + step]:
            i += step
        while i < n and last[i] == text[i]:
            i += 1
        if commit:
            self._last = text
        return estimate_tokens(text[i:])


@dataclass(frozen=True, slots=True)
class TtftEstimate:
    """A backend's fitted TTFT line and its spread; what the router plans with."""

    base_s: float
    per_token_s: float
    #: p95 of observed / fitted (≥ 1): how far above the line calls land
    spread: float
    #: measured calls behind the fit (0: the prior alone)
    samples: int

    def at(self, tokens: int) -> float:
        """Cautious (p95) time to first token for a prompt of `tokens` new tokens."""
        return (self.base_s + self.per_token_s * max(0, tokens)) * self.spread

    def tokens_within(self, seconds: float) -> int:
        """The largest prompt (new tokens) expected to start within `seconds`; -1: none."""
        room = seconds / self.spread - self.base_s
        if room < 0:
            return -1
        if self.per_token_s <= 0:
            return 1 << 30
        return int(room / self.per_token_s)


@dataclass(slots=True)
class _Sample:
    tokens: int
    seconds: float
    at_least: bool
    t: float


class TtftModel:
    def __init__(
        self,
        prior_ttft_s: float = 1.0,
        *,
        prior_weight: float = 1.0,
        window: int = 40,
        decay: float = 0.9,
        default_spread: float = 1.3,
        censored_ttl_s: float = 60.0,
        clock: Callable[[], float] = now,
    ):
        # The prior splits its figure at REF_TOKENS between a fixed part and a per-token
        # part; on a CPU, reading the prompt is most of the time to the first token.
        self.prior = (0.2 * prior_ttft_s, 0.8 * prior_ttft_s / REF_TOKENS)
        self.prior_weight = prior_weight
        self.decay = decay
        self.default_spread = default_spread
        self.censored_ttl_s = censored_ttl_s
        self._clock = clock
        self._samples: deque[_Sample] = deque(maxlen=window)
        self._estimate: TtftEstimate | None = None
        self._fitted_at = 0.0

    def observe(self, tokens: int, seconds: float) -> None:
        """A first token came after `seconds` for a prompt of `tokens` new tokens."""
        self._samples.append(_Sample(max(0, tokens), max(0.0, seconds), False, self._clock()))
        self._estimate = None

    def observe_at_least(self, tokens: int, seconds: float) -> None:
        """No first token within `seconds` (our deadline cut the call): a lower bound."""
        self._samples.append(_Sample(max(0, tokens), max(0.0, seconds), True, self._clock()))
        self._estimate = None

    @property
    def samples(self) -> int:
        return sum(1 for s in self._samples if not s.at_least)

    def estimate(self) -> TtftEstimate:
        """The current fit (cached until a sample arrives or a censored one expires)."""
        t = self._clock()
        if self._estimate is not None and not self._expiring(t):
            return self._estimate
        self._estimate = self._fit(t)
        self._fitted_at = t
        return self._estimate

    def _expiring(self, t: float) -> bool:
        return any(
            s.at_least and self._fitted_at < s.t + self.censored_ttl_s <= t for s in self._samples
        )

    def _fit(self, t: float) -> TtftEstimate:
        live = [s for s in self._samples if not s.at_least or t - s.t < self.censored_ttl_s]
        n = len(live)
        weight = {id(s): self.decay ** (n - 1 - i) for i, s in enumerate(live)}
        measured = [s for s in live if not s.at_least]
        points = [(s.tokens, s.seconds, weight[id(s)]) for s in measured]
        base, per = _line(self._with_prior(points))
        # A censored call where the line is under its bound took longer than the bound:
        # count it a little above. Where the line is already above, it adds nothing.
        late = [s for s in live if s.at_least and base + per * s.tokens < s.seconds]
        if late:
            points += [(s.tokens, 1.25 * s.seconds, 2 * weight[id(s)]) for s in late]
            base, per = _line(self._with_prior(points))
        spread = self.default_spread
        if len(measured) >= 5:
            ratios = sorted(s.seconds / max(1e-3, base + per * s.tokens) for s in measured)
            spread = ratios[min(len(ratios) - 1, math.ceil(0.95 * len(ratios)) - 1)]
            spread = min(3.0, max(1.0, spread))
        return TtftEstimate(base, per, spread, len(measured))

    def _with_prior(
        self, points: list[tuple[float, float, float]]
    ) -> list[tuple[float, float, float]]:
        """The points plus the prior line as two pseudo-points. The prior's shape is kept
        but its scale follows the data: one fast call makes short prompts fast too, where
        a fixed prior would hold the fit's intercept up until calls of every size came."""
        b0, k0 = self.prior
        ref = b0 + k0 * REF_TOKENS
        w = self.prior_weight
        num = w * ref * ref + sum(wi * y * (b0 + k0 * x) for x, y, wi in points)
        den = w * ref * ref + sum(wi * (b0 + k0 * x) ** 2 for x, _, wi in points)
        scale = num / den if den > 0 else 1.0
        return [*points, (0.0, scale * b0, w / 2), (REF_TOKENS, scale * ref, w / 2)]


def _line(points: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Weighted least squares y = a + b·x with a ≥ 0 and b ≥ 0."""
    sw = sum(w for _, _, w in points)
    mx = sum(w * x for x, _, w in points) / sw
    my = sum(w * y for _, y, w in points) / sw
    sxx = sum(w * (x - mx) ** 2 for x, _, w in points)
    sxy = sum(w * (x - mx) * (y - my) for x, y, w in points)
    b = max(0.0, sxy / sxx) if sxx > 0 else 0.0
    a = my - b * mx
    if a < 0:  # through the origin instead
        sx2 = sum(w * x * x for x, _, w in points)
        a, b = 0.0, max(0.0, sum(w * x * y for x, y, w in points) / sx2) if sx2 > 0 else 0.0
    return a, b
