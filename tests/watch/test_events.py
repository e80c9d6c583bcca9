"""Events from real engine frames: what the reader sees, against what the engine did."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from couchmate.config import config_dir
from couchmate.types import Event, FieldReading, Frame, GameState, Timing
from couchmate.watch.events import EventEngine, make_event
from couchmate.watch.profile import load_profile
from couchmate.watch.reader import Reader
from couchmate.watch.testing import ATARI_PROFILES, event_scores, fresh, truth_events


def _read_events(profile: str, frames: list[Frame]) -> tuple[list[Event], list[GameState]]:
    prof = load_profile(profile)
    reader, engine = Reader(prof), EventEngine(prof)
    events, states = [], []
    for f in frames:
        s = reader.read(f)
        states.append(s)
        events += engine.update(s)
    return events, states


@pytest.mark.slow
@pytest.mark.parametrize(("profile", "data"), [("doom", "doom_sp"), ("doom-deathmatch", "doom_dm")])
def test_doom_events_match_what_the_engine_did(request, profile, data):
    frames = [fresh(f) for f in request.getfixturevalue(data)]
    ours, _ = _read_events(profile, frames)
    truth = truth_events(profile, frames)
    kinds = {e.kind for e in truth}
    assert {"damage_taken", "death"} <= kinds  # the data has what the rules are about
    assert event_scores(ours, truth, tolerance_s=0.5)["f1"] >= 0.9, (
        [(e.kind, round(e.t, 2)) for e in ours],
        [(e.kind, round(e.t, 2)) for e in truth],
    )


@pytest.mark.slow
@pytest.mark.parametrize("game", ["breakout", "ms_pacman", "space_invaders", "pong"])
def test_atari_events_match_what_the_engine_did(atari, game):
    frames = [fresh(f) for f in atari[game]]
    ours, _ = _read_events(ATARI_PROFILES[game], frames)
    truth = truth_events(ATARI_PROFILES[game], frames)
    assert truth, "no events in the data"
    assert event_scores(ours, truth, tolerance_s=0.5)["f1"] >= 0.9, (
        [(e.kind, round(e.t, 2)) for e in ours],
        [(e.kind, round(e.t, 2)) for e in truth],
    )


def test_a_health_drop_fires_damage_taken_once(doom_sp):
    h = [f.truth["health"] for f in doom_sp]
    i = next(i for i in range(3, len(h) - 3) if h[i - 2] == h[i - 1] > h[i] == h[i + 1] == h[i + 2])
    events, _ = _read_events("doom", [fresh(f) for f in doom_sp[: i + 3]])
    hits = [e for e in events if e.kind == "damage_taken" and e.t >= doom_sp[i].t]
    assert len(hits) == 1
    e = hits[0]
    assert (
        e.data["from"] == h[i - 1] and e.data["to"] == h[i] and e.data["delta"] == h[i] - h[i - 1]
    )
    assert 0.3 < e.salience <= 1.0 and e.game == "doom"


def _steady_stretch(frames: list[Frame], field: str, n: int) -> int:
    v = [f.truth[field] for f in frames]
    return next(i for i in range(len(v) - n) if len(set(v[i : i + n])) == 1 and v[i] >= 10)


def _paint_over_first_digit(f: Frame) -> np.ndarray:
    """The real frame with the health box's first digit covered by the box's background."""
    img = f.image.copy()
    x0, y0, x1, y1 = load_profile("doom").box("health", *f.size)
    box = img[y0:y1, x0:x1]
    red = (box[..., 0] > 60) & (box[..., 1] < 20)
    cols = np.flatnonzero(red.any(axis=0))
    first = cols[0]
    box[:, first : first + (x1 - x0) // 5] = np.median(box[~red], axis=0).astype(np.uint8)
    return img


def test_one_corrupted_frame_fires_nothing(doom_sp):
    i = _steady_stretch(doom_sp, "health", 8)
    frames = [fresh(f) for f in doom_sp[: i + 8]]
    clean_events, _ = _read_events("doom", frames)
    bad = list(frames)
    bad[i + 3] = fresh(frames[i + 3], _paint_over_first_digit(frames[i + 3]))
    # the corrupted frame really reads differently
    reader = Reader(load_profile("doom"))
    reader.read(bad[i + 3])
    seen = reader.last_observation("health")[0]
    assert seen != frames[i + 3].truth["health"]
    events, states = _read_events("doom", bad)
    assert [(e.kind, e.t) for e in events] == [(e.kind, e.t) for e in clean_events]
    assert all(s.value("health") != seen for s in states[i:])


def test_without_confirmation_the_same_corruption_would_fire(doom_sp):
    """The control: trusting every single read turns the painted frame into events."""
    folder = config_dir() / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doom-trusting.toml").write_text(
        textwrap.dedent(
            """
            name = "doom-trusting"
            extends = "doom"
            [fields.health]
            confirm = 1
            """
        )
    )
    i = _steady_stretch(doom_sp, "health", 8)
    bad = [fresh(f) for f in doom_sp[: i + 8]]
    bad[i + 3] = fresh(bad[i + 3], _paint_over_first_digit(bad[i + 3]))
    careful, _ = _read_events("doom", bad)
    trusting, _ = _read_events("doom-trusting", bad)
    late = [e for e in trusting if e.t >= bad[i].t]
    assert late and not [e for e in careful if e.t >= bad[i].t]


def test_frags_rising_is_a_kill(doom_dm):
    # A suicide takes a frag (0 → -1); the same real frames played backwards show frags
    # going up: the HUD pixels of a kill.
    fr = [f.truth["frags"] for f in doom_dm]
    k = next(i for i in range(1, len(fr)) if fr[i] < fr[i - 1])
    backwards = [fresh(f) for f in reversed(doom_dm[max(0, k - 15) : k + 15])]
    for n, f in enumerate(backwards):
        f.t, f.index = n / 17.5, n
    events, _ = _read_events("doom-deathmatch", backwards)
    kills = [e for e in events if e.kind == "kill"]
    assert len(kills) == 1
    assert kills[0].data["to"] - kills[0].data["from"] == 1


def test_respawn_is_not_a_pickup(doom_dm):
    events, _ = _read_events("doom-deathmatch", [fresh(f) for f in doom_dm])
    deaths = [e for e in events if e.kind == "death"]
    assert deaths
    assert not [e for e in events if e.kind == "pickup" and e.data["from"] == 0]


def _state(t: float, **values) -> GameState:
    return GameState(
        game="doom",
        t=t,
        fields={k: FieldReading(v, 1.0, t) for k, v in values.items()},
        timing=Timing({"captured": t - 0.05, "read": t}),
    )


def test_rules_thresholds_guards_and_cooldown():
    engine = EventEngine(load_profile("doom"))
    assert engine.update(_state(0.0, health=50, armor=0)) == []
    kinds = [e.kind for e in engine.update(_state(1.0, health=25, armor=0))]
    assert sorted(kinds) == ["damage_taken", "low_health"]
    engine.update(_state(2.0, health=40, armor=0))  # a medikit: back above 30
    kinds = [e.kind for e in engine.update(_state(3.0, health=20, armor=0))]
    assert kinds == ["damage_taken"]  # low_health is cooling down (10 s)
    kinds = [e.kind for e in engine.update(_state(4.0, health=0, armor=0))]
    assert kinds == ["death"]  # the lethal hit is a death, not damage (guard)
    assert engine.update(_state(5.0, health=100, armor=0)) == []  # respawn: no pickup
    both = engine.update(_state(6.0, health=110, armor=50))
    assert [e.kind for e in both] == ["pickup"]  # health and armor: one pickup event
    assert both[0].data["also"][0]["field"] == "armor"


def test_a_doubtful_value_changes_without_an_event():
    engine = EventEngine(load_profile("doom"))
    engine.update(_state(0.0, health=60))
    doubtful = _state(1.0, health=60)
    doubtful.fields["health"].confidence = 0.1  # unreadable for a while (death flash)
    engine.update(doubtful)
    assert engine.update(_state(2.0, health=100)) == []


def test_events_carry_the_state_timing_and_evented_mark():
    engine = EventEngine(load_profile("doom"))
    engine.update(_state(0.0, health=80))
    (e,) = engine.update(_state(1.0, health=70))
    assert e.timing.get("captured") == pytest.approx(0.95)
    assert e.timing.get("evented") is not None
    assert e.timing.span_ms("captured", "read") == pytest.approx(50.0)


def test_make_event_uses_the_profile_salience():
    prof = load_profile("doom")
    e = make_event("scene_change", 3.0, profile=prof, data={"score": 40})
    assert e.salience == 0.3 and e.game == "doom" and e.data == {"score": 40}
    assert e.timing.get("evented") is not None
    assert make_event("idle", 1.0, 7.0).salience == 1.0  # clamped


def test_a_doubtful_guard_blocks_the_rule():
    """A death the reader could not see: the respawn's ammo reset is no pickup."""
    engine = EventEngine(load_profile("doom"))
    engine.update(_state(0.0, health=44, rockets=12))
    unsure = _state(1.0, health=44, rockets=12)
    unsure.fields["health"].confidence = 0.1
    engine.update(unsure)
    assert engine.update(_state(2.0, health=100, rockets=15)) == []
    # the same change with health seen clearly is a pickup
    clear = EventEngine(load_profile("doom"))
    clear.update(_state(0.0, health=44, rockets=12))
    assert [e.kind for e in clear.update(_state(1.0, health=44, rockets=15))] == ["pickup"]


def test_a_respawn_read_a_few_frames_apart_is_no_pickup():
    """The respawn resets health and ammo on one tic; the reader may commit the ammo box a
    few frames after the health box. `guard_for_s` (doom.toml: 1 s alive before) keeps the
    reset from being a pickup; a real pickup later still is one."""
    engine = EventEngine(load_profile("doom"))
    engine.update(_state(0.0, health=40, rockets=3))
    assert [e.kind for e in engine.update(_state(1.0, health=0, rockets=3))] == ["death"]
    assert engine.update(_state(2.4, health=100, rockets=3)) == []
    assert engine.update(_state(2.5, health=100, rockets=15)) == []  # the reset, seen late
    (e,) = engine.update(_state(4.0, health=100, rockets=20))
    assert e.kind == "pickup" and e.data["delta"] == 5
    # without the hold the late-seen reset would have been a pickup
    folder = config_dir() / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doom-nohold.toml").write_text(
        'name = "doom-nohold"\nextends = "doom"\n[rules.pickup_rockets]\nguard_for_s = 0.0\n'
    )
    loose = EventEngine(load_profile("doom-nohold"))
    for t, h, r in ((0.0, 40, 3), (1.0, 0, 3), (2.4, 100, 3)):
        loose.update(_state(t, health=h, rockets=r))
    assert [e.kind for e in loose.update(_state(2.5, health=100, rockets=15))] == ["pickup"]


def test_a_value_reached_is_news_however_doubtful_the_one_before():
    """Health unreadable through a red flash, then 0%: the death is an event (the value
    reached is confirmed), the drop from the doubtful value is not."""
    engine = EventEngine(load_profile("doom"))
    engine.update(_state(0.0, health=15))
    doubtful = _state(1.0, health=15)
    doubtful.fields["health"].confidence = 0.1
    engine.update(doubtful)
    assert [e.kind for e in engine.update(_state(2.0, health=0))] == ["death"]
