"""The router: for each moment, reflex, fast model or smart model — and why.

`route()` is a pure function of the moment, the backends' health and the policy, so a
recorded session replays to the same decisions. Rules, in order:

1. A moment that is not worth a model (damage, kill, pickup, ...; a scene seen before) is
   reflex.
2. Preferred models: smart first for a hard question, a new scene, a lull to comment on, a
   salient death; fast first otherwise. A backend is usable when it is available (breaker
   not open). A backend failing often (error rate ≥ `max_error_rate`) moves to the back of
   the order: tried only after the others, never locked out (its breaker decides that,
   with cool-down probes, so a backend that recovers gets traffic again).
3. Preference before time. A backend's expected time to first token depends on the prompt:
   `BackendView` carries its fitted line (cautious: p95 spread included) over the prompt's
   new tokens, and the moment carries the smallest and the fullest prompt it could send
   (`min_tokens`, `full_tokens`). For each usable model in preference order: if the
   smallest prompt (+ our overhead + a speaking margin) fits the first-reaction budget, it
   is the path — with a reflex line first when it is slow to start (> `ack_after_s`,
   "Hmm, let me think…"); else, if the moment has a follow-up budget and the model fits it,
   reflex now and the model's richer line after ("Ouch!" now, the analysis a second later).
   A player's question waits for the model up to `answer_patience_s` (the user's setting).
4. The prompt is sized for the chosen model: as many tokens as let it start within
   `quick_s` (or the window, if that is shorter), never fewer than the smallest prompt nor
   more than the fullest (`Decision.prompt_tokens`). A slow model gets a short prompt; a
   fast one everything. Pictures only for a vision model, and only when they fit that
   target too (a keyframe costs a few hundred tokens).
5. No model fits: reflex. The fallback chain lists what the caller tries if the chosen model
   fails inside the budget: the other model if it fits what is left, then reflex.

`Router` is the small stateful wrapper: it remembers scene fingerprints (novelty), keeps the
decision log and counts per path.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from couchmate.mind.moments import Moment
from couchmate.mind.scenes import SceneMemory, scene_hash
from couchmate.types import Path_

ModelPath = Literal["fast", "smart"]


class HealthLike(Protocol):
    """What the router reads of a backend's health (couchmate.models.health.HealthSnapshot)."""

    @property
    def available(self) -> bool: ...
    @property
    def ttft_p95_s(self) -> float | None: ...
    @property
    def ttft_ewma_s(self) -> float | None: ...
    @property
    def error_rate(self) -> float: ...
    @property
    def ttft(self) -> TtftLine | None: ...


class TtftLine(Protocol):
    """A fitted TTFT line (couchmate.models.ttft.TtftEstimate)."""

    @property
    def base_s(self) -> float: ...
    @property
    def per_token_s(self) -> float: ...
    @property
    def spread(self) -> float: ...


@dataclass(frozen=True, slots=True)
class BackendView:
    """One model path as the router sees it at decision time.

    Expected (cautious) time to first token for a prompt of n new tokens:
    `expected_ttft_s + per_token_s · n`; per_token_s 0 means size does not matter."""

    path: ModelPath
    available: bool
    expected_ttft_s: float
    error_rate: float = 0.0
    vision: bool = False
    note: str = ""  # why it is unavailable, for the reason string
    per_token_s: float = 0.0
    #: what the keyframes this role takes add to a prompt
    image_tokens: int = 0

    @classmethod
    def from_health(
        cls,
        path: ModelPath,
        health: HealthLike,
        *,
        prior_s: float,
        vision: bool,
        image_tokens: int = 0,
    ) -> BackendView:
        """The fitted TTFT line when the health has one (p95 spread included); else the
        p95, else the EWMA, else the prior: the expectation is cautious."""
        note = "" if health.available else "circuit open"
        line = health.ttft
        if line is not None:
            return cls(
                path,
                health.available,
                line.base_s * line.spread,
                health.error_rate,
                vision,
                note,
                per_token_s=line.per_token_s * line.spread,
                image_tokens=image_tokens if vision else 0,
            )
        expected = health.ttft_p95_s
        if expected is None:
            expected = health.ttft_ewma_s
        if expected is None:
            expected = prior_s
        return cls(path, health.available, expected, health.error_rate, vision, note)

    def ttft_at(self, tokens: int) -> float:
        return self.expected_ttft_s + self.per_token_s * max(0, tokens)

    def tokens_within(self, seconds: float) -> int:
        """The largest prompt (new tokens) expected to start within `seconds`; -1: none."""
        room = seconds - self.expected_ttft_s
        if room < 0:
            return -1
        return 1 << 30 if self.per_token_s <= 0 else int(room / self.per_token_s)


@dataclass(frozen=True, slots=True)
class RouterPolicy:
    #: our own cost plus network margin, added to every model's expected TTFT
    overhead_s: float = 0.05
    #: from the first token to a speakable first clause, and the voice starting on it
    speak_margin_s: float = 0.15
    #: a model line slower than this to start gets a reflex line first
    ack_after_s: float = 1.2
    #: questions at or above this difficulty prefer the smart model
    hard_question: float = 0.5
    #: a backend failing this often is tried after the others
    max_error_rate: float = 0.5
    #: deaths etc. at or above this salience prefer the smart model for the analysis
    smart_salience: float = 0.8
    #: how long a player's question waits for the model (settings: mind.answer_patience_s)
    answer_patience_s: float = 8.0
    #: prompts are sized so the model is expected to start within this, where it can (at
    #: most ack_after_s, or the sizing itself would call for an acknowledgement)
    quick_s: float = 1.2


@dataclass(frozen=True, slots=True)
class Decision:
    path: Path_
    reason: str
    #: the moment's first-reaction budget (seconds after the moment)
    budget_s: float
    #: say a reflex line now, the model's line after it
    reflex_first: bool = False
    #: time-to-first-token budget for the model call (0 on the reflex path)
    model_budget_s: float = 0.0
    #: what to try, in order, if the chosen model fails (always ends with reflex)
    fallback: tuple[Path_, ...] = ()
    expected_s: float = 0.0
    #: the moment would like pictures (keyframes) in the prompt
    wants_images: bool = False
    #: the prompt's size for this model (new tokens, images aside); 0: no model
    prompt_tokens: int = 0


DEFAULT_POLICY = RouterPolicy()


def _prefs(m: Moment, policy: RouterPolicy) -> tuple[tuple[ModelPath, ...], str, bool]:
    """Preferred model order, why, and whether pictures help this moment."""
    kind = m.kind
    if kind == "player_message":
        if m.difficulty >= policy.hard_question:
            return ("smart", "fast"), f"hard question (difficulty {m.difficulty:.2f})", False
        return ("fast", "smart"), f"simple question (difficulty {m.difficulty:.2f})", False
    if not m.spec.model_worthy:
        return (), f"{kind}: a reflex moment", False
    if kind in ("scene_change", "level_change"):
        if not m.novel:
            return (), f"{kind}: scene seen before", False
        return ("smart", "fast"), f"{kind}: new scene", True
    if kind in ("lull", "idle"):
        return ("smart", "fast"), f"{kind}: commentary", True
    if kind == "greeting":
        return ("fast", "smart"), "greeting", False
    if m.salience >= policy.smart_salience:
        return ("smart", "fast"), f"{kind} (salience {m.salience:.2f})", True
    return ("fast", "smart"), f"{kind} (salience {m.salience:.2f})", True


def _usable(b: BackendView | None, policy: RouterPolicy) -> tuple[bool, str]:
    if b is None:
        return False, "not configured"
    if not b.available:
        return False, b.note or "unavailable"
    return True, ""


def route(
    moment: Moment,
    backends: dict[str, BackendView],
    policy: RouterPolicy = DEFAULT_POLICY,
) -> Decision:
    """Choose the path for `moment`. Pure: same inputs, same decision."""
    budget = moment.first_budget_s
    follow = moment.spec.follow_budget_s
    if moment.kind == "player_message":
        follow = policy.answer_patience_s
    smallest = max(0, moment.min_tokens)
    fullest = max(smallest, moment.full_tokens)
    prefs, why, wants_images = _prefs(moment, policy)
    if not prefs:
        return Decision("reflex", why, budget, fallback=())

    notes: list[str] = []
    usable: list[BackendView] = []
    for p in prefs:
        b = backends.get(p)
        ok, note = _usable(b, policy)
        if ok and b is not None:
            usable.append(b)
        else:
            notes.append(f"{p} {note}")
    flaky = [b for b in usable if b.error_rate >= policy.max_error_rate]
    if flaky:
        usable = [b for b in usable if b not in flaky] + flaky
        notes += [f"{b.path} flaky (error rate {b.error_rate:.0%}): last" for b in flaky]

    margin = policy.overhead_s + policy.speak_margin_s

    def cost(b: BackendView, tokens: int = smallest) -> float:
        return b.ttft_at(tokens) + margin

    def chain(chosen: BackendView, window: float) -> tuple[Path_, ...]:
        others = tuple(b.path for b in usable if b is not chosen and cost(b) <= window)
        return (*others, "reflex")

    def expect(b: BackendView) -> str:
        at = f" ({smallest} tok)" if smallest else ""
        return f"{b.path} ~{b.ttft_at(smallest):.2f}s{at}"

    def decide(b: BackendView, window: float, *, follow_up: bool, note: str) -> Decision:
        target = min(window, max(policy.quick_s, cost(b)))
        tokens = min(fullest, max(smallest, b.tokens_within(target - margin)))
        images = wants_images and b.vision and cost(b, tokens + b.image_tokens) <= target
        expected = b.ttft_at(tokens + (b.image_tokens if images else 0))
        first = follow_up or expected + margin > policy.ack_after_s
        notes.append(f"{expect(b)} {note}")
        if tokens > smallest:
            notes.append(f"prompt {tokens} tok")
        if first and not follow_up:
            notes.append(f"slow start (> {policy.ack_after_s:.1f}s): reflex first")
        return Decision(
            b.path,
            "; ".join([why, *notes]),
            budget,
            reflex_first=first,
            model_budget_s=window,
            fallback=chain(b, window),
            expected_s=expected,
            wants_images=images,
            prompt_tokens=tokens,
        )

    # Preference first, then time: the preferred model inside the first-reaction budget,
    # else the preferred model as a follow-up after a reflex line, else the next model. A
    # question waits for the model up to the patience (with a reflex line first if slow).
    for b in usable:
        if moment.kind == "player_message" and follow is not None:
            if cost(b) <= follow:
                return decide(b, follow, follow_up=False, note=f"fits patience {follow:.2f}s")
            notes.append(f"{expect(b)} > patience {follow:.2f}s")
            continue
        if cost(b) <= budget:
            return decide(b, budget, follow_up=False, note=f"fits {budget:.2f}s")
        if follow is not None and cost(b) <= follow:
            note = f"> {budget:.2f}s; reflex now, {b.path} fits follow-up {follow:.2f}s"
            return decide(b, follow, follow_up=True, note=note)
        notes.append(f"{expect(b)} > {budget:.2f}s")
    return Decision("reflex", "; ".join([why, *notes, "reflex"]), budget)


# --- question difficulty ------------------------------------------------------------------

_DEEP = re.compile(
    r"\b(why|how|explain|strategy|should|best|which|compare|difference|what if|recommend|"
    r"tips?|advice|beat|defeat|solve|where (do|can|is))\b|为什么|怎么|如何|应该|哪个|攻略|"
    r"怎样|建议|なぜ|どうして|どうやって|どう(すれば|したら)|べき|攻略|コツ|おすすめ",
    re.IGNORECASE,
)
_GAME = re.compile(
    r"\b(boss|weapon|build|level|secret|map|enemy|enemies|item|quest|combo|skill|armor|"
    r"ammo|route|puzzle|key|door|upgrade)s?\b|武器|关卡|隐藏|地图|敌人|技能|装备|钥匙|"
    r"ボス|武器|ステージ|隠し|マップ|敵|スキル|装備|鍵",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^\s*(hi|hey|hello|yo|lol|lmao|haha|thanks|thank you|ok|okay|nice|cool|wow|gg|"
    r"你好|嗨|哈哈|谢谢|好的|厉害|こんにちは|やあ|ありがとう|すごい|ははは|笑)\s*[!.?！。？~]*\s*$",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def question_difficulty(text: str) -> float:
    """0 (small talk) … 1 (a long, knowledge-heavy how/why). Cheap: a few regex scans."""
    if not text.strip() or _SMALL_TALK.match(text):
        return 0.0
    cjk = len(_CJK.findall(text))
    words = len(text.split()) + cjk / 2
    score = 0.1
    if words > 10:
        score += 0.15
    if words > 25:
        score += 0.15
    if _DEEP.search(text):
        score += 0.35
    if _GAME.search(text):
        score += 0.2
    if sum(text.count(q) for q in "?？") > 1:
        score += 0.1
    return round(min(1.0, score), 3)


# --- the stateful wrapper -----------------------------------------------------------------


@dataclass(slots=True)
class RouteRecord:
    t: float
    kind: str
    path: Path_
    reflex_first: bool
    budget_s: float
    expected_s: float
    reason: str


@dataclass(slots=True)
class RouterStats:
    paths: Counter[str] = field(default_factory=Counter)
    reflex_first: int = 0
    decisions: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "paths": dict(self.paths),
            "reflex_first": self.reflex_first,
        }


class Router:
    """Remembers which scenes it has seen and records every decision it makes."""

    def __init__(
        self,
        policy: RouterPolicy = DEFAULT_POLICY,
        *,
        log_size: int = 2000,
        max_scenes: int = 512,
    ):
        self.policy = policy
        self.stats = RouterStats()
        self.log: deque[RouteRecord] = deque(maxlen=log_size)
        self.scenes = SceneMemory(max_scenes=max_scenes)

    def novel(self, fingerprint: str | None) -> bool:
        """True the first time a scene fingerprint is seen (None: unknown, not novel)."""
        return bool(fingerprint) and self.scenes.novel_name(str(fingerprint))

    def novel_image(self, image: np.ndarray) -> bool:
        """True when no scene seen so far looks like `image` (perceptual hash)."""
        return self.scenes.novel_hash(scene_hash(image))

    def decide(self, moment: Moment, backends: dict[str, BackendView]) -> Decision:
        d = route(moment, backends, self.policy)
        self.stats.decisions += 1
        self.stats.paths[d.path] += 1
        self.stats.reflex_first += d.reflex_first
        self.log.append(
            RouteRecord(
                moment.t, moment.kind, d.path, d.reflex_first, d.budget_s, d.expected_s, d.reason
            )
        )
        return d
