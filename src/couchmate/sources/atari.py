"""`atari:GAME`: an Atari 2600 game in the Arcade Learning Environment, played by a script.

Frames are the console's native 210x160 RGB picture, emitted as they are. Each step runs
`frame_skip` console frames with one action (rewards summed) and keeps the last picture.
On game over the final frame is emitted with `game_over` true, then a new game starts: the
stream never ends by itself. Space Invaders draws its last lives digit ("0") on that final
picture only, so there the picture stays for GAME_OVER_HOLD_S (the emulator freezes on it;
a console shows it until the player restarts). The other games' final pictures show
nothing the frames before did not (Ms. Pac-Man's shows the icons of the last life).

Truth keys and how they relate to the screen:

- ``score``: the player's points this game as the frame shows them: Breakout top left,
  Ms. Pac-Man under the maze, Space Invaders top left (player 1, green), Pong top right
  (the green player's points, 0-21). Breakout, Pong and Space Invaders draw a point one
  console frame after scoring it (measured), so `score` leaves out the last frame's
  reward for them; the sum of all `reward`s runs one frame ahead of `score` there. Space
  Invaders hides the score while the mystery ship crosses the top (it takes the score's
  sprites; seconds at a time): points scored then show when the ship has gone, so `score`
  keeps the last value drawn while `score_hidden` is true.
- ``opponent_score``: Pong only: the computer's points (top left, orange), drawn with the
  same one-frame delay; None elsewhere.
- ``lives``: what the emulator reports, as the screen shows it. Breakout starts at 5 and
  prints the balls left as the middle digit at the top, one console frame after the
  emulator counts a lost ball (measured, like its score: `lives` follows the screen);
  Space Invaders starts at 3 and prints it as a digit at the bottom, only at the start and
  for a few seconds after each lost life (the same frame); Ms. Pac-Man starts at 3
  counting the one in play, and draws ``lives - 1`` spare Ms. Pac-Man icons bottom left
  (the same frame), so its game-over picture, with no icon, looks like the last life's:
  `lives` stays 1 there (the emulator says 0); Pong has no lives (always 0).
- ``game_over``: this frame ends the game (Space Invaders: its final picture, held); the
  frame after is a fresh game.
- ``score_hidden``: the game does not draw the score on this frame (Space Invaders).
- ``games``: the game's number in this stream (from 1). ``frame``: console frames into
  this game. ``reward``: points gained (Pong: gained minus lost) during this step.
- ``game`` (the ROM id) and ``hud`` (the profile the screen matches).
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from couchmate.errors import SourceError, UserError
from couchmate.sources.atari_policy import POLICIES, Policy
from couchmate.sources.engine import EngineSource, missing_engine

try:
    from ale_py import ALEInterface, LoggerMode, roms
except ImportError as e:
    raise missing_engine("ale-py") from e

ALEInterface.setLoggerMode(LoggerMode.Error)


@dataclass(frozen=True, slots=True)
class AtariGame:
    rom: str  # ale-py ROM id
    hud: str  # game profile name
    # Console frames between a point being scored and the score on screen changing: most
    # games draw the score from RAM at the top of a frame, before that frame's game logic.
    # Measured per game over 3000 frames; unknown games are taken as 0.
    score_lag: int = 0
    # Where the score is drawn (y0, y1, x0, x1 in the native frame) and its colour, for games
    # that hide it at times: no pixel of that colour there means it is not on screen.
    score_box: tuple[int, int, int, int] | None = None
    score_rgb: tuple[int, int, int] = (0, 0, 0)
    # seconds the final picture stays on screen at game over (0: a new game at once)
    end_hold_s: float = 0.0
    # console frames between the emulator counting a lost life and the screen showing it
    lives_lag: int = 0
    # the game-over picture shows lives 0 (False: it looks like the last life's)
    last_life_drawn: bool = True

    def score_shown(self, image: np.ndarray) -> bool:
        if self.score_box is None:
            return True
        y0, y1, x0, x1 = self.score_box
        box = image[y0:y1, x0:x1].astype(np.int16)
        return bool((np.abs(box - np.array(self.score_rgb, np.int16)).sum(axis=2) <= 60).any())


GAME_OVER_HOLD_S = 2.0
_MS_PACMAN = AtariGame("ms_pacman", "atari-mspacman", last_life_drawn=False)
_SPACE_INVADERS = AtariGame(
    "space_invaders",
    "atari-spaceinvaders",
    score_lag=1,
    score_box=(8, 21, 0, 67),  # player one, green, top left
    score_rgb=(50, 132, 50),
    end_hold_s=GAME_OVER_HOLD_S,
)

#: Games with their own profile (and player); the keys include the spellings users type.
KNOWN_GAMES: dict[str, AtariGame] = {
    "pong": AtariGame("pong", "atari-pong", score_lag=1),
    "breakout": AtariGame("breakout", "atari-breakout", score_lag=1, lives_lag=1),
    "ms_pacman": _MS_PACMAN,
    "mspacman": _MS_PACMAN,
    "space_invaders": _SPACE_INVADERS,
    "spaceinvaders": _SPACE_INVADERS,
}
GENERIC_HUD = "generic"


def resolve_game(name: str) -> AtariGame:
    key = name.strip().lower().replace("-", "_")
    if key in KNOWN_GAMES:
        return KNOWN_GAMES[key]
    rom_ids = roms.get_all_rom_ids()
    if key in rom_ids:
        return AtariGame(key, GENERIC_HUD)
    if not key:
        raise UserError(
            "atari needs a game, e.g. atari:pong",
            hint="games with a profile: pong, breakout, ms_pacman, space_invaders",
        )
    raise UserError(
        f"unknown Atari game {name!r}",
        hint="ROM ids shipped with ale-py: " + ", ".join(rom_ids),
    )


class AtariSource(EngineSource):
    kind = "atari"
    native_rate = 60.0

    def __init__(
        self,
        game: str = "",
        *,
        realtime: bool = True,
        seed: int = 0,
        max_frames: int | None = None,
        frame_skip: int = 1,
    ):
        self.game = resolve_game(game)
        super().__init__(
            f"atari:{self.game.rom}",
            realtime=realtime,
            seed=seed,
            max_frames=max_frames,
            frame_skip=frame_skip,
        )
        self.profile_hint = self.game.hud
        self._ale: ALEInterface | None = None
        self._rng = random.Random(seed)
        self._policy: Policy | None = None
        self._games = 0
        self._score = 0
        self._opponent = 0
        self._unshown: deque[int] = deque(maxlen=self.game.score_lag or None)
        self._lives_before: deque[int] = deque(maxlen=max(1, self.game.lives_lag))
        self._lives = 0  # lives as the last frame showed them
        self._over = False
        self._drawn = 0  # the score as last drawn (games that hide it at times)
        self._final: tuple[np.ndarray, dict[str, Any]] | None = None  # the game-over picture
        self._held = 0

    def _open(self) -> None:
        ale = ALEInterface()
        ale.setInt("random_seed", self.seed)
        ale.setFloat("repeat_action_probability", 0.0)  # deterministic given the seed
        ale.setInt("frame_skip", 1)
        try:
            ale.loadROM(roms.get_rom_path(self.game.rom))
        except Exception as e:  # ale-py raises RuntimeError and friends
            raise SourceError(
                f"the Atari emulator could not load {self.game.rom!r}: {e}",
                hint="check that the ale-py package (with its ROMs) is installed completely",
            ) from e
        self._ale = ale
        self._new_game(first=True)

    def _new_game(self, first: bool = False) -> None:
        assert self._ale is not None
        if not first:
            self._ale.reset_game()
        policy = POLICIES.get(self.game.rom, Policy)
        self._policy = policy(self._ale.getMinimalActionSet(), self._rng)
        self._games += 1
        self._score = 0
        self._opponent = 0
        self._unshown.clear()
        self._lives_before.clear()
        self._over = False
        self._drawn = 0
        self._final = None
        self._held = 0

    def _step(self) -> tuple[np.ndarray, float, dict[str, Any]]:
        ale, policy = self._ale, self._policy
        if ale is None or policy is None:
            raise SourceError("the Atari emulator is closed")
        if self._over:
            if self._final is not None and self._held < round(self.game.end_hold_s * self.fps):
                self._held += 1
                image, truth = self._final
                return image, time.monotonic(), {**truth, "reward": 0}
            self._new_game()
        reward = 0
        for _ in range(self.frame_skip):
            self._lives_before.append(ale.lives())
            r = ale.act(policy.act(ale.getRAM(), ale.getEpisodeFrameNumber()))
            reward += r
            self._add_points(r)
            if ale.game_over():
                break
        image = ale.getScreenRGB()
        t = time.monotonic()
        self._over = ale.game_over()
        shown, shown_opponent = self._score, self._opponent
        for r in self._unshown:  # the last `score_lag` frames' points are not drawn yet
            if self._pong:
                shown -= max(0, r)
                shown_opponent -= max(0, -r)
            else:
                shown -= r
        lives = ale.lives()
        if self.game.lives_lag and len(self._lives_before) == self.game.lives_lag:
            lives = self._lives_before[0]  # not drawn yet
        if self._over and not self.game.last_life_drawn:
            lives = self._lives
        self._lives = lives
        hidden = not self.game.score_shown(image)
        if hidden:
            shown = self._drawn
        self._drawn = shown
        truth: dict[str, Any] = {
            "score": shown,
            "score_hidden": hidden,
            "opponent_score": shown_opponent if self._pong else None,
            "lives": lives,
            "game_over": self._over,
            "games": self._games,
            "frame": ale.getEpisodeFrameNumber(),
            "reward": reward,
            "game": self.game.rom,
            "hud": self.game.hud,
        }
        if self._over:
            self._final = (image, truth)
        return image, t, truth

    @property
    def _pong(self) -> bool:
        return self.game.rom == "pong"

    def _add_points(self, r: int) -> None:
        if self._pong:
            # Pong's rewards are +1 for the player's point and -1 for the computer's.
            self._score += max(0, r)
            self._opponent += max(0, -r)
        else:
            self._score += r
        if self.game.score_lag:
            self._unshown.append(r)

    def _close_engine(self) -> None:
        # ALEInterface has no close(); dropping the last reference frees the emulator.
        self._ale = None
        self._policy = None
