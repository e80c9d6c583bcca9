"""Moments: what the mind reacts to, and how much time each kind of moment allows.

A moment is an event worth reacting to, a player message, a lull to fill or a greeting.
The table below is the single source of the latency budgets (router) and of priorities and
staleness (director): a death needs a sound within 0.3 s and its analysis within 3 s; a
question needs a first sound within 2.5 s (4 s on a loading screen, where nothing else is
going on) and waits for the model's answer up to the player's patience
(`mind.answer_patience_s`, the router's policy), with a short acknowledgement first when
the answer will not be quick. Whether a model makes a budget depends on the prompt it is
sent: the mind puts the smallest and the fullest prompt size on the moment
(`min_tokens`, `full_tokens`) and the router sizes the prompt for the model it picks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from couchmate.mind.memory_slot import Happening
from couchmate.types import Event, GameState, Line


@dataclass(frozen=True, slots=True)
class MomentSpec:
    #: time to the first audible reaction
    first_budget_s: float
    #: time a model's richer line may take after the moment; None: no model follow-up
    follow_budget_s: float | None
    #: after this long the moment has passed: its lines are dropped, not played late
    stale_s: float
    #: base priority in the speaking queue (0..1); a player answer is 1.0
    priority: float
    #: cuts through the intensity hold and the cooldown (never through do-not-disturb)
    critical: bool = False
    #: this kind of moment, spoken, is worth a model's line when one fits
    model_worthy: bool = False


# Quick reactions ("Ouch!", "Nice shot!") go stale within about a second: said later, behind
# another line, they no longer match what is on screen, so they are dropped instead.
SPECS: dict[str, MomentSpec] = {
    "death": MomentSpec(0.3, 3.0, 6.0, 0.9, critical=True, model_worthy=True),
    "game_over": MomentSpec(0.3, 5.0, 10.0, 0.95, critical=True, model_worthy=True),
    "life_lost": MomentSpec(0.3, 3.0, 5.0, 0.85, critical=True, model_worthy=True),
    "low_health": MomentSpec(0.3, None, 2.0, 0.8),
    "damage_taken": MomentSpec(0.3, None, 0.8, 0.4),
    "kill": MomentSpec(0.4, None, 1.2, 0.5),
    "pickup": MomentSpec(0.6, None, 1.0, 0.3),
    "score_up": MomentSpec(0.6, None, 1.2, 0.3),
    "level_change": MomentSpec(1.0, 4.0, 8.0, 0.6, model_worthy=True),
    "scene_change": MomentSpec(1.5, 4.0, 6.0, 0.4, model_worthy=True),
    "idle": MomentSpec(4.0, 6.0, 15.0, 0.2, model_worthy=True),
    "lull": MomentSpec(4.0, 6.0, 15.0, 0.2, model_worthy=True),
    "greeting": MomentSpec(2.0, 3.0, 10.0, 0.5, model_worthy=True),
    "player_message": MomentSpec(2.5, None, 30.0, 1.0, critical=True, model_worthy=True),
}
UNKNOWN_SPEC = MomentSpec(1.0, None, 3.0, 0.2)

#: events that make up "action" (the intensity estimate counts them)
ACTION_KINDS = frozenset(
    {"damage_taken", "low_health", "kill", "pickup", "score_up", "death", "life_lost"}
)
#: scene names (event.data["scene"]) that mean nothing is happening in the game
LULL_SCENES = frozenset({"menu", "loading", "pause", "paused", "map", "death_screen", "title"})
#: health at or below this (0..100) makes low_health critical
CRITICAL_HEALTH = 20.0
#: a question is answered more patiently when the game is in a lull
LULL_QUESTION_BUDGET_S = 4.0
HARD_QUESTION_BUDGET_S = 3.0


def spec(kind: str) -> MomentSpec:
    return SPECS.get(kind, UNKNOWN_SPEC)


@dataclass(slots=True)
class Moment:
    """One thing to maybe react to, with everything the router and director look at."""

    kind: str
    t: float
    salience: float = 0.5
    event: Event | None = None
    state: GameState | None = None
    #: the scene has not been seen before in this session (new level, new menu, ...)
    novel: bool = False
    #: the game is in a lull (death screen, menu, loading, idle)
    lull: bool = False
    #: the player's words, for player_message
    question: str = ""
    #: 0..1, from router.question_difficulty
    difficulty: float = 0.0
    critical: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    #: when the router decided this moment's path (set by the mind)
    decided_at: float | None = None
    #: the prompt this moment needs at least / could use at most (new tokens, set by the mind)
    min_tokens: int = 0
    full_tokens: int = 0

    @property
    def spec(self) -> MomentSpec:
        return spec(self.kind)

    @property
    def first_budget_s(self) -> float:
        if self.kind == "player_message":
            if self.lull:
                return LULL_QUESTION_BUDGET_S
            if self.difficulty >= 0.5:
                return HARD_QUESTION_BUDGET_S
        return self.spec.first_budget_s

    @property
    def priority(self) -> float:
        base = self.spec.priority
        # Salience lifts a moment within its kind, never above a player answer.
        return min(0.99, base + 0.1 * max(0.0, self.salience - 0.5)) if base < 1.0 else base

    @property
    def deadline(self) -> float:
        return self.t + self.spec.stale_s


def is_critical(event: Event, state: GameState | None) -> bool:
    if spec(event.kind).critical or event.salience >= 0.9:
        return True
    if event.kind == "low_health":
        health = event.data.get("health")
        if health is None and state is not None:
            health = state.value("health")
        try:
            return health is not None and float(health) <= CRITICAL_HEALTH
        except (TypeError, ValueError):
            return False
    return False


def moment_from_event(
    event: Event, state: GameState | None, *, novel: bool = False, lull: bool = False
) -> Moment:
    return Moment(
        kind=event.kind,
        t=event.t,
        salience=event.salience,
        event=event,
        state=state,
        novel=novel,
        lull=lull,
        critical=is_critical(event, state),
    )


def line_kind(line: Line) -> str:
    return line.event.kind if line.event is not None else ""


def moment_happening(m: Moment) -> Happening:
    game = m.state.game if m.state is not None else ""
    values = m.state.values() if m.state is not None else {}
    numbers = {k: v for k, v in values.items() if isinstance(v, int | float)}
    return Happening(
        "moment",
        f"{m.kind} in {game}" if game else m.kind,
        topics=[game] if game else [],
        importance=m.salience,
        provenance={"t": m.t, "kind": m.kind, "state": numbers},
    )


def synthetic_event(kind: str, t: float, **data: Any) -> Event:
    return Event(kind=kind, t=t, salience=1.0 if kind == "player_message" else 0.5, data=data)
