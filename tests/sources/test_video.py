"""video: real Atari frames encoded with PyAV, then played whole, cut in half and damaged."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from couchmate.errors import UserError
from couchmate.sources.base import open_source
from couchmate.sources.video import VideoSource

pytestmark = pytest.mark.timeout(60)

N_FRAMES = 90
FPS = 30


def atari_frames(n: int, game: str = "riverraid", seed: int = 0) -> list[np.ndarray]:
    """`n` real frames from the ALE engine under a random policy (RGB, 210×160).

    River Raid scrolls all the time, so every frame differs from its neighbours and a
    decoded frame can be matched back to the frame it came from.
    """
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.loadROM(roms.get_rom_path(game))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        for _ in range(3):
            ale.act(actions[rng.integers(len(actions))])
        if ale.game_over():
            ale.reset_game()
        out.append(ale.getScreenRGB().copy())
    return out


def encode(path: Path, frames: list[np.ndarray], options: dict[str, str] | None = None) -> Path:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=options or {}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "12", "g": "10"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("clips")
    frames = atari_frames(N_FRAMES)
    mkv = encode(d / "run.mkv", frames)
    # faststart puts the index first, so a cut-off MP4 still opens.
    mp4 = encode(d / "run.mp4", frames, {"movflags": "faststart"})
    return {"frames": frames, "mkv": mkv, "mp4": mp4, "dir": d}


def collect(src: VideoSource, limit: int | None = None) -> list:
    async def run():
        out = []
        async for f in src.frames():
            out.append(f)
            if limit and len(out) >= limit:
                break
        src.close()
        return out

    return asyncio.run(run())


def source_index(image: np.ndarray, originals: list[np.ndarray]) -> int:
    """Which original frame a decoded (lossy) frame is: the nearest by mean abs difference."""
    stack = np.stack(originals)[:, ::3, ::3].astype(np.int16)
    diffs = np.abs(stack - image[::3, ::3].astype(np.int16)).mean(axis=(1, 2, 3))
    return int(np.argmin(diffs))


@pytest.mark.parametrize("kind", ["mkv", "mp4"])
def test_plays_every_frame_fast(clips, kind):
    src = open_source(f"video:{clips[kind]}", realtime=False)
    assert isinstance(src, VideoSource) and src.fps == pytest.approx(FPS)
    frames = collect(src)
    assert len(frames) == N_FRAMES
    assert [f.index for f in frames] == list(range(N_FRAMES))
    originals = clips["frames"]
    for i, f in enumerate(frames):
        assert f.image.dtype == np.uint8 and f.image.shape == (210, 160, 3)
        assert f.image.flags.c_contiguous
        assert f.source == f"video:{clips[kind]}"
        # Flat out, a frame's time is the stream's (the same every run); captured is real.
        assert f.t - frames[0].t == pytest.approx(i / FPS, abs=1e-3)
        assert f.timing.get("captured") >= frames[0].t
        assert source_index(f.image, originals) == i
    assert all(b.t >= a.t for a, b in zip(frames, frames[1:], strict=False))
    assert src.skipped == 0


def test_realtime_paces_by_stream_timestamps(clips):
    n = 16
    t0 = time.monotonic()
    frames = collect(VideoSource(str(clips["mkv"]), realtime=True), limit=n)
    # 15 frame intervals at 30 fps take half a second; decoding alone takes far less.
    assert frames[-1].t - frames[0].t >= (n - 1) / FPS * 0.9
    assert time.monotonic() - t0 < 5.0
    fast = collect(VideoSource(str(clips["mkv"]), realtime=False), limit=n)
    assert fast[-1].t - fast[0].t < frames[-1].t - frames[0].t


@pytest.mark.parametrize("kind", ["mkv", "mp4"])
def test_truncated_file_plays_the_first_half_and_ends(clips, kind):
    data = clips[kind].read_bytes()
    cut = clips["dir"] / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    frames = collect(VideoSource(str(cut), realtime=False))
    assert N_FRAMES * 0.2 < len(frames) < N_FRAMES * 0.8
    assert [source_index(f.image, clips["frames"]) for f in frames[:10]] == list(range(10))


@pytest.mark.parametrize("kind", ["mkv", "mp4"])
def test_corrupt_middle_is_skipped_and_playback_recovers(clips, kind):
    data = bytearray(clips[kind].read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2000] = bytes((b * 7 + 13) & 0xFF for b in data[mid : mid + 2000])
    bad = clips["dir"] / f"bad.{kind}"
    bad.write_bytes(bytes(data))
    src = VideoSource(str(bad), realtime=False)
    frames = collect(src)
    # Lost packets are skipped; frames the decoder can conceal come through (garbled).
    assert N_FRAMES * 0.6 < len(frames) <= N_FRAMES
    assert source_index(frames[0].image, clips["frames"]) == 0
    # Decoding resumed after the damage: the file's last frame still came through.
    assert source_index(frames[-1].image, clips["frames"]) == N_FRAMES - 1
    assert [f.index for f in frames] == list(range(len(frames)))


def test_loop_starts_over_and_close_ends_the_stream(clips):
    src = VideoSource(str(clips["mkv"]), realtime=False, loop=True)
    frames = collect(src, limit=N_FRAMES + 10)
    assert len(frames) == N_FRAMES + 10
    assert source_index(frames[N_FRAMES].image, clips["frames"]) == 0
    assert frames[-1].index == N_FRAMES + 9

    async def after_close():
        return [f async for f in src.frames()]

    assert asyncio.run(after_close()) == []


def test_not_a_video_names_the_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(UserError) as e:
        VideoSource(str(text))
    assert "notes.mp4" in e.value.message and e.value.hint

    audio = tmp_path / "beep.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 5) * 8000).astype(np.int16).tobytes())
    with pytest.raises(UserError, match="no video stream"):
        VideoSource(str(audio))


def test_missing_path_and_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        open_source(f"video:{tmp_path / 'nope.mp4'}")
    with pytest.raises(UserError, match="folder"):
        VideoSource(str(tmp_path))


def test_oversized_video_is_scaled_down_by_the_decoder(clips):
    frames = collect(VideoSource(str(clips["mkv"]), realtime=False, max_pixels=5000), limit=3)
    h, w = frames[0].image.shape[:2]
    assert h * w <= 5000 and abs(w / h - 160 / 210) < 0.03
    assert frames[0].image.dtype == np.uint8 and frames[0].image.flags.c_contiguous


@pytest.mark.slow
def test_a_fast_video_waits_for_the_reader_instead_of_dropping(clips):
    """`watch --fast` on a video dropped ~25 % of frames, and each run read other frames."""
    from couchmate.watch.pipeline import WatchPipeline

    async def read_all() -> tuple[list[int], object]:
        pipeline = WatchPipeline(VideoSource(str(clips["mkv"]), realtime=False))
        read: list[int] = []
        stats = await pipeline.run(lambda u: read.append(u.keyframe.index) if u.state else None)
        return read, stats

    first, stats = asyncio.run(read_all())
    second, _ = asyncio.run(read_all())
    assert stats.captured == N_FRAMES and stats.dropped_total == 0, stats.dropped
    assert first == second and len(first) == stats.keyframes
