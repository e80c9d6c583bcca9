"""A scripted Doom player, so a Doom stream plays itself and things keep happening.

It sees what a cheating human would: the labels buffer (which actors are on screen, where
they stand on the map) and the depth buffer (how far the wall ahead is). Each step it fights
the nearest visible enemy, else walks to the most useful visible item, else explores,
turning away from walls and backing out when it is stuck. All its randomness comes from one
seeded generator, so a run is as repeatable as the engine allows.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from couchmate.sources.engine import missing_engine

try:
    import vizdoom as vzd
except ImportError as e:
    raise missing_engine("ViZDoom") from e

#: The buttons the bot presses, in the order of its action vectors.
BUTTONS = (
    vzd.Button.ATTACK,
    vzd.Button.USE,
    vzd.Button.MOVE_FORWARD,
    vzd.Button.MOVE_BACKWARD,
    vzd.Button.MOVE_LEFT,
    vzd.Button.MOVE_RIGHT,
    vzd.Button.TURN_LEFT_RIGHT_DELTA,
    *(getattr(vzd.Button, f"SELECT_WEAPON{n}") for n in range(1, 8)),
)
_ATTACK, _USE, _FORWARD, _BACK, _LEFT, _RIGHT, _TURN = range(7)
_SELECT = {n: 6 + n for n in range(1, 8)}  # weapon slot -> its button's index
# Best first. The rocket launcher comes late: up close it kills the shooter.
_WEAPON_PREFERENCE = (6, 4, 3, 2, 5, 7)

_FOES = frozenset({"Monster", "Player"})
_ITEM = frozenset({"Health", "Armor", "Ammo", "Weapon", "Powerup"})
# Corpses and gibs keep their labels; these actor names are never worth shooting.
_NOT_ENEMY_PREFIX = ("Dead",)
_ROCKET_SLOT = 5
_SPLASH_DISTANCE = 160.0  # closer than this a rocket hurts the shooter too
_ROCKET_CLEAR_DEPTH = 26  # depth units (about 190 map units) free ahead before firing one
_ROCKET_SIDE_DEPTH = 12  # ... and no wall closer than this (about 90 units) beside the aim
_ROCKET_TOUCH_DEPTH = 4  # ... and none this close (about 30 units) anywhere in view
_WALL_DEPTH = 14  # depth-buffer units; about 100 map units ahead
_STUCK_STEPS = 24
_GIVE_UP_TICS = 35 * 4  # chasing one item longer than this: it is out of reach
_FUTILE_TICS = 35 * 3  # firing at one target this long without a hit: it is not alive


@dataclass(slots=True)
class Seen:
    """One actor on screen."""

    id: int
    name: str
    category: str
    x: float
    y: float
    screen_x: float
    area: int


@dataclass(slots=True)
class BotView:
    """What the bot knows this step."""

    x: float
    y: float
    angle: float  # degrees, Doom convention: 0 = east, counter-clockwise
    health: float
    armor: float
    weapon: int
    ammo: float
    armed: tuple[int, ...] = ()  # weapon slots owned that have ammo
    hits: float = 0.0  # HITCOUNT: times the player's attacks have hurt something
    seen: list[Seen] = field(default_factory=list)
    # every monster and other player on the map, seen or not: (id, category, x, y)
    actors: list[tuple[int, str, float, float]] = field(default_factory=list)
    depth: np.ndarray | None = None


def view_from_state(state: vzd.GameState, game: vzd.DoomGame) -> BotView:
    v = game.get_game_variable
    gv = vzd.GameVariable
    seen = [
        Seen(
            id=lb.object_id,
            name=lb.object_name,
            category=lb.object_category,
            x=lb.object_position_x,
            y=lb.object_position_y,
            screen_x=lb.x + lb.width / 2.0,
            area=lb.width * lb.height,
        )
        for lb in (state.labels or ())
        if lb.object_category not in ("Self", "SFX")
    ]
    return BotView(
        x=v(gv.POSITION_X),
        y=v(gv.POSITION_Y),
        angle=v(gv.ANGLE),
        health=v(gv.HEALTH),
        armor=v(gv.ARMOR),
        weapon=int(v(gv.SELECTED_WEAPON)),
        ammo=v(gv.SELECTED_WEAPON_AMMO),
        armed=tuple(
            n
            for n in range(2, 8)
            if v(getattr(gv, f"WEAPON{n}")) > 0 and v(getattr(gv, f"AMMO{n}")) > 0
        ),
        hits=v(gv.HITCOUNT),
        seen=seen,
        actors=[
            (o.id, o.category, o.position_x, o.position_y)
            for o in (state.objects or ())
            if o.category in _FOES and not o.name.startswith(_NOT_ENEMY_PREFIX)
        ],
        depth=state.depth_buffer,
    )


def _wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


class DoomBot:
    """Turns a BotView into an action vector over BUTTONS, one call per step."""

    def __init__(
        self,
        *,
        seed: int = 0,
        can_move: bool = True,
        tics_per_step: int = 1,
        players_are_enemies: bool = True,
    ):
        self.rng = random.Random(seed)
        self.enemies = _FOES if players_are_enemies else frozenset({"Monster"})
        self.can_move = can_move
        self.tics = max(1, tics_per_step)
        self._trail: deque[tuple[float, float]] = deque(maxlen=_STUCK_STEPS)
        self._escape = 0  # steps left of backing out and turning
        self._escape_turn = 0.0
        self._strafe = _LEFT
        self._strafe_left = 0
        self._wander_turn = 0.0
        self._ignored: set[tuple[int, int]] = set()
        self._chased: dict[tuple[int, int], int] = {}  # item position -> tics spent on it
        self._futile: dict[int, int] = {}  # target id -> tics of firing at it without a hit
        self._not_targets: set[int] = set()
        self._hits = 0.0
        self._fired_at: int | None = None

    def reset(self) -> None:
        """After a respawn or a new episode: forget where we were and what we chased."""
        self._trail.clear()
        self._escape = 0
        self._ignored.clear()
        self._chased.clear()
        self._futile.clear()
        self._not_targets.clear()
        self._fired_at = None

    def act(self, view: BotView) -> list[float]:
        action = [0.0] * len(BUTTONS)
        self._trail.append((view.x, view.y))
        self._score_last_shot(view)
        enemy = self._pick_enemy(view)
        self._fired_at = None
        if enemy is not None:
            self._fight(view, enemy, action)
            if action[_ATTACK]:
                self._fired_at = enemy.id
        elif self._escape > 0 or self._stuck():
            self._back_out(action)
        else:
            item = self._pick_item(view)
            if item is not None:
                self._walk_to(view, item, action)
            else:
                self._explore(view, action)
        if not self.can_move:
            for b in (_FORWARD, _BACK, _LEFT, _RIGHT):
                action[b] = 0.0
        self._choose_weapon(view, action)
        return action

    def _choose_weapon(self, view: BotView, action: list[float]) -> None:
        best = next((n for n in _WEAPON_PREFERENCE if n in view.armed), None)
        if best is not None and best != view.weapon and self.rng.random() < 0.2:
            action[_SELECT[best]] = 1.0

    def _score_last_shot(self, view: BotView) -> None:
        """Labels do not tell a corpse (or a voodoo doll) from a live enemy, but shooting
        one never registers a hit: a target that soaks up fire with no hit is dropped."""
        hit = view.hits > self._hits
        self._hits = view.hits
        target = self._fired_at
        if target is None:
            return
        if hit:
            self._futile.pop(target, None)
            return
        self._futile[target] = self._futile.get(target, 0) + self.tics
        if self._futile[target] > _FUTILE_TICS:
            self._not_targets.add(target)

    # -- choosing ---------------------------------------------------------------------------

    def _pick_enemy(self, view: BotView) -> Seen | None:
        enemies = [
            s
            for s in view.seen
            if s.category in self.enemies
            and not s.name.startswith(_NOT_ENEMY_PREFIX)
            and s.id not in self._not_targets
        ]
        if not enemies:
            return None
        return min(enemies, key=lambda s: math.hypot(s.x - view.x, s.y - view.y))

    def _pick_item(self, view: BotView) -> Seen | None:
        items = [
            s
            for s in view.seen
            if s.category in _ITEM
            and (round(s.x), round(s.y)) not in self._ignored
            and not _useless(s, view)
        ]
        if not items:
            return None

        def cost(s: Seen) -> float:
            d = math.hypot(s.x - view.x, s.y - view.y)
            if s.category == "Health" and view.health < 60:
                d *= 0.3  # hurt: health first
            return d

        item = min(items, key=cost)
        key = (round(item.x), round(item.y))
        # Time spent on an item adds up over every try, so flipping between two items out
        # of reach (behind glass, on a ledge) ends with both given up.
        self._chased[key] = self._chased.get(key, 0) + self.tics
        if self._chased[key] > _GIVE_UP_TICS:
            self._ignored.add(key)
            return None
        return item

    # -- moving -----------------------------------------------------------------------------

    def _bearing(self, view: BotView, s: Seen) -> float:
        """Degrees to turn right (positive) to face `s`."""
        want = math.degrees(math.atan2(s.y - view.y, s.x - view.x))
        return -_wrap(want - view.angle)

    def _turn(self, action: list[float], degrees: float, max_per_tic: float = 12.0) -> None:
        # The engine applies a turn delta on every tic of a step.
        per_tic = max(-max_per_tic, min(max_per_tic, degrees / self.tics))
        action[_TURN] = per_tic

    def _fight(self, view: BotView, enemy: Seen, action: list[float]) -> None:
        turn = self._bearing(view, enemy)
        dist = math.hypot(enemy.x - view.x, enemy.y - view.y)
        self._turn(action, turn, max_per_tic=20.0)
        # Fire when the enemy's body (about 32 units wide) covers the crosshair.
        tolerance = max(2.0, math.degrees(math.atan2(14.0, max(dist, 1.0))))
        rocket = view.weapon == _ROCKET_SLOT
        # A rocket into a wall or a corner right ahead blows up in our own face.
        blocked = rocket and not _clear_to_fire(view.depth)
        if abs(turn) < tolerance and not (rocket and dist < _SPLASH_DISTANCE) and not blocked:
            action[_ATTACK] = 1.0
        if self._strafe_left <= 0:
            self._strafe = _LEFT if self.rng.random() < 0.5 else _RIGHT
            self._strafe_left = self.rng.randint(8, 30) // self.tics + 1
        self._strafe_left -= 1
        action[self._strafe] = 1.0
        if view.weapon <= 1:  # fist or chainsaw: close in
            action[_FORWARD] = 1.0
        elif rocket and dist < _SPLASH_DISTANCE or dist < 96:
            action[_BACK] = 1.0
        elif dist > 300:
            action[_FORWARD] = 1.0

    def _walk_to(self, view: BotView, item: Seen, action: list[float]) -> None:
        turn = self._bearing(view, item)
        self._turn(action, turn)
        if abs(turn) < 35:
            action[_FORWARD] = 1.0

    def _explore(self, view: BotView, action: list[float]) -> None:
        """Head for the goal (the nearest enemy anywhere on the map) along open floor."""
        goal = self._goal_bearing(view)
        sectors = _free_sectors(view.depth)
        if sectors is None:
            self._turn(action, goal)
            action[_FORWARD] = 1.0
            return
        n = len(sectors)
        # Sector i looks (i + 0.5) / n across the 90-degree view, left to right.
        offsets = [(i + 0.5) / n * 90.0 - 45.0 for i in range(n)]
        if max(sectors) < _WALL_DEPTH:
            # Boxed in: turn on the spot, toward the goal's side.
            self._turn(action, 60.0 if goal >= 0 else -60.0)
            return
        if self.rng.random() < 0.02 * self.tics:
            self._wander_turn = self.rng.uniform(-40.0, 40.0)
        self._wander_turn *= 0.9
        want = goal + self._wander_turn

        def score(i: int) -> float:
            room = min(sectors[i], 60.0)
            return room - 0.35 * abs(_wrap(offsets[i] - want))

        best = max(range(n), key=score)
        self._turn(action, offsets[best] * 0.5)
        if sectors[n // 2 - 1] >= _WALL_DEPTH and sectors[n // 2] >= _WALL_DEPTH:
            action[_FORWARD] = 1.0
        if self.rng.random() < 0.05:
            action[_USE] = 1.0  # doors and switches

    def _goal_bearing(self, view: BotView) -> float:
        foes = [
            (x, y)
            for i, category, x, y in view.actors
            if category in self.enemies and i not in self._not_targets
        ]
        if not foes:
            return 0.0
        x, y = min(foes, key=lambda p: math.hypot(p[0] - view.x, p[1] - view.y))
        want = math.degrees(math.atan2(y - view.y, x - view.x))
        return -_wrap(want - view.angle)

    def _stuck(self) -> bool:
        if len(self._trail) < self._trail.maxlen:
            return False
        (x0, y0), (x1, y1) = self._trail[0], self._trail[-1]
        if math.hypot(x1 - x0, y1 - y0) > 24.0:
            return False
        self._escape = 10 // self.tics + 2
        self._escape_turn = self.rng.choice((-1.0, 1.0)) * self.rng.uniform(90.0, 180.0)
        self._trail.clear()
        return True

    def _back_out(self, action: list[float]) -> None:
        self._escape -= 1
        steps = 10 // self.tics + 2
        self._turn(action, self._escape_turn / steps, max_per_tic=20.0)
        action[_BACK] = 1.0
        action[_USE] = 1.0


def _useless(item: Seen, view: BotView) -> bool:
    """Doom leaves these on the floor: walking into them does nothing."""
    if item.name in ("Medikit", "Stimpack"):
        return view.health >= 100
    if item.name == "GreenArmor":
        return view.armor >= 100
    if item.name == "BlueArmor":
        return view.armor >= 200
    return False


def _clear_to_fire(depth: np.ndarray | None) -> bool:
    """Whether a rocket fired now flies clear: nothing right at the crosshair, no wall edge
    close beside it, and no wall touching the player at all (a rocket is fat: it clips a
    wall next to the muzzle, even one only seen at the edge of the view)."""
    if depth is None:
        return True
    h, w = depth.shape[:2]
    band = depth[int(h * 0.4) : int(h * 0.5)]
    centre = float(band[:, int(w * 0.47) : int(w * 0.53)].min())
    beside = float(band[:, int(w * 0.2) : int(w * 0.8)].min())
    anywhere = float(band.min())
    return (
        centre >= _ROCKET_CLEAR_DEPTH
        and beside >= _ROCKET_SIDE_DEPTH
        and anywhere >= _ROCKET_TOUCH_DEPTH
    )


def _free_sectors(depth: np.ndarray | None, n: int = 12) -> list[float] | None:
    """How far the way is open in each of `n` vertical slices of the view, left to right.

    Measured on a band just above the horizon line's middle, where walls show and the
    floor and the status bar do not.
    """
    if depth is None:
        return None
    h, w = depth.shape[:2]
    band = depth[int(h * 0.38) : int(h * 0.55)]
    cols = band.min(axis=0)
    return [float(c.min()) for c in np.array_split(cols, n)]
