"""The watching pipeline on the real Doom engine with the real reader (OCR and all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from couchmate.config import WatchSettings
from couchmate.errors import SourceError
from couchmate.sources.base import open_source
from couchmate.sources.doom import DoomSource
from couchmate.types import Frame, GameState
from couchmate.watch.pipeline import WatchPipeline, WatchUpdate
from couchmate.watch.reader import Reader


async def _drain(pipeline: WatchPipeline, seconds: float) -> list[WatchUpdate]:
    out: list[WatchUpdate] = []
    await pipeline.run(out.append, seconds=seconds)
    return out


def _others() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


class TruthDoom(DoomSource):
    """The real Doom source, remembering every frame's engine truth (the pipeline reads
    only keyframes; the test wants the frames around them too)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.truths: dict[int, dict] = {}

    async def frames(self) -> AsyncIterator[Frame]:
        async for f in super().frames():
            self.truths[f.index] = f.truth
            yield f


@pytest.mark.slow
def test_live_doom_gives_states_and_events_with_ordered_timings():
    async def main():
        # health_gathering: the acid floor drains health, so events come within seconds.
        src = TruthDoom("health_gathering", realtime=True, seed=0)
        pipeline = WatchPipeline(src)
        updates = await _drain(pipeline, 6.0)
        assert _others() == []  # every stage was cancelled on stop
        return pipeline, updates, src.truths

    pipeline, updates, truths = asyncio.run(main())
    s = pipeline.stats()
    assert s.profile == "doom" and pipeline.profile.name == "doom"
    assert s.captured >= 80  # ~35 fps for 6 s on a busy 2-core box
    assert 0 < s.keyframes < s.captured
    states = [u.state for u in updates if u.state is not None]
    assert len(states) >= 5
    assert [st.frame_index for st in states] == sorted({st.frame_index for st in states})
    for st in states:
        m = st.timing.marks
        assert m["captured"] <= m["keyframed"] <= m["read_start"] <= m["read"]
    # Every health reading is what the engine had on the frame it was read from, or on the
    # frame before (Doom's status bar draws the previous tic's value).
    index_at = {u.keyframe.t: u.keyframe.index for u in updates}
    readings = [st.fields["health"] for st in states if "health" in st.fields]
    assert len(readings) >= 3
    for r in readings:
        i = index_at[r.t]
        assert r.value in (truths[i]["health"], truths.get(i - 1, {}).get("health"))
    # The acid drains health and medikits restore it: damage_taken and pickup events.
    events = [e for u in updates if u.state is not None for e in u.events]
    assert events, "health_gathering changes health every second or so: events must fire"
    for e in events:
        m = e.timing.marks
        assert m["captured"] <= m["read"] <= m["evented"]
        assert e.kind in ("damage_taken", "pickup", "low_health")
        rising = e.data["to"] > e.data["from"]
        assert rising == (e.kind == "pickup")
    assert s.latency_ms["capture_to_event"]["n"] == sum(
        1 for u in updates if u.state is not None for _ in u.events
    )


class SlowReader(Reader):
    """The real reader, on a slow machine."""

    def read(self, frame: Frame) -> GameState:
        time.sleep(0.3)
        return super().read(frame)


@pytest.mark.slow
def test_a_slow_reader_drops_frames_and_never_slows_capture():
    async def main():
        src = open_source("doom", realtime=True, seed=1)
        # keep_all: every frame goes to the reader, which cannot keep up
        pipeline = WatchPipeline(src, reader=SlowReader, keep_all=True)
        await _drain(pipeline, 4.0)
        return pipeline.stats()

    s = asyncio.run(main())
    assert s.dropped["reader"] > 0.5 * s.captured
    assert s.captured >= 70  # capture kept its pace (35 fps) while reads took 0.3 s
    assert 4 <= s.states <= 4.0 / 0.3 + 1
    assert s.error == ""


class FlakyReader(Reader):
    """Fails on every fifth frame (say a corrupt frame that makes the OCR raise)."""

    def read(self, frame: Frame) -> GameState:
        if frame.index % 5 == 0:
            raise ValueError(f"cannot read frame {frame.index}")
        return super().read(frame)


def test_a_reader_error_drops_that_frame_only():
    async def main():
        src = open_source("doom", realtime=False, seed=0, max_frames=40)
        pipeline = WatchPipeline(src, reader=FlakyReader, keep_all=True, lossless=True)
        updates = [u async for u in pipeline.updates()]
        await pipeline.stop()
        return pipeline.stats(), updates

    s, updates = asyncio.run(main())
    read = sorted(u.state.frame_index for u in updates if u.state is not None)
    assert s.reader_errors == 8 and s.states == 32
    assert read == [i for i in range(40) if i % 5]
    assert s.dropped_total == 0  # lossless: the queues waited instead


class DyingDoom(DoomSource):
    """The real engine, whose connection dies after 30 frames."""

    async def frames(self) -> AsyncIterator[Frame]:
        async for f in super().frames():
            yield f
            if f.index == 29:
                raise ConnectionError("engine connection lost")


def test_a_source_dying_mid_run_ends_with_a_clear_error_and_no_hang():
    async def main():
        pipeline = WatchPipeline(DyingDoom(realtime=False, seed=0), lossless=True)
        got: list[WatchUpdate] = []
        with pytest.raises(SourceError) as info:
            async with asyncio.timeout(60):
                async for u in pipeline.updates():
                    got.append(u)
        await pipeline.stop()
        assert _others() == []
        return pipeline, got, info.value

    pipeline, got, err = asyncio.run(main())
    assert "stopped after 30 frames" in err.message
    assert "engine connection lost" in err.message
    assert err.hint
    # What was captured before the death went through: the frames up to the end were read.
    assert any(u.state is not None for u in got)
    assert pipeline.stats().captured == 30 and pipeline.stats().error == err.message


class FrozenDoom(DoomSource):
    """A source that never delivers a frame (a hung capture)."""

    async def frames(self) -> AsyncIterator[Frame]:
        await asyncio.sleep(3600)
        yield  # pragma: no cover


def test_a_source_that_never_delivers_ends_the_run_instead_of_hanging():
    async def main():
        pipeline = WatchPipeline(FrozenDoom(), "doom-deathmatch")
        started = time.monotonic()
        with pytest.raises(SourceError, match="no frame from 'doom:arena' within 1 s"):
            await pipeline.run(seconds=1.0, first_frame_timeout_s=1.0)
        assert time.monotonic() - started < 10
        assert _others() == []

    asyncio.run(main())


def test_the_game_is_detected_at_start_and_again_after_a_scene_change(tmp_path):
    """A folder of screenshots has no profile hint: a blank screen first (nothing to
    detect: generic), then the game starts (a scene change: detect again: Doom)."""
    import cv2
    import numpy as np

    async def grab() -> list[Frame]:
        src = open_source("doom:basic", realtime=False, seed=0, max_frames=6)
        try:
            return [f async for f in src.frames()]
        finally:
            src.close()

    shots = tmp_path / "shots"
    shots.mkdir()
    doom = asyncio.run(grab())
    blank = np.full_like(doom[0].image, 24)
    for i, img in enumerate([blank] * 3 + [f.image for f in doom]):
        cv2.imwrite(str(shots / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    async def main():
        src = open_source(f"dir:{shots}", realtime=False)
        assert src.profile_hint is None
        pipeline = WatchPipeline(src, "auto", lossless=True)
        seen: list[tuple[int, str]] = []
        async for u in pipeline.updates():
            if u.state is not None:
                seen.append((u.keyframe.index, u.profile))
        await pipeline.stop()
        return pipeline, seen

    pipeline, seen = asyncio.run(main())
    assert seen[0] == (0, "generic")
    assert pipeline.profile_name == "doom" and seen[-1][1] == "doom"
    assert all(index >= 3 for index, name in seen if name == "doom")
    assert pipeline.last_state.value("health") == doom[-1].truth["health"]


def test_a_bad_profile_name_is_a_user_error_before_anything_runs():
    from couchmate.errors import UserError

    async def main():
        src = open_source("doom", realtime=False, max_frames=5)
        pipeline = WatchPipeline(src, "no-such-game", WatchSettings())
        with pytest.raises(UserError, match="no-such-game"):
            await pipeline.start()
        await pipeline.stop()

    asyncio.run(main())
