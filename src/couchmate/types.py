"""Hot-path types shared by every stage: frames, game state, events, lines, memories.

Plain slotted dataclasses: they are created many times a second and must stay cheap.
Validation happens at the edges (config, profile files, wire messages), not here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Path_ = Literal["reflex", "fast", "smart"]


def now() -> float:
    """The one clock of the pipeline: monotonic seconds."""
    return time.monotonic()


@dataclass(slots=True)
class Timing:
    """Monotonic marks a single item collects on its way through the pipeline.

    Stage names in use: captured, keyframed, read, evented, decided, first_token,
    first_audio. Each stage marks itself, so latency is measured where it happens.
    """

    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, t: float | None = None) -> float:
        t = now() if t is None else t
        self.marks[stage] = t
        return t

    def get(self, stage: str) -> float | None:
        return self.marks.get(stage)

    def span_ms(self, start: str, end: str) -> float | None:
        a, b = self.marks.get(start), self.marks.get(end)
        if a is None or b is None:
            return None
        return (b - a) * 1000.0

    def copy(self) -> Timing:
        return Timing(dict(self.marks))

    def as_ms(self, origin: str = "captured") -> dict[str, float]:
        """Every mark in milliseconds after `origin` (for JSONL records)."""
        t0 = self.marks.get(origin)
        if t0 is None:
            return {}
        return {k: round((v - t0) * 1000.0, 3) for k, v in self.marks.items()}


@dataclass(slots=True)
class Frame:
    """One RGB image (H×W×3 uint8) and when and where it came from.

    `truth` is the engine's ground truth for this frame (Doom, Atari). Only tests and
    benchmarks read it; the reader never sees it.
    """

    image: np.ndarray
    t: float
    source: str
    index: int = 0
    timing: Timing = field(default_factory=Timing)
    truth: dict[str, Any] | None = None

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.image.shape[:2]
        return w, h


@dataclass(slots=True)
class FieldReading:
    """One named HUD field as read from one frame."""

    value: Any
    confidence: float
    t: float
    raw: str = ""


@dataclass(slots=True)
class GameState:
    """What the reader knows about the game at time `t`."""

    game: str
    t: float
    fields: dict[str, FieldReading] = field(default_factory=dict)
    frame_index: int = 0
    timing: Timing = field(default_factory=Timing)

    def value(self, name: str, default: Any = None) -> Any:
        f = self.fields.get(name)
        return default if f is None else f.value

    def values(self) -> dict[str, Any]:
        return {k: f.value for k, f in self.fields.items()}


EVENT_KINDS = (
    "damage_taken",
    "low_health",
    "kill",
    "death",
    "pickup",
    "score_up",
    "life_lost",
    "level_change",
    "game_over",
    "scene_change",
    "idle",
    "player_message",
)


@dataclass(slots=True)
class Event:
    """Something that happened: kind, when, how much it matters (0..1), details."""

    kind: str
    t: float
    salience: float
    data: dict[str, Any] = field(default_factory=dict)
    game: str = ""
    timing: Timing = field(default_factory=Timing)
    frame_index: int = 0


@dataclass(slots=True)
class Line:
    """One thing the companion says, and why, by which path, with its timings."""

    text: str
    lang: str = "en"
    path: Path_ = "reflex"
    reason: str = ""
    event: Event | None = None
    persona: str = ""
    priority: float = 0.0
    # After this monotonic time the moment has passed: drop the line instead of playing it.
    deadline: float | None = None
    timing: Timing = field(default_factory=Timing)

    def stale(self, at: float | None = None) -> bool:
        return self.deadline is not None and (now() if at is None else at) > self.deadline


MemoryKind = Literal["episode", "fact", "progress"]
Retention = Literal["permanent", "expiring"]


@dataclass(slots=True)
class Memory:
    """One remembered thing that belongs to exactly one user."""

    user_id: str
    kind: MemoryKind
    text: str
    topics: list[str] = field(default_factory=list)
    t: float = field(default_factory=time.time)  # wall-clock seconds (memories outlive boots)
    importance: float = 0.5
    provenance: dict[str, Any] = field(default_factory=dict)  # session, turn, frame, ...
    retention: Retention = "permanent"
    expires_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""
