"""Replaying a session through the Mind: what it would have said, by which path, how fast.

The harness `couchmate bench router` and tests use. Feed it the recorded states and events
(couchmate.watch.record.Recording gives both); it drives `Mind.on_update` in time order and
plays every line through a simulated voice (one at a time, `seconds_per_char` each), so the
director's cooldowns, cuts and staleness act as they would live.

- virtual time (default): a ReplayClock jumps from update to update — deterministic and
  instant; right for reflex-only minds and for scripted backend health.
- real time (`realtime=True`): the Mind runs on the real clock and the replay sleeps to
  keep the recorded pace — right when real model servers answer.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from couchmate.mind.mind import Mind
from couchmate.types import Event, GameState, Line


class ReplayClock:
    """A clock that moves only when told (seconds, monotonic-like)."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance_to(self, t: float) -> None:
        self.t = max(self.t, t)


@dataclass(slots=True)
class Update:
    t: float
    state: GameState | None
    events: list[Event]


def updates_from(states: Sequence[GameState], events: Sequence[Event]) -> list[Update]:
    """One update per state, in time order, carrying the events up to its time (the
    pipeline emits a keyframe's events with the state read from it)."""
    ordered = sorted(states, key=lambda s: s.t)
    out = [Update(s.t, s, []) for s in ordered]
    times = [s.t for s in ordered]
    for e in sorted(events, key=lambda e: e.t):
        i = bisect.bisect_left(times, e.t)
        if i < len(out):
            out[i].events.append(e)
        else:
            out.append(Update(e.t, ordered[-1] if ordered else None, [e]))
    return out


@dataclass(slots=True)
class Spoken:
    line: Line
    start: float
    end: float
    cut: bool = False


@dataclass(slots=True)
class ReplayReport:
    seconds: float
    spoken: list[Spoken] = field(default_factory=list)
    queued: int = 0

    def summary(self) -> dict[str, Any]:
        paths = Counter(s.line.path for s in self.spoken)
        unprompted = [
            s for s in self.spoken if s.line.event is None or s.line.event.kind != "player_message"
        ]
        latency: dict[str, list[float]] = defaultdict(list)
        misses = 0
        for s in self.spoken:
            ev = s.line.event
            t0 = s.line.timing.get("evented")
            if t0 is None and ev is not None:
                t0 = ev.t
            if t0 is None:
                continue
            first = s.line.timing.get("first_token")
            if first is not None:
                latency[s.line.path].append((first - t0) * 1000.0)
            if s.line.deadline is not None and s.start > s.line.deadline:
                misses += 1  # never expected: the director drops stale lines
        return {
            "seconds": round(self.seconds, 3),
            "lines": len(self.spoken),
            "unprompted": len(unprompted),
            "seconds_per_unprompted_line": round(self.seconds / len(unprompted), 2)
            if unprompted
            else None,
            "paths": dict(paths),
            "cut": sum(s.cut for s in self.spoken),
            "late": misses,
            "latency_ms": {k: sorted(v) for k, v in latency.items()},
        }


async def replay(
    updates: Sequence[Update],
    mind: Mind,
    *,
    clock: ReplayClock | None = None,
    realtime: bool = False,
    seconds_per_char: float = 0.06,
    tail_s: float = 5.0,
) -> ReplayReport:
    """Drive `mind` through `updates` and play what it says on a simulated voice.

    In virtual time `clock` must be the Mind's clock; the voice finishes a line when the
    clock passes its end. In real time the voice sleeps for the line's length."""
    if clock is None and not realtime:
        if not isinstance(mind.clock, ReplayClock):
            raise ValueError("virtual-time replay needs the Mind built with a ReplayClock")
        clock = mind.clock
    if not updates:
        return ReplayReport(0.0)
    t0 = updates[0].t
    report = ReplayReport(updates[-1].t - t0)
    playing: Spoken | None = None
    loop = asyncio.get_running_loop()
    wall0 = loop.time()

    cut_lines: list[Line] = []

    def pump(now_t: float) -> None:
        nonlocal playing
        while True:
            if playing is not None:
                if any(x is playing.line for x in cut_lines):
                    cut_lines.clear()
                    playing.cut = True
                    playing.end = now_t
                elif now_t < playing.end:
                    return
                mind.line_done(playing.line)
                playing = None
            line = mind.next_line()
            if line is None:
                return
            playing = Spoken(line, now_t, now_t + seconds_per_char * max(1, len(line.text)))
            report.spoken.append(playing)

    previous_cut = mind.on_cut
    mind.on_cut = cut_lines.append
    try:
        for u in updates:
            if realtime:
                await asyncio.sleep(max(0.0, (u.t - t0) - (loop.time() - wall0)))
            elif clock is not None:
                # The voice finishes (and starts) lines between updates.
                while playing is not None and playing.end <= u.t:
                    clock.advance_to(playing.end)
                    pump(playing.end)
                clock.advance_to(u.t)
            report.queued += len(mind.on_update(u.state, u.events))
            await asyncio.sleep(0)  # let model tasks run
            pump(mind.clock())
        end = mind.clock() + tail_s
        while mind.clock() < end:
            await asyncio.sleep(0 if not realtime else 0.02)
            pump(mind.clock())
            if realtime or clock is None:
                continue
            if playing is not None:
                clock.advance_to(playing.end)
            elif not mind.director.pending():
                break
            else:
                clock.advance_to(min(end, mind.clock() + 0.05))
    finally:
        mind.on_cut = previous_cut
    return report
