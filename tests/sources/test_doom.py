"""DoomSource against the real ViZDoom engine: frames, truth, the bot, lifecycle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest

from couchmate.errors import UserError
from couchmate.sources.base import open_source
from couchmate.sources.doom import DoomSource
from couchmate.sources.doom_bot import BotView, DoomBot, Seen
from couchmate.sources.doom_scenarios import SCENARIOS

TRUTH_KEYS = {
    "health",
    "armor",
    "ammo",
    "ammo_table",
    "arms",
    "weapon",
    "frags",
    "kills",
    "items",
    "dead",
    "deaths",
    "pickups",
    "damage_taken",
    "messages",
    "hud",
    "episode",
    "map",
    "tic",
}


async def _collect(source: DoomSource) -> list:
    return [f async for f in source.frames()]


def test_arena_frames_carry_truth_and_the_bot_moves():
    source = open_source("doom", realtime=False, max_frames=120, seed=1)
    assert isinstance(source, DoomSource)
    assert source.profile_hint == "doom-deathmatch" and source.has_truth
    frames = asyncio.run(_collect(source))

    assert len(frames) == 120
    assert [f.index for f in frames] == list(range(120))
    for f in frames:
        assert f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8
        assert f.source == "doom:arena"
        assert f.timing.get("captured") == f.t
        assert f.truth.keys() >= TRUTH_KEYS
        assert f.truth["hud"] == "doom-deathmatch"
        assert isinstance(f.truth["frags"], int)
        assert 0 <= f.truth["health"] <= 200
    assert all(b.t > a.t for a, b in zip(frames, frames[1:], strict=False))
    # The bot plays: the view changes and the player walks.
    assert not np.array_equal(frames[0].image, frames[-1].image)
    start, end = frames[0].truth, frames[-1].truth
    assert abs(end["x"] - start["x"]) + abs(end["y"] - start["y"]) > 64
    assert end["tic"] - start["tic"] == 119


def test_same_seed_same_game():
    def run(seed: int) -> list[tuple]:
        source = DoomSource("arena", realtime=False, max_frames=60, seed=seed)
        return [
            (f.truth["x"], f.truth["y"], int(f.image.sum())) for f in asyncio.run(_collect(source))
        ]

    assert run(5) == run(5)


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(UserError) as err:
        open_source("doom:nosuchmap")
    assert "nosuchmap" in err.value.message
    assert "arena" in err.value.hint and "deathmatch" in err.value.hint


def test_bad_resolution_is_a_user_error():
    with pytest.raises(UserError) as err:
        DoomSource(resolution="123x45")
    assert "640x480" in err.value.hint


def test_frame_skip_and_resolution():
    source = DoomSource(
        "deathmatch", realtime=False, max_frames=5, frame_skip=4, resolution="320x240"
    )
    assert source.profile_hint == "doom" and source.fps == pytest.approx(35 / 4)
    frames = asyncio.run(_collect(source))
    assert frames[0].image.shape == (240, 320, 3)
    assert [f.truth["tic"] - frames[0].truth["tic"] for f in frames] == [0, 4, 8, 12, 16]
    assert all(f.truth["frags"] is None for f in frames)


def test_realtime_paces_at_35_tics_and_close_stops_promptly():
    async def main() -> tuple[list, float]:
        source = DoomSource("arena", realtime=True, frame_skip=2)
        got = []
        agen = source.frames()
        async for f in agen:
            got.append(f)
            if len(got) == 20:
                source.close()
                t0 = time.monotonic()
        return got, time.monotonic() - t0

    frames, stop_s = asyncio.run(main())
    assert len(frames) == 20  # nothing after close()
    assert stop_s < 1.0
    # 19 periods of 2 tics at 35 tics/s, on a loaded machine give or take.
    span = frames[-1].t - frames[0].t
    assert 19 * 2 / 35 * 0.8 < span < 19 * 2 / 35 * 3


def test_close_from_another_task_ends_the_stream():
    async def main() -> int:
        source = DoomSource("arena", realtime=True)
        n = 0

        async def consume() -> None:
            nonlocal n
            async for _ in source.frames():
                n += 1

        task = asyncio.create_task(consume())
        await asyncio.sleep(1.5)
        source.close()
        await asyncio.wait_for(task, timeout=2.0)
        return n

    assert asyncio.run(main()) > 5


def test_streaming_does_not_block_the_event_loop():
    async def main() -> tuple[int, float, int]:
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        n = 0
        async for _ in DoomSource("arena", realtime=False, max_frames=150).frames():
            n += 1
        stop.set()
        await task
        gaps = np.diff(ticks)
        return len(ticks), float(gaps.max()), n

    ticks, worst_gap, n = asyncio.run(main())
    assert n == 150
    # Engine start-up and 150 steps take over a second; a blocked loop would tick ~once.
    assert ticks > 50
    assert worst_gap < 0.3


@pytest.mark.slow
def test_every_scenario_starts_and_plays():
    for name, scenario in SCENARIOS.items():
        source = DoomSource(name, realtime=False, max_frames=40, frame_skip=2, resolution="320x240")
        frames = asyncio.run(_collect(source))
        assert len(frames) == 40, name
        assert all(f.truth["hud"] == scenario.hud for f in frames)
        assert len({int(f.image.sum()) for f in frames}) > 10, f"{name}: the view never moves"


@pytest.mark.slow
def test_a_minute_of_arena_has_fights_pickups_frags_and_deaths():
    """The default stream's first 60 s of game time (2100 tics, every one a frame): the bot
    gets hurt, picks things up, scores frags and dies, and the stream goes on."""
    health_box = (slice(410, 450), slice(100, 210))  # the HEALTH number at 640x480

    async def run() -> tuple[list[dict], list[np.ndarray]]:
        truths, boxes = [], []  # not whole frames: 2100 of them would take 2 GB
        async for f in DoomSource("arena", realtime=False, max_frames=2100, seed=0).frames():
            truths.append(f.truth)
            boxes.append(f.image[health_box].copy())
        return truths, boxes

    truths, boxes = asyncio.run(run())
    last = truths[-1]
    assert last["damage_taken"] > 30
    assert last["pickups"] >= 3
    assert last["deaths"] >= 1
    assert max(t["frags"] for t in truths) >= 1
    assert min(t["health"] for t in truths if not t["dead"]) < 50

    dead = [i for i, t in enumerate(truths) if t["dead"]]
    assert dead and all(truths[i]["health"] == 0 for i in dead)
    # The player lies dead for a while, then respawns and the stream goes on.
    assert 30 <= len(dead) / last["deaths"] <= 60
    assert any(not t["dead"] for t in truths[dead[0] :])
    assert any("Player" in m for t in truths for m in t["messages"])
    # Health truth changes in the very frame the HUD's HEALTH number is redrawn.
    changed = [i for i in range(1, len(truths)) if truths[i]["health"] != truths[i - 1]["health"]]
    assert len(changed) >= 4
    for i in changed:
        assert not np.array_equal(boxes[i], boxes[i - 1]), i


def _view(hits: float = 0.0, *seen: Seen) -> BotView:
    depth = np.full((240, 320), 80, np.uint8)  # open floor all around
    return BotView(
        x=0,
        y=0,
        angle=0,
        health=100,
        armor=0,
        weapon=2,
        ammo=50,
        armed=(2,),
        hits=hits,
        seen=list(seen),
        depth=depth,
    )


def test_bot_stops_shooting_what_never_takes_a_hit():
    """A corpse and a voodoo doll look like enemies in the labels; shots never hit them."""
    corpse = Seen(id=7, name="Zombieman", category="Monster", x=300, y=0, screen_x=160, area=400)
    bot = DoomBot(seed=0)
    fired = [bot.act(_view(0.0, corpse))[0] for _ in range(35 * 4)]
    assert fired[0] == 1.0
    assert fired[-1] == 0.0 and sum(fired) < 35 * 3.5
    # A live one keeps getting shot while the hits come in.
    live = Seen(id=8, name="Zombieman", category="Monster", x=300, y=0, screen_x=160, area=400)
    bot = DoomBot(seed=0)
    fired = [bot.act(_view(float(i // 10), live))[0] for i in range(35 * 4)]
    assert all(fired)


def test_bot_shoots_players_only_in_deathmatch():
    other = Seen(id=3, name="DoomPlayer", category="Player", x=300, y=0, screen_x=160, area=400)
    assert DoomBot(players_are_enemies=True).act(_view(0.0, other))[0] == 1.0
    assert DoomBot(players_are_enemies=False).act(_view(0.0, other))[0] == 0.0


def test_without_vizdoom_installed_the_error_says_what_to_install():
    code = (
        "import sys; sys.modules['vizdoom'] = None\n"
        "from couchmate.errors import UserError\n"
        "from couchmate.sources.base import open_source\n"
        "try:\n"
        "    open_source('doom')\n"
        "except UserError as e:\n"
        "    print(e.message, '|', e.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ViZDoom is not installed" in out.stdout and "couchmate[games]" in out.stdout
