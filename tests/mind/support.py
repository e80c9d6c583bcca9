"""Helpers for the mind tests: a hand-driven clock and small builders."""

from __future__ import annotations

from couchmate.types import Event, FieldReading, GameState


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


def state(t: float, game: str = "doom", **fields: object) -> GameState:
    return GameState(game, t, {k: FieldReading(v, 0.95, t) for k, v in fields.items()})


def event(kind: str, t: float, salience: float = 0.7, **data: object) -> Event:
    return Event(kind=kind, t=t, salience=salience, data=dict(data))
