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
3. Preference before time. For each usable model in preference order: if its expected time
   to first token (p95, + our overhead + a speaking margin) fits the first-reaction budget,
   it is the path — with a reflex line first when it is slow to start (> `ack_after_s`,
   "Hmm, let me think…"); else, if the moment has a follow-up budget and the model fits it,
   reflex now and the model's richer line after ("Ouch!" now, the analysis a second later).
4. No model fits: reflex. The fallback chain lists what the caller tries if the chosen model
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


@dataclass(frozen=True, slots=True)
class BackendView:
    """One model path as the router sees it at decision time."""

    path: ModelPath
    available: bool
    expected_ttft_s: float
    error_rate: float = 0.0
    vision: bool = False
    note: str = ""  # why it is unavailable, for the reason string

    @classmethod
    def from_health(
        cls, path: ModelPath, health: HealthLike, *, prior_s: float, vision: bool
    ) -> BackendView:
        """p95 when measured, else the EWMA, else the prior: the expectation is cautious."""
        expected = health.ttft_p95_s
        if expected is None:
            expected = health.ttft_ewma_s
        if expected is None:
            expected = prior_s
        note = "" if health.available else "circuit open"
        return cls(path, health.available, expected, health.error_rate, vision, note)


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

    def cost(b: BackendView) -> float:
        return b.expected_ttft_s + policy.overhead_s + policy.speak_margin_s

    def chain(chosen: BackendView, window: float) -> tuple[Path_, ...]:
        others = tuple(b.path for b in usable if b is not chosen and cost(b) <= window)
        return (*others, "reflex")

    # Preference first, then time: the preferred model inside the first-reaction budget,
    # else the preferred model as a follow-up after a reflex line, else the next model.
    for b in usable:
        if cost(b) <= budget:
            first = cost(b) > policy.ack_after_s
            notes.append(f"{b.path} ~{b.expected_ttft_s:.2f}s fits {budget:.2f}s")
            if first:
                notes.append(f"slow start (> {policy.ack_after_s:.1f}s): reflex first")
            return Decision(
                b.path,
                "; ".join([why, *notes]),
                budget,
                reflex_first=first,
                model_budget_s=budget,
                fallback=chain(b, budget),
                expected_s=b.expected_ttft_s,
                wants_images=wants_images and b.vision,
            )
        notes.append(f"{b.path} ~{b.expected_ttft_s:.2f}s > {budget:.2f}s")
        if follow is not None and cost(b) <= follow:
            notes.append(f"reflex now, {b.path} fits follow-up {follow:.2f}s")
            return Decision(
                b.path,
                "; ".join([why, *notes]),
                budget,
                reflex_first=True,
                model_budget_s=follow,
                fallback=chain(b, follow),
                expected_s=b.expected_ttft_s,
                wants_images=wants_images and b.vision,
            )
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
