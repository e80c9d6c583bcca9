"""The HUD reader on real engine frames, scored against the engine's own counters."""

from __future__ import annotations

import pytest

from couchmate.types import Frame
from couchmate.watch.profile import load_profile
from couchmate.watch.reader import Reader
from couchmate.watch.testing import ATARI_PROFILES, doom_frames, fresh


def _accuracy(profile: str, frames: list[Frame], fields: list[str], **kw) -> dict[str, float]:
    """Share of (state, field) pairs whose value equals the truth of the frame the value
    was last seen in (FieldReading.t), the way the perception bench scores."""
    reader = Reader(load_profile(profile), **kw)
    by_t = {f.t: f.truth for f in frames}
    hits: dict[str, list[bool]] = {n: [] for n in fields}
    for f in frames:
        state = reader.read(fresh(f))
        for name in fields:
            r = state.fields.get(name)
            truth = by_t[r.t] if r is not None else f.truth
            if name == "ammo" and truth.get("switching"):
                continue  # the AMMO box may show either weapon while they swap
            hits[name].append(r is not None and r.value == truth[name])
    return {n: sum(v) / len(v) for n, v in hits.items()}


@pytest.mark.slow
def test_doom_single_player_fields_are_read_exactly(doom_sp):
    acc = _accuracy("doom", doom_sp, ["health", "armor", "ammo", "bullets", "shells", "cells"])
    assert all(v >= 0.98 for v in acc.values()), acc
    # the data really moves: damage, gifts and shooting change the counters
    assert len({f.truth["health"] for f in doom_sp}) > 5
    assert len({f.truth["armor"] for f in doom_sp}) > 2
    assert len({f.truth["ammo"] for f in doom_sp}) > 5


@pytest.mark.slow
def test_doom_deathmatch_fields_survive_deaths_and_flashes(doom_dm):
    acc = _accuracy("doom-deathmatch", doom_dm, ["health", "armor", "ammo", "frags", "rockets"])
    assert all(v >= 0.98 for v in acc.values()), acc
    assert sum(f.truth["dead"] for f in doom_dm) > 30  # several deaths, red screens included
    assert len({f.truth["frags"] for f in doom_dm}) > 2


@pytest.mark.slow
@pytest.mark.parametrize("game", ["pong", "breakout", "ms_pacman", "space_invaders"])
def test_atari_score_and_lives(atari, game):
    frames = atari[game]
    fields = ["player_score", "opponent_score"] if game == "pong" else ["score", "lives"]
    acc = _accuracy(ATARI_PROFILES[game], frames, fields)
    assert all(v >= 0.98 for v in acc.values()), acc
    assert max(len({f.truth[n] for f in frames}) for n in fields) > 3  # the counters move


def test_unchanged_boxes_are_not_read_again(doom_sp):
    frames = doom_sp[:80]
    fast = Reader(load_profile("doom"))
    slow = Reader(load_profile("doom"), skip_unchanged=False)
    for f in frames:
        a, b = fast.read(fresh(f)), slow.read(fresh(f))
        assert a.values() == b.values()
    assert fast.stats.boxes_read < slow.stats.boxes_read / 4
    assert fast.stats.ocr_calls <= slow.stats.ocr_calls
    assert fast.stats.boxes_skipped > 0 and slow.stats.boxes_skipped == 0
    assert fast.stats.ocr_calls / len(frames) < 0.5


def test_a_change_is_committed_on_its_second_frame(doom_sp):
    reader = Reader(load_profile("doom"))
    # the first frame where a steady health value changes to another steady one
    h = [f.truth["health"] for f in doom_sp]
    i = next(i for i in range(5, len(h) - 1) if h[i - 2] == h[i - 1] != h[i] == h[i + 1])
    old, new = doom_sp[i - 1].truth["health"], doom_sp[i].truth["health"]
    for f in doom_sp[:i]:
        reader.read(fresh(f))
    state = reader.read(fresh(doom_sp[i]))
    assert reader.pending
    assert state.value("health") == old  # seen once: not yet trusted
    state = reader.read(fresh(doom_sp[i + 1]))
    assert state.value("health") == new
    assert state.fields["health"].t == doom_sp[i + 1].t


@pytest.mark.parametrize("resolution", ["320X240", "1280X960"])
def test_other_resolutions_of_the_same_layout(resolution):
    frames = list(doom_frames(30, hud="doom", resolution=resolution, seed=5, gifts=0.05))
    acc = _accuracy("doom", frames, ["health", "armor", "ammo", "bullets"])
    assert all(v >= 0.95 for v in acc.values()), acc


def test_readings_carry_confidence_time_and_timing(doom_sp):
    reader = Reader(load_profile("doom"))
    f1, f2 = fresh(doom_sp[0]), fresh(doom_sp[1])
    f2.timing.mark("captured")
    reader.read(f1)
    state = reader.read(f2)
    r = state.fields["health"]
    assert 0.5 <= r.confidence <= 1.0
    assert r.t == f2.t and r.raw.endswith("%")
    assert state.frame_index == f2.index and state.game == "doom"
    assert "read" in f2.timing.marks and state.timing.span_ms("captured", "read") >= 0


def test_generic_profile_reads_screen_text_at_most_every_few_seconds(doom_dm):
    reader = Reader(load_profile("generic"))
    first = Frame(image=doom_dm[3].image[::2, ::2].copy(), t=100.0, source="x", index=0)
    state = reader.read(first)
    assert "HEALTH" in state.value("text", "").upper()
    calls = reader.stats.ocr_calls
    other = Frame(image=doom_dm[200].image[::2, ::2].copy(), t=101.0, source="x", index=1)
    reader.read(other)  # within min_interval_s: no new full-frame OCR
    assert reader.stats.ocr_calls == calls
