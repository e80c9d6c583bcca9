"""What the watching pipeline hands out: updates, stats snapshots, and the reader it needs.

Kept apart from the pipeline so consumers (the mind, a recorder, a server) can type against
these without importing the machinery.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from couchmate.types import Event, Frame, GameState
from couchmate.watch.keyframes import GateDecision

#: latency spans the pipeline keeps rolling statistics for: name → (from mark, to mark)
SPANS: dict[str, tuple[str, str]] = {
    "gate": ("captured", "keyframed"),
    "reader_queue": ("keyframed", "read_start"),
    "read": ("read_start", "read"),
    "capture_to_state": ("captured", "read"),
}
#: events the gate raises from pixels alone (not from the reader's state)
SIGNAL_KINDS = frozenset({"scene_change", "idle"})


class StateReader(Protocol):
    """What the pipeline needs from a reader: one blocking call per keyframe."""

    def read(self, frame: Frame) -> GameState: ...


ReaderFactory = Callable[[Any], StateReader]


@dataclass(slots=True)
class WatchStats:
    """A snapshot of how the pipeline keeps up."""

    captured: int = 0
    keyframes: int = 0
    states: int = 0
    events: int = 0
    reader_errors: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    capture_fps: float = 0.0
    keyframes_per_s: float = 0.0
    #: seconds since the source last produced a frame (a stalled source shows here)
    frame_age_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    profile: str = ""
    error: str = ""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@dataclass(slots=True)
class WatchUpdate:
    """What one keyframe (or one gate signal) produced.

    `state` is None for a signal-only update (scene_change or idle from the gate, raised on
    a frame that was not read).
    """

    keyframe: Frame
    state: GameState | None
    events: list[Event]
    decision: GateDecision | None
    profile: str
    stats: WatchStats


class Rate:
    """Items per second over a sliding window."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._ts: deque[float] = deque()

    def tick(self, t: float) -> None:
        self._ts.append(t)
        while self._ts and self._ts[0] < t - self.window_s:
            self._ts.popleft()

    def rate(self, t: float) -> float:
        while self._ts and self._ts[0] < t - self.window_s:
            self._ts.popleft()
        if len(self._ts) < 2:
            return 0.0
        return (len(self._ts) - 1) / max(1e-6, max(t, self._ts[-1]) - self._ts[0])
