"""Events from game state: the profile's rules applied to committed field changes.

The reader only commits confirmed values, so a rule sees each real change once. A rule
says which field, what kind of change (drop, rise, crosses_below, crosses_above, becomes,
change), optional guards on other fields, a salience (base + scale × magnitude, clamped
to [0, 1]) and a cooldown. Several rules of one event kind firing on the same update
(health and armor both rising from a megasphere) become one event.

`make_event` builds the events other stages make (scene_change, idle from the keyframe
gate) with the profile's salience for them, so every event looks the same downstream.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from couchmate.types import Event, GameState, Timing
from couchmate.watch.profile import Profile, RuleSpec


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


# Each kind: (rule, before, after) → magnitude when the rule fires, else None.
def _drop(r: RuleSpec, a: Any, b: Any) -> float | None:
    x, y = _num(a), _num(b)
    return x - y if x is not None and y is not None and x - y >= max(r.min_delta, 1e-9) else None


def _rise(r: RuleSpec, a: Any, b: Any) -> float | None:
    x, y = _num(a), _num(b)
    return y - x if x is not None and y is not None and y - x >= max(r.min_delta, 1e-9) else None


def _crosses_below(r: RuleSpec, a: Any, b: Any) -> float | None:
    x, y, t = _num(a), _num(b), r.threshold
    return t - y if x is not None and y is not None and t is not None and x >= t > y else None


def _crosses_above(r: RuleSpec, a: Any, b: Any) -> float | None:
    x, y, t = _num(a), _num(b), r.threshold
    return y - t if x is not None and y is not None and t is not None and x <= t < y else None


def _becomes(r: RuleSpec, a: Any, b: Any) -> float | None:
    return 1.0 if b == r.value and a != r.value else None


def _change(r: RuleSpec, a: Any, b: Any) -> float | None:
    if a == b:
        return None
    x, y = _num(a), _num(b)
    return abs(y - x) if x is not None and y is not None else 1.0


RULE_KINDS: dict[str, Callable[[RuleSpec, Any, Any], float | None]] = {
    "drop": _drop,
    "rise": _rise,
    "crosses_below": _crosses_below,
    "crosses_above": _crosses_above,
    "becomes": _becomes,
    "change": _change,
}


def clamp01(x: float) -> float:
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))


def make_event(
    kind: str,
    t: float,
    salience: float | None = None,
    data: dict[str, Any] | None = None,
    *,
    profile: Profile | None = None,
    game: str = "",
    timing: Timing | None = None,
    frame_index: int = 0,
) -> Event:
    """An event as every stage makes them; salience defaults to the profile's for `kind`."""
    if salience is None:
        salience = profile.salience(kind) if profile is not None else 0.3
    timing = timing.copy() if timing is not None else Timing()
    timing.mark("evented")
    return Event(
        kind=kind,
        t=t,
        salience=clamp01(salience),
        data=dict(data or {}),
        game=game or (profile.name if profile is not None else ""),
        timing=timing,
        frame_index=frame_index,
    )


class EventEngine:
    """Applies one profile's rules to successive game states.

    A change from a value the reader has grown unsure of (confidence under
    `min_confidence`: the box held something unreadable for several looks, e.g. through
    Doom's death flash) is no event: what happened in between is unknown. A `becomes`
    rule still fires: it is about the value reached, which the reader has confirmed.
    """

    def __init__(self, profile: Profile, *, min_confidence: float = 0.3):
        self.profile = profile
        self.min_confidence = min_confidence
        self._prev: dict[str, Any] = {}
        self._prev_conf: dict[str, float] = {}
        self._last_fired: dict[str, float] = {}
        # recent changes of guard fields, for `guard_for_s`: field → [(t, before, after)]
        self._memory_s = max((r.guard_for_s for r in profile.rules.values()), default=0.0)
        guarded = {f for r in profile.rules.values() if r.guard_for_s for f in r.guard}
        self._changes: dict[str, deque[tuple[float, Any, Any]]] = {f: deque() for f in guarded}

    def reset(self) -> None:
        self._prev.clear()
        self._prev_conf.clear()
        self._last_fired.clear()
        for d in self._changes.values():
            d.clear()

    def update(self, state: GameState) -> list[Event]:
        cur = {**self._prev, **state.values()}
        prev, prev_conf = self._prev, self._prev_conf
        self._prev = cur
        self._prev_conf = {**prev_conf, **{k: f.confidence for k, f in state.fields.items()}}
        if not prev:
            return []
        try:
            return self._fire(state, prev, cur, prev_conf)
        finally:
            self._remember_changes(state.t, prev, cur)

    def _remember_changes(self, t: float, prev: dict[str, Any], cur: dict[str, Any]) -> None:
        for f, changes in self._changes.items():
            if f in prev and prev.get(f) != cur.get(f):
                changes.append((t, prev.get(f), cur.get(f)))
            while changes and changes[0][0] < t - self._memory_s:
                changes.popleft()

    def _fire(
        self,
        state: GameState,
        prev: dict[str, Any],
        cur: dict[str, Any],
        prev_conf: dict[str, float],
    ) -> list[Event]:
        fired: dict[str, Event] = {}
        for rname, rule in self.profile.rules.items():
            a, b = prev.get(rule.field), cur.get(rule.field)
            if a is None or b is None or a == b:
                continue
            # a value reached (`becomes`) is news however unsure the one before it was
            if rule.kind != "becomes" and prev_conf.get(rule.field, 1.0) < self.min_confidence:
                continue
            magnitude = RULE_KINDS[rule.kind](rule, a, b)
            if magnitude is None or not self._guards_hold(rule, prev, cur, prev_conf, state.t):
                continue
            last = self._last_fired.get(rname)
            if last is not None and state.t - last < rule.cooldown_s:
                continue
            self._last_fired[rname] = state.t
            sal = clamp01(rule.salience.base + rule.salience.scale * magnitude)
            data = {"field": rule.field, "from": a, "to": b, "rule": rname}
            if _num(a) is not None and _num(b) is not None:
                data["delta"] = b - a
            ev = fired.get(rule.event)
            if ev is None:
                fired[rule.event] = make_event(
                    rule.event,
                    state.t,
                    sal,
                    data,
                    profile=self.profile,
                    timing=state.timing,
                    frame_index=state.frame_index,
                )
            else:  # one event per kind per update; keep every field's change
                ev.salience = max(ev.salience, sal)
                ev.data.setdefault("also", []).append(data)
        return list(fired.values())

    def _guards_hold(
        self,
        rule: RuleSpec,
        prev: dict[str, Any],
        cur: dict[str, Any],
        prev_conf: dict[str, float],
        t: float,
    ) -> bool:
        """Every guard field is in range before and after (and through the `guard_for_s`
        before), and was not in doubt before (a player whose death went unread is not
        "alive" for a pickup at the respawn)."""
        for fname, (lo, hi) in rule.guard.items():
            if prev_conf.get(fname, 1.0) < self.min_confidence:
                return False
            values = [prev.get(fname), cur.get(fname)]
            if rule.guard_for_s:
                for tc, a, b in self._changes.get(fname, ()):
                    if t - tc < rule.guard_for_s:
                        values += [a, b]
            for v in map(_num, values):
                if v is None or not lo <= v <= hi:
                    return False
        return True
