"""Small scripted players for Atari games, so an Atari stream plays itself.

Each reads the console's RAM (where the game keeps its objects) and picks one of the game's
minimal actions. They play well enough to score and badly enough to lose lives and points
now and then: a stream where nothing ever goes wrong has nothing to talk about. All their
randomness comes from one seeded generator.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from couchmate.sources.engine import missing_engine

try:
    from ale_py import Action
except ImportError as e:
    raise missing_engine("ale-py") from e


class Policy:
    """Plays any game: holds a random action from the game's minimal set for a while.

    `act` gets the RAM and the frame number within the game; it is called once per step
    (every `frame_skip` frames), so timing is done in frames, not in calls.
    """

    def __init__(self, actions: Sequence[Action], rng: random.Random):
        self.actions = list(actions)
        self.rng = rng
        self._held = self.actions[0]
        self._until = 0  # frame number when the held action is up
        self._epochs: dict[int, int] = {}

    def act(self, ram: np.ndarray, frame: int) -> Action:
        if frame >= self._until:
            self._held = self.rng.choice(self.actions)
            self._until = frame + self.rng.randint(4, 30)
        return self._held

    def _new_period(self, frame: int, period: int) -> bool:
        """True on the first step of each `period`-frame stretch."""
        epoch = frame // period
        if self._epochs.get(period) == epoch:
            return False
        self._epochs[period] = epoch
        return True


class PongPolicy(Policy):
    """Keeps the paddle at the ball's height. Every 1.5 s it picks an aim offset; now and
    then a sloppy one, so the computer scores too."""

    _BALL_Y, _PADDLE_Y = 54, 51  # RAM addresses
    _OFFSETS = (-3, 0, 0, 0, 2, 12)

    def __init__(self, actions: Sequence[Action], rng: random.Random):
        super().__init__(actions, rng)
        self._offset = 0

    def act(self, ram: np.ndarray, frame: int) -> Action:
        if self._new_period(frame, 90):
            self._offset = self.rng.choice(self._OFFSETS)
        ball, paddle = int(ram[self._BALL_Y]), int(ram[self._PADDLE_Y])
        if ball == 0:  # no ball in play
            return Action.NOOP
        target = ball + self._offset
        if paddle < target - 2:
            return Action.LEFT  # LEFT moves the right-hand paddle down
        if paddle > target + 2:
            return Action.RIGHT
        return Action.NOOP


class BreakoutPolicy(Policy):
    """Serves, then follows the ball with the paddle; sometimes misjudges on purpose."""

    _BALL_X, _BALL_Y, _PADDLE_X = 99, 101, 72
    _AIM = 8  # the paddle's RAM x is its left edge, about this far from where it hits best
    _SLIPS = (0, 0, 0, 4, -4, 30)

    def __init__(self, actions: Sequence[Action], rng: random.Random):
        super().__init__(actions, rng)
        self._slip = 0

    def act(self, ram: np.ndarray, frame: int) -> Action:
        if self._new_period(frame, 90):
            self._slip = self.rng.choice(self._SLIPS)
        ball_x, ball_y = int(ram[self._BALL_X]), int(ram[self._BALL_Y])
        paddle = int(ram[self._PADDLE_X])
        if ball_y == 0 or self._new_period(frame, 50):  # serve (harmless while in play)
            return Action.FIRE
        at = paddle + self._AIM + self._slip
        if at < ball_x - 3:
            return Action.RIGHT
        if at > ball_x + 3:
            return Action.LEFT
        return Action.NOOP


class MsPacmanPolicy(Policy):
    """Runs the maze: keeps a direction until it stops moving or tires of it, then turns."""

    _X, _Y = 10, 16
    _MOVES = (Action.UP, Action.RIGHT, Action.LEFT, Action.DOWN)

    def __init__(self, actions: Sequence[Action], rng: random.Random):
        super().__init__(actions, rng)
        self._held = Action.LEFT
        self._last_pos = (-1, -1)
        self._moved_at = 0

    def act(self, ram: np.ndarray, frame: int) -> Action:
        pos = (int(ram[self._X]), int(ram[self._Y]))
        if pos != self._last_pos:
            self._moved_at = frame
        self._last_pos = pos
        if frame - self._moved_at > 4 or frame >= self._until:
            choices = [m for m in self._MOVES if m != self._held]
            self._held = self.rng.choice(choices)
            self._until = frame + self.rng.randint(20, 90)
            self._moved_at = frame
        return self._held


class SpaceInvadersPolicy(Policy):
    """Sweeps left and right under the invaders, firing whenever it can."""

    def act(self, ram: np.ndarray, frame: int) -> Action:
        if frame >= self._until:
            self._held = self.rng.choice(
                (Action.RIGHTFIRE, Action.LEFTFIRE, Action.FIRE, Action.RIGHT, Action.LEFT)
            )
            self._until = frame + self.rng.randint(10, 45)
        return self._held


#: ROM id → its player; any other ROM gets the random Policy.
POLICIES: dict[str, type[Policy]] = {
    "pong": PongPolicy,
    "breakout": BreakoutPolicy,
    "ms_pacman": MsPacmanPolicy,
    "space_invaders": SpaceInvadersPolicy,
}
