"""Real engine frames with ground truth, for tests, template building and measurements.

Synchronous and deterministic (seeded), unlike the paced sources in couchmate.sources:
a test wants "300 frames of Doom" quickly, not a live stream. Truth is taken the way the
HUD shows it. ZDoom draws the status bar from the previous tic's values, so each Doom
frame's truth is read one tic before the frame is rendered; the small ammo table, though,
shows the current tic.

Doom truth keys: health (clamped at 0, as the HUD shows), armor, ammo (None when the AMMO
box is blank: fist/chainsaw), bullets, shells, rockets, cells, frags, weapon, dead,
switching (a weapon change is under way: the AMMO box may show either weapon).
Atari truth keys: score (the player's points), lives; Pong: player_score, opponent_score.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from couchmate.bench.stats import match_in_time, prf
from couchmate.types import Event, FieldReading, Frame, GameState
from couchmate.watch.events import EventEngine
from couchmate.watch.profile import load_profile

DOOM_GIFTS = [
    "armorbonus",
    "greenarmor",
    "bluearmor",
    "healthbonus",
    "medikit",
    "stimpack",
    "clip",
    "shells",
    "rocketbox",
    "cell",
    "backpack",
    "shotgun",
    "chaingun",
    "rocketlauncher",
    "plasmarifle",
    "supershotgun",
]
# No forced respawn: the dead player lies on screen (HUD at 0%) until respawn_player().
_DEATHMATCH_ARGS = (
    "-host 1 -deathmatch +timelimit 10.0 +sv_noautoaim 1 +sv_respawnprotect 1 "
    "+sv_spawnfarthest 1 +sv_nocrouch 1 +viz_respawn_delay 0"
)


def doom_frames(
    n: int,
    *,
    hud: str = "doom",
    resolution: str = "640X480",
    seed: int = 0,
    tics: int = 2,
    gifts: float = 0.01,
    suicide: float = 0.0,
    dead_tics: int = 20,
    t0: float = 0.0,
) -> Iterator[Frame]:
    """`n` frames of a random player, one every `tics` tics (35 tics = 1 s).

    hud="doom": the single-player status bar (deathmatch.cfg's monster maze as a one-player
    netgame, so the player can die and respawn); `gifts` is the chance per tic of a console
    "give" (armor, health, ammo, weapons: the counters must move). hud="doom-deathmatch":
    cig.wad's arena against bots, FRAGS on the HUD; `suicide` is the chance per tic of the
    console "kill" (a death and a frag lost). The dead player lies `dead_tics` before
    respawning.
    """
    import vizdoom as vzd

    gv = vzd.GameVariable
    variables = [
        gv.HEALTH,
        gv.ARMOR,
        gv.SELECTED_WEAPON_AMMO,
        gv.SELECTED_WEAPON,
        gv.FRAGCOUNT,
        gv.AMMO2,
        gv.AMMO3,
        gv.AMMO5,
        gv.AMMO6,
        gv.DEAD,
    ]
    scenarios = os.path.join(os.path.dirname(vzd.__file__), "scenarios")
    g = vzd.DoomGame()
    if hud == "doom-deathmatch":
        g.load_config(os.path.join(scenarios, "cig.cfg"))
        g.set_doom_map("map01")
        g.add_game_args(_DEATHMATCH_ARGS)
    else:
        g.load_config(os.path.join(scenarios, "deathmatch.cfg"))
        g.add_game_args("-host 1 +viz_respawn_delay 0")
    g.set_mode(vzd.Mode.PLAYER)
    g.set_episode_timeout(0)
    g.set_seed(seed)
    g.set_screen_resolution(getattr(vzd.ScreenResolution, "RES_" + resolution))
    g.set_screen_format(vzd.ScreenFormat.RGB24)
    g.set_render_hud(True)
    g.set_window_visible(False)
    g.set_available_game_variables(variables)
    g.init()
    try:
        if hud == "doom-deathmatch":
            for _ in range(3):
                g.send_game_command("addbot")
        rng = np.random.default_rng(seed)
        nb = g.get_available_buttons_size()
        action = [0] * nb
        recent_weapons: list[int] = []
        dead_for = 0
        for i in range(n):
            for _ in range(tics - 1):
                _doom_tic(g, rng, action, hud, gifts, suicide)
            if g.is_player_dead():
                dead_for += tics
                if dead_for >= dead_tics:
                    g.respawn_player()
                    dead_for = 0
            else:
                dead_for = 0
                if rng.random() < 0.1:
                    action = [0] * nb
                    action[rng.integers(nb)] = 1
                    action[0] = int(rng.random() < 0.5)
            before = [g.get_game_variable(v) for v in variables]  # what the HUD will show
            g.make_action([0] * nb if g.is_player_dead() else action, 1)
            if g.is_episode_finished():
                g.new_episode()
            state = g.get_state()
            if state is None:
                continue
            recent_weapons = [*recent_weapons[-6:], int(before[3])]
            truth = _doom_truth(before, hud, len(set(recent_weapons)) > 1)
            # ...but the small ammo table is drawn from this tic's values
            now = _doom_truth([g.get_game_variable(v) for v in variables], hud, False)
            truth.update({k: now[k] for k in ("bullets", "shells", "rockets", "cells")})
            yield Frame(
                image=state.screen_buffer,
                t=t0 + i * tics / 35.0,
                source=f"doom:{hud}",
                index=i,
                truth=truth,
            )
    finally:
        g.close()


def _doom_tic(
    g: Any, rng: np.random.Generator, action: list[int], hud: str, gifts: float, suicide: float
) -> None:
    if g.is_player_dead():
        # a button held while dead respawns at once: lie still until respawn_player()
        g.make_action([0] * len(action), 1)
        return
    if gifts and rng.random() < gifts:
        g.send_game_command("give " + DOOM_GIFTS[rng.integers(len(DOOM_GIFTS))])
    if suicide and rng.random() < suicide:
        g.send_game_command("kill")
    g.make_action(action, 1)
    if g.is_episode_finished():
        g.new_episode()


def _doom_truth(v: list[float], hud: str, switching: bool) -> dict[str, Any]:
    health, armor, ammo, weapon, frags, bullets, shells, rockets, cells, dead = (int(x) for x in v)
    return {
        "health": max(0, health),
        "armor": armor,
        "ammo": None if weapon in (0, 1) or ammo < 0 else ammo,
        "weapon": weapon,
        "frags": frags if hud == "doom-deathmatch" else None,
        "bullets": bullets,
        "shells": shells,
        "rockets": rockets,
        "cells": cells,
        "dead": bool(dead) or health <= 0,
        "switching": switching,
    }


ATARI_GAMES = ("pong", "breakout", "ms_pacman", "space_invaders")
ATARI_PROFILES = {
    "pong": "atari-pong",
    "breakout": "atari-breakout",
    "ms_pacman": "atari-mspacman",
    "space_invaders": "atari-spaceinvaders",
}


def atari_frames(
    game: str, n: int, *, seed: int = 0, every: int = 2, t0: float = 0.0
) -> Iterator[Frame]:
    """`n` frames of a random (Breakout: ball-chasing) player, one every `every` emulator
    frames (60 per second). Game over restarts the game (after holding the final picture
    where couchmate.sources.atari does: Space Invaders). Truth as that source takes it: a
    score the game hides (Space Invaders' mystery ship) keeps its last drawn value."""
    from ale_py import Action, ALEInterface, LoggerMode, roms

    from couchmate.sources.atari import resolve_game

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(game))
    acts = ale.getMinimalActionSet()
    rng = np.random.default_rng(seed)
    score = opp = 0
    shown = (0, 0, ale.lives())
    drawn = 0
    spec = resolve_game(game)
    hold = held = round(spec.end_hold_s * 60 / every)
    a = acts[0]
    for i in range(n):
        if ale.game_over() and held < hold:
            held += 1  # the final picture, as the source holds it
        for _ in range(every if held >= hold else 0):
            if ale.game_over():
                ale.reset_game()
                score = opp = 0
            if game == "breakout" and rng.random() < 0.9:
                ram = ale.getRAM()
                bx, px = int(ram[99]), int(ram[72])
                a = (
                    Action.FIRE
                    if bx == 0
                    else Action.RIGHT
                    if bx > px + 10
                    else Action.LEFT
                    if bx < px + 6
                    else Action.NOOP
                )
            elif rng.random() < 0.1:
                a = acts[rng.integers(len(acts))]
            # the screen is drawn before this frame's reward is counted: the HUD shows
            # the counters as they were before the last emulator frame
            shown = (score, opp, ale.lives())
            r = ale.act(a)
            score += max(0, int(r))
            opp += max(0, -int(r))
            if ale.game_over() and hold:  # a held end picture: lives 0 drawn on it
                held = 0
                shown = (shown[0], shown[1], ale.lives())
                break
        image = ale.getScreenRGB()
        if not spec.score_shown(image):
            shown = (drawn, *shown[1:])
        drawn = shown[0]
        yield Frame(
            image=image,
            t=t0 + i * every / 60.0,
            source=f"atari:{game}",
            index=i,
            truth=_atari_truth(game, *shown),
        )


def _atari_truth(game: str, score: int, opp: int, lives: int) -> dict[str, Any]:
    if game == "pong":  # the profile's field names
        return {"player_score": score, "opponent_score": opp, "lives": lives}
    return {"score": score, "lives": lives}


def fresh(frame: Frame, image: np.ndarray | None = None) -> Frame:
    """The same frame (or `image` in its place) with timing of its own: the reader marks a
    frame's timing, and tests read one generated frame list many times."""
    return Frame(
        image=frame.image if image is None else image,
        t=frame.t,
        source=frame.source,
        index=frame.index,
        truth=frame.truth,
    )


def truth_events(profile: str, frames: Iterable[Frame]) -> list[Event]:
    """The profile's rules over the engine's own values: what a perfect reader would report."""
    prof = load_profile(profile)
    engine = EventEngine(prof)
    out: list[Event] = []
    for f in frames:
        truth = f.truth or {}
        fields = {k: FieldReading(truth[k], 1.0, f.t) for k in prof.fields if k in truth}
        out += engine.update(GameState(game=prof.name, t=f.t, fields=fields))
    return out


def event_scores(ours: list[Event], truth: list[Event], tolerance_s: float) -> dict[str, float]:
    """Precision, recall and F1 of `ours` against `truth`, matched one to one as the
    perception bench matches them (same kind, within `tolerance_s`, nearest first)."""
    pairs = match_in_time(
        [(e.kind, e.t) for e in ours], [(e.kind, e.t) for e in truth], tolerance_s
    )
    return prf(len(pairs), len(ours), len(truth))
