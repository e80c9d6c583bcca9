"""The change gate and the clip buffer on real Doom and Atari frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from couchmate.sources.base import open_source
from couchmate.types import Frame
from couchmate.watch.clip import ClipBuffer
from couchmate.watch.keyframes import KeyframeGate
from couchmate.watch.profile import load_profile

TIC = 1 / 35


async def _grab(spec: str, n: int) -> list[Frame]:
    src = open_source(spec, realtime=False, seed=0, max_frames=n)
    try:
        return [f async for f in src.frames()]
    finally:
        src.close()


@pytest.fixture(scope="module")
def doom_frames() -> list[Frame]:
    frames = asyncio.run(_grab("doom", 360))
    # Game time, not the wall clock of a flat-out run: the gate's windows are in seconds.
    for i, f in enumerate(frames):
        f.t = i * TIC
    return frames


@pytest.fixture(scope="module")
def doom_profile():
    return load_profile("doom-deathmatch")


def _at(frame: Frame, t: float, image: np.ndarray | None = None) -> Frame:
    image = frame.image if image is None else image
    return Frame(image=image, t=t, source=frame.source, index=frame.index)


def _health_box(profile, frame: Frame) -> tuple[int, int, int, int]:
    w, h = frame.size
    boxes = [r[1:] for r in profile.regions(w, h) if r[0] == "health"]
    assert len(boxes) == 1
    return boxes[0]


def test_one_hud_digit_change_is_a_keyframe_and_duplicates_are_not(doom_frames, doom_profile):
    base = doom_frames[60]
    x0, y0, x1, y1 = _health_box(doom_profile, base)
    # Paint one digit over another inside HEALTH ("100%" → "000%"-like): a few hundred
    # pixels of a 640x480 frame, far below what the global difference notices.
    changed = base.image.copy()
    third = (x1 - x0) // 3
    changed[y0:y1, x0 : x0 + third] = base.image[y0:y1, x0 + third : x0 + 2 * third]
    assert not np.array_equal(changed, base.image)

    gate = KeyframeGate(max_interval_s=10.0, regions=doom_profile.regions)
    assert gate.check(_at(base, 0.0)).reason == "first"
    dup = gate.check(_at(base, 0.1))
    assert not dup.keep and dup.reason == "" and dup.score == 0.0
    d = gate.check(_at(base, 0.2, changed))
    assert d.keep and d.reason == "hud" and "health" in d.hud_fields
    assert d.score < d.threshold  # the small copy alone would have missed it

    blind = KeyframeGate(max_interval_s=10.0)  # no HUD regions: the change is lost
    blind.check(_at(base, 0.0))
    assert not blind.check(_at(base, 0.2, changed)).keep


def test_gate_rate_adapts_to_the_pace_of_the_game(doom_frames):
    busy = KeyframeGate(max_interval_s=10.0)
    kept = [busy.check(f).keep for f in doom_frames[:120]]
    busy_threshold = busy.check(doom_frames[120]).threshold
    # A moving game: many frames, far from all of them (near-duplicates are skipped).
    assert 3 <= sum(kept) <= 0.6 * len(kept)

    # A calm screen (a menu): the same picture with sensor-like noise; then one small
    # real change (a highlighted line moves) must still be kept.
    rng = np.random.default_rng(0)
    still = doom_frames[30].image
    calm = KeyframeGate(max_interval_s=10.0)
    for i in range(60):
        noise = rng.integers(-2, 3, still.shape, dtype=np.int16)
        img = np.clip(still.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        d = calm.check(Frame(image=img, t=i * TIC, source="menu"))
        assert d.keep == (i == 0)
    assert d.threshold < busy_threshold
    moved = still.copy()
    moved[100:160, 200:440] = 255 - moved[100:160, 200:440]  # a highlight bar, 5% of the frame
    assert calm.check(Frame(image=moved, t=61 * TIC, source="menu")).reason == "scene"


def test_interval_idle_and_scene_change_signals(doom_frames):
    gate = KeyframeGate(max_interval_s=1.0, idle_after_s=3.0)
    still = doom_frames[0]
    reasons, idles = [], []
    for i in range(5 * 35):
        d = gate.check(_at(still, i * TIC))
        reasons.append(d.reason)
        idles.append(d.idle)
    assert reasons[0] == "first"
    assert 4 <= reasons.count("interval") <= 5  # about once a second, nothing else
    assert sum(idles) == 1 and idles.index(True) * TIC == pytest.approx(3.0, abs=0.1)

    pong = asyncio.run(_grab("atari:pong", 30))[-1]
    d = gate.check(_at(pong, 6.0))  # another picture size: another window, another game
    assert d.keep and d.scene_change and not d.idle

    # Another game of the same size: its HUD is gone, the histogram moved.
    breakout = asyncio.run(_grab("atari:breakout", 30))[-1]
    pong_gate = KeyframeGate(regions=load_profile("atari-pong").regions)
    assert not pong_gate.check(_at(pong, 0.0)).scene_change
    assert pong_gate.check(_at(breakout, 0.1)).scene_change


def test_play_inside_one_doom_map_is_not_a_scene_change(doom_frames, doom_profile):
    # Turning, rooms of other light and red damage flashes move the histogram of a Doom
    # frame as much as a cut does; the status bar staying on screen tells them apart.
    gate = KeyframeGate(regions=doom_profile.regions)
    decisions = [gate.check(f) for f in doom_frames]
    assert max(d.scene_distance for d in decisions) > gate.scene_distance  # it was tempted
    assert not any(d.scene_change for d in decisions)


def test_clip_keeps_the_last_seconds_evenly_spaced_and_bounded(doom_frames):
    clip = ClipBuffer(seconds=2.0, max_frames=40, max_side=320)
    for f in doom_frames[:120]:  # 3.4 s of game time
        clip.add(f)
    frames = clip.clip()
    newest = doom_frames[119].t
    assert frames[-1].t == newest
    assert newest - 2.0 <= frames[0].t <= newest - 2.0 + 2 * TIC  # the whole 2 s span
    assert len(frames) == 40  # the cap, not the 70 frames of the last 2 s: thinned
    assert frames[0].image.shape == (240, 320, 3)  # stored downscaled
    assert clip.nbytes <= 40 * 240 * 320 * 3

    few = clip.clip(seconds=1.0, max_frames=5)
    assert len(few) == 5 and few[-1].t == newest
    gaps = np.diff([f.t for f in few])
    assert gaps.min() > 0 and gaps.max() - gaps.min() < 3 * TIC + 1e-9  # evenly spread
    assert few[0].t >= newest - 1.0 - 1e-9
