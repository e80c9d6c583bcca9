"""AtariSource against the real Arcade Learning Environment: frames, truth, lifecycle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest

from couchmate.errors import UserError
from couchmate.sources.atari import GAME_OVER_HOLD_S, AtariSource
from couchmate.sources.base import open_source

TRUTH_KEYS = {
    "score",
    "score_hidden",
    "opponent_score",
    "lives",
    "game_over",
    "games",
    "frame",
    "reward",
    "hud",
}


async def _collect(source: AtariSource) -> list:
    return [f async for f in source.frames()]


def _run(spec: str, **options) -> list:
    return asyncio.run(_collect(open_source(spec, realtime=False, **options)))


@pytest.mark.parametrize(
    ("spec", "rom", "hud"),
    [
        ("atari:pong", "pong", "atari-pong"),
        ("atari:breakout", "breakout", "atari-breakout"),
        ("atari:mspacman", "ms_pacman", "atari-mspacman"),
        ("atari:space_invaders", "space_invaders", "atari-spaceinvaders"),
        ("atari:freeway", "freeway", "generic"),
    ],
)
def test_each_game_streams_native_frames_with_truth(spec, rom, hud):
    source = open_source(spec, realtime=False, max_frames=300)
    assert source.profile_hint == hud and source.has_truth
    frames = asyncio.run(_collect(source))
    assert len(frames) == 300
    for f in frames:
        assert f.image.shape == (210, 160, 3) and f.image.dtype == np.uint8
        assert f.source == f"atari:{rom}"
        assert f.timing.get("captured") == f.t
        assert f.truth.keys() >= TRUTH_KEYS
        assert f.truth["hud"] == hud
    assert all(b.t > a.t for a, b in zip(frames, frames[1:], strict=False))
    assert [f.truth["frame"] for f in frames[:3]] == [1, 2, 3]
    # The policy plays: the picture changes.
    assert len({f.image.tobytes() for f in frames}) > 20


def test_breakout_policy_scores_and_the_score_truth_changes_with_the_drawn_score():
    frames = _run("atari:breakout", max_frames=1500)
    scores = [f.truth["score"] for f in frames]
    assert scores[-1] >= 4
    assert scores == sorted(scores)  # Breakout points are never taken away
    # The screen lags the reward by a frame; the score truth follows the screen.
    assert scores[-1] == sum(f.truth["reward"] for f in frames[:-1])
    assert frames[0].truth["lives"] == 5
    digits = (slice(0, 20), slice(30, 90))  # the score at the top left
    for a, b in zip(frames, frames[1:], strict=False):
        drawn_changed = not np.array_equal(a.image[digits], b.image[digits])
        assert drawn_changed == (a.truth["score"] != b.truth["score"]), b.index


@pytest.mark.parametrize(
    ("game", "box"),
    [("breakout", (slice(2, 17), slice(94, 124))), ("mspacman", (slice(172, 184), slice(0, 80)))],
)
def test_the_lives_truth_changes_with_what_the_screen_draws(game, box):
    """Breakout draws a lost ball a frame late, Ms. Pac-Man's icons change at once, and
    Ms. Pac-Man's game-over picture (no icon) looks like the last life's."""
    frames = _run(f"atari:{game}", max_frames=3000, seed=1)
    changes = [
        b for a, b in zip(frames, frames[1:], strict=False) if a.truth["lives"] != b.truth["lives"]
    ]
    assert len(changes) >= 3
    for b in changes:
        a = frames[b.index - 1]
        assert not np.array_equal(a.image[box], b.image[box]), b.index
    if game == "mspacman":
        over = [f for f in frames if f.truth["game_over"]]
        assert over and all(f.truth["lives"] == 1 for f in over)


def test_pong_counts_both_sides():
    frames = _run("atari:pong", max_frames=2400, frame_skip=2)
    last = frames[-1].truth
    assert last["score"] >= 1 and last["opponent_score"] >= 1
    # Every point is counted once; only the very last frame's may not be drawn yet.
    points = sum(f.truth["reward"] for f in frames)
    assert abs(last["score"] - last["opponent_score"] - points) <= abs(last["reward"])
    assert last["lives"] == 0 and last["frame"] == 4800


def test_lives_run_out_the_end_picture_stays_and_a_new_game_starts():
    frames = _run("atari:space_invaders", max_frames=1000, frame_skip=4)
    lives = [f.truth["lives"] for f in frames]
    assert lives[0] == 3 and min(lives) < 3
    over = [f for f in frames if f.truth["game_over"]]
    assert over, "the policy should lose all lives within 4000 console frames"
    # Space Invaders' final picture (its lives digit "0" drawn on it only) stays a while.
    held = round(GAME_OVER_HOLD_S * 60 / 4)
    assert len(over) == 1 + held
    assert [f.index for f in over] == list(range(over[0].index, over[0].index + 1 + held))
    assert all(np.array_equal(f.image, over[0].image) for f in over)
    assert all(f.truth["lives"] == 0 and f.truth["reward"] == 0 for f in over)
    assert all(b.t > a.t for a, b in zip(over, over[1:], strict=False))
    after = frames[over[-1].index + 1].truth
    assert after["games"] == 2 and after["lives"] == 3 and after["score"] == 0
    assert after["frame"] <= 4


def test_space_invaders_score_truth_is_the_score_on_screen():
    """The mystery ship hides the score for seconds; points scored meanwhile show (and
    count in the truth) when it has gone."""
    frames = _run("atari:space_invaders", max_frames=3000, seed=0)
    hidden = [f for f in frames if f.truth["score_hidden"]]
    assert len(hidden) > 60
    for a, b in zip(frames, frames[1:], strict=False):
        if b.truth["score_hidden"]:
            assert b.truth["score"] == a.truth["score"], b.index
    # the points made while hidden appear at once when the score is drawn again
    back = [
        b
        for a, b in zip(frames, frames[1:], strict=False)
        if a.truth["score_hidden"] and not b.truth["score_hidden"]
    ]
    assert back
    assert sum(f.truth["reward"] for f in frames[: back[0].index]) == back[0].truth["score"]


def test_same_seed_same_game_other_seed_other_game():
    def run(seed: int) -> list[int]:
        return [f.truth["score"] for f in _run("atari:mspacman", max_frames=600, seed=seed)]

    a = run(1)
    assert a == run(1)
    assert a != run(2)


def test_unknown_game_lists_the_rom_ids():
    with pytest.raises(UserError) as err:
        open_source("atari:nosuchgame")
    assert "nosuchgame" in err.value.message
    assert "pong" in err.value.hint and "ms_pacman" in err.value.hint
    with pytest.raises(UserError):
        open_source("atari")


def test_realtime_runs_at_60hz_and_close_stops_it():
    async def main() -> tuple[list, float]:
        source = AtariSource("pong", realtime=True)
        got = []
        async for f in source.frames():
            got.append(f)
            if len(got) == 30:
                source.close()
                t0 = time.monotonic()
        return got, time.monotonic() - t0

    frames, stop_s = asyncio.run(main())
    assert len(frames) == 30 and stop_s < 0.5
    span = frames[-1].t - frames[0].t
    assert 29 / 60 * 0.8 < span < 29 / 60 * 3


def test_streaming_does_not_block_the_event_loop():
    async def main() -> tuple[int, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        n = len(await _collect(AtariSource("breakout", realtime=False, max_frames=500)))
        stop.set()
        await task
        return ticks, n

    ticks, n = asyncio.run(main())
    # Each frame is awaited from the worker thread, so the ticker runs between frames.
    assert n == 500 and ticks >= n


def test_without_ale_py_installed_the_error_says_what_to_install():
    code = (
        "import sys; sys.modules['ale_py'] = None\n"
        "from couchmate.errors import UserError\n"
        "from couchmate.sources.base import open_source\n"
        "try:\n"
        "    open_source('atari:pong')\n"
        "except UserError as e:\n"
        "    print(e.message, '|', e.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ale-py is not installed" in out.stdout and "couchmate[games]" in out.stdout
