"""`doom[:SCENARIO]`: ViZDoom rendering a game a scripted bot plays, with ground truth.

The engine runs on the source's single worker thread, headless, HUD and messages on. Each
step advances `frame_skip` tics, renders one frame and reads the engine's variables into
`Frame.truth`. Deaths show on screen (the player lies dead with the HUD at 0% for a moment,
then respawns); an episode that ends restarts at once: the stream never ends by itself.

Truth keys and how they relate to the HUD (status bar, 640x480 by default). All were
checked against saved frames. Timing: health and armor changes show on the HUD in the same
frame as in truth; a change made by firing (ammo going down) or a frag often shows one
tic later (measured over a minute of arena: 9 of 12 ammo drops, 3 of 4 frags; the status
bar seems to take its numbers before the weapon code runs in a tic). Compare those
fields with the previous frame's truth as well.

- ``health``: HEALTH clamped at 0. The engine's value goes negative on a killing blow
  (e.g. -23); the HUD's HEALTH box shows 0%. Medikits stop at 100%, bonuses and
  soulspheres go up to 200%.
- ``armor``: ARMOR, exactly the ARMOR box (percent).
- ``ammo``: the big AMMO box: ammo of the selected weapon's type. None when that box is
  blank (fist, chainsaw: weapons that use no ammo).
- ``ammo_table``: the small table right of the face: {"bullets", "shells", "rockets",
  "cells"} current amounts (the table also shows the maximum, 200/50/50/300, doubled by a
  backpack; not in truth).
- ``arms``: weapon slots 2..7 the player owns; on the single-player HUD these digits of the
  ARMS panel are lit (yellow). In deathmatch the panel shows FRAGS instead.
- ``frags``: FRAGCOUNT, exactly the FRAGS box on the deathmatch HUD (suicides subtract, so
  it can go negative: the box then shows e.g. "-1"); None where the HUD has no FRAGS box.
- ``kills``: KILLCOUNT (monsters killed this episode). Not on the status bar.
- ``items``: ITEMCOUNT (items that count for the level's item tally). Not on the status bar.
- ``weapon``: SELECTED_WEAPON, the slot number (1 fist/chainsaw .. 7 BFG; -1 when the
  player holds nothing, as in health_gathering: the AMMO box is blank then too).
- ``dead``: the player is dead: the view drops to the floor and turns red, the netgame
  scoreboard covers the middle, HEALTH shows 0%. After 50 tics the player respawns
  (or, in scenarios that hand out weapons only at the start, a new episode begins).
- ``deaths``, ``pickups``, ``damage_taken`` (health points lost): counted by this source
  over the whole stream (across respawns and episodes). A pickup is a step where health,
  armor, any ammo or a new weapon went up while alive. Not on the HUD.
- ``messages``: the lines the engine printed during this step (pickups, obituaries); they
  appear at the top left of the frame and stay for a few seconds.
- ``hud``: the profile the status bar matches, ``episode`` (counted from 1), ``map``,
  ``tic`` (tics into the episode), ``x``, ``y``, ``angle`` (map position, degrees).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from couchmate.errors import SourceError, UserError
from couchmate.sources.doom_bot import BUTTONS, DoomBot, view_from_state
from couchmate.sources.doom_scenarios import DEFAULT_SCENARIO, SCENARIOS, DoomScenario
from couchmate.sources.engine import EngineSource, missing_engine

try:
    import vizdoom as vzd
except ImportError as e:
    raise missing_engine("ViZDoom") from e

TICRATE = 35
_RESPAWN_AFTER_TICS = 50  # how long the player lies dead on screen before respawning
_GV = vzd.GameVariable
_AMMO_TABLE = {"bullets": _GV.AMMO2, "shells": _GV.AMMO3, "rockets": _GV.AMMO5, "cells": _GV.AMMO6}
_WEAPON_SLOTS = {n: getattr(_GV, f"WEAPON{n}") for n in range(2, 8)}
_NO_AMMO_SLOTS = frozenset({-1, 0, 1})  # nothing, fist, chainsaw: the AMMO box is blank


def _resolution(text: str) -> vzd.ScreenResolution:
    name = "RES_" + text.strip().upper().replace("×", "X")
    res = getattr(vzd.ScreenResolution, name, None)
    if res is None:
        known = sorted(
            (n[4:].lower() for n in dir(vzd.ScreenResolution) if n.startswith("RES_")),
            key=lambda s: tuple(int(p) for p in s.split("x")),
        )
        raise UserError(
            f"ViZDoom cannot render at {text!r}", hint=f"resolutions: {', '.join(known)}"
        )
    return res


class DoomSource(EngineSource):
    kind = "doom"
    native_rate = float(TICRATE)

    def __init__(
        self,
        scenario: str = "",
        *,
        realtime: bool = True,
        seed: int = 0,
        max_frames: int | None = None,
        frame_skip: int = 1,
        resolution: str = "640x480",
    ):
        name = scenario.strip().lower() or DEFAULT_SCENARIO
        if name not in SCENARIOS:
            raise UserError(
                f"unknown Doom scenario {scenario!r}",
                hint="known scenarios: " + ", ".join(SCENARIOS),
            )
        super().__init__(
            f"doom:{name}",
            realtime=realtime,
            seed=seed,
            max_frames=max_frames,
            frame_skip=frame_skip,
        )
        self.scenario: DoomScenario = SCENARIOS[name]
        self.profile_hint = self.scenario.hud
        self._resolution = _resolution(resolution)
        self._game: vzd.DoomGame | None = None
        self._bot = DoomBot(
            seed=seed,
            can_move=self.scenario.can_move,
            tics_per_step=frame_skip,
            players_are_enemies=self.scenario.deathmatch,
        )
        self._action: list[float] | None = None
        self._episode = 0
        self._dead_tics = 0
        self._deaths = 0
        self._pickups = 0
        self._damage_taken = 0.0
        self._last: dict[str, Any] | None = None  # previous step's truth, for the counters

    # -- the engine (worker thread only) ----------------------------------------------------

    def _open(self) -> None:
        sc = self.scenario
        game = vzd.DoomGame()
        try:
            game.load_config(str(Path(vzd.scenarios_path) / sc.config))
            # ZDoom writes its ini at exit; by default into the current directory.
            ini = Path(tempfile.gettempdir()) / "couchmate-vizdoom" / "_vizdoom.ini"
            ini.parent.mkdir(parents=True, exist_ok=True)
            game.set_doom_config_path(str(ini))
            if sc.doom_map:
                game.set_doom_map(sc.doom_map)
            if sc.skill is not None:
                game.set_doom_skill(sc.skill)
            if sc.episode_tics is not None:
                game.set_episode_timeout(sc.episode_tics)
            game.set_mode(vzd.Mode.PLAYER)
            game.set_window_visible(False)
            game.set_sound_enabled(False)
            game.set_screen_resolution(self._resolution)
            game.set_screen_format(vzd.ScreenFormat.RGB24)
            game.set_render_hud(True)
            game.set_render_minimal_hud(False)
            game.set_render_messages(True)
            game.set_render_weapon(True)
            game.set_render_crosshair(False)
            game.set_render_screen_flashes(True)
            game.set_depth_buffer_enabled(True)
            game.set_labels_buffer_enabled(True)
            game.set_objects_info_enabled(True)
            game.set_notifications_buffer_enabled(True)
            game.set_notifications_buffer_size(self.frame_skip)
            game.set_available_buttons(list(BUTTONS))
            game.set_available_game_variables([])
            game.add_game_args(sc.game_args)
            game.add_game_args("+name Player +colorset 0")
            game.set_seed(self.seed)
            game.init()
        except Exception as e:  # vizdoom raises its own exception types, all Exception
            game.close()
            raise SourceError(
                f"ViZDoom could not start scenario {sc.name!r}: {e}",
                hint="check that the vizdoom package is installed completely",
            ) from e
        self._game = game
        self._start_episode(first=True)

    def _start_episode(self, first: bool = False) -> None:
        game = self._game
        assert game is not None
        if not first:
            game.new_episode()
        if self.scenario.bots:
            game.send_game_command("removebots")
            for bot in self.scenario.bots:
                game.send_game_command(f"addbot {bot}")
        self._episode += 1
        self._dead_tics = 0
        self._last = None
        self._action = None
        self._bot.reset()

    def _step(self) -> tuple[np.ndarray, float, dict[str, Any]]:
        game = self._game
        if game is None:
            raise SourceError("the Doom engine is closed")
        try:
            return self._advance(game)
        except vzd.ViZDoomUnexpectedExitException as e:
            raise SourceError(f"the Doom engine exited: {e}", retryable=True) from e

    def _advance(self, game: vzd.DoomGame) -> tuple[np.ndarray, float, dict[str, Any]]:
        if self._action is not None:
            game.make_action(self._action, self.frame_skip)
        if game.is_episode_finished():
            self._start_episode()
        elif game.is_player_dead() and self._dead_tics >= _RESPAWN_AFTER_TICS:
            if self.scenario.new_episode_on_death:
                self._start_episode()
            else:
                game.respawn_player()
                self._dead_tics = 0
                self._last = None
                self._bot.reset()
        state = game.get_state()
        if state is None:  # finished on this very tic
            self._start_episode()
            state = game.get_state()
        t = time.monotonic()
        dead = game.is_player_dead()
        if dead:
            self._dead_tics += self.frame_skip
            self._action = [0.0] * len(BUTTONS)
        else:
            self._action = self._bot.act(view_from_state(state, game))
        truth = self._truth(game, state, dead)
        return state.screen_buffer, t, truth

    def _truth(self, game: vzd.DoomGame, state: vzd.GameState, dead: bool) -> dict[str, Any]:
        v = game.get_game_variable
        weapon = int(v(_GV.SELECTED_WEAPON))
        ammo_raw = v(_GV.SELECTED_WEAPON_AMMO)
        deathmatch = self.scenario.hud == "doom-deathmatch"
        truth: dict[str, Any] = {
            "health": max(0, int(v(_GV.HEALTH))),
            "armor": int(v(_GV.ARMOR)),
            "ammo": None if weapon in _NO_AMMO_SLOTS or ammo_raw < 0 else int(ammo_raw),
            "ammo_table": {k: int(v(gv)) for k, gv in _AMMO_TABLE.items()},
            "arms": [n for n, gv in _WEAPON_SLOTS.items() if v(gv) > 0],
            "weapon": weapon,
            "frags": int(v(_GV.FRAGCOUNT)) if deathmatch else None,
            "kills": int(v(_GV.KILLCOUNT)),
            "items": int(v(_GV.ITEMCOUNT)),
            "dead": dead,
            "hud": self.scenario.hud,
            "scenario": self.scenario.name,
            "map": game.get_doom_map(),
            "episode": self._episode,
            "tic": game.get_episode_time(),
            "x": round(v(_GV.POSITION_X), 1),
            "y": round(v(_GV.POSITION_Y), 1),
            "angle": round(v(_GV.ANGLE), 1),
            "messages": [m for m in (state.notifications_buffer or "").splitlines() if m],
        }
        self._count(truth)
        truth["deaths"] = self._deaths
        truth["pickups"] = self._pickups
        truth["damage_taken"] = self._damage_taken
        return truth

    def _count(self, truth: dict[str, Any]) -> None:
        last, self._last = self._last, truth
        if last is None or last["dead"]:  # a new life or episode: nothing to compare with
            return
        self._damage_taken += max(0, last["health"] - truth["health"])
        if truth["dead"]:
            self._deaths += 1
            return
        table, last_table = truth["ammo_table"], last["ammo_table"]
        if (
            truth["health"] > last["health"]
            or truth["armor"] > last["armor"]
            or any(table[k] > last_table[k] for k in table)
            or len(truth["arms"]) > len(last["arms"])
        ):
            self._pickups += 1

    def _close_engine(self) -> None:
        game, self._game = self._game, None
        if game is not None:
            game.close()
