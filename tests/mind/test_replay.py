"""A minute of busy play replayed through the Mind: it reacts to what matters (deaths, low
health, kills) and does not spam — the issue's 60 s demo target, on a virtual clock."""

from __future__ import annotations

import asyncio
import random

import pytest

from couchmate.mind.mind import Mind
from couchmate.mind.persona import load_persona
from couchmate.mind.replay import ReplayClock, replay, updates_from
from tests.mind.support import event, state


def busy_minute(seed: int):
    """States at 4 Hz and events as the Doom profile makes them: damage (0.3–0.5),
    pickups (0.2), kills (0.6), low health (0.7), and three deaths (0.9)."""
    rng = random.Random(seed)
    t0 = 100.0
    states, events = [], []
    health = 100
    deaths = {15.0, 35.0, 52.0}
    for i in range(240):
        t = t0 + i * 0.25
        if t - t0 in deaths:
            health = 0
            events.append(event("death", t, 0.9))
        elif health == 0:
            health = 100
        elif rng.random() < 0.12:
            hit = rng.randint(5, 20)
            before, health = health, max(1, health - hit)
            events.append(event("damage_taken", t, 0.3 + 0.01 * hit))
            if before >= 30 > health:
                events.append(event("low_health", t, 0.7, health=health))
        elif rng.random() < 0.05:
            events.append(event("kill", t, 0.6))
        elif rng.random() < 0.04:
            health = min(100, health + 25)
            events.append(event("pickup", t, 0.3))
        states.append(state(t, health=health, ammo=50))
    return states, events, [t0 + d for d in sorted(deaths)]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_busy_minute_at_talkativeness_2(seed):
    states, events, deaths = busy_minute(seed)
    clock = ReplayClock(states[0].t)
    mind = Mind(load_persona("sunny"), clock=clock, talkativeness=2, seed=seed)
    report = asyncio.run(replay(updates_from(states, events), mind))
    summary = report.summary()
    assert summary["seconds_per_unprompted_line"] >= 8.0, summary
    assert summary["late"] == 0 and summary["paths"] == {"reflex": summary["lines"]}
    for d in deaths:  # every death gets a reaction within half a second
        said = [s for s in report.spoken if s.line.event.kind == "death" and s.line.event.t == d]
        assert said and said[0].start - d <= 0.5, (d, summary)
    for s in report.spoken:
        assert s.line.deadline is None or s.start <= s.line.deadline
    starts = [s.start for s in report.spoken]
    ends = [s.end for s in report.spoken]
    assert all(b >= a for a, b in zip(ends, starts[1:], strict=False))  # never two at once


def test_talkativeness_changes_how_much_is_said():
    states, events, _ = busy_minute(3)
    counts = {}
    for level in (0, 1, 2, 3):
        clock = ReplayClock(states[0].t)
        mind = Mind(load_persona("deadpan"), clock=clock, talkativeness=level)
        counts[level] = asyncio.run(replay(updates_from(states, events), mind)).summary()[
            "unprompted"
        ]
    assert counts[0] == 0
    assert counts[1] < counts[2] < counts[3], counts


def test_updates_pair_events_with_their_state():
    s = [state(1.0), state(2.0), state(3.0)]
    e = [event("kill", 2.0), event("pickup", 1.5), event("death", 3.5)]
    ups = updates_from(s, e)
    assert [(u.t, [x.kind for x in u.events]) for u in ups] == [
        (1.0, []),
        (2.0, ["pickup", "kill"]),
        (3.0, []),
        (3.5, ["death"]),
    ]
    assert ups[-1].state is s[-1]
