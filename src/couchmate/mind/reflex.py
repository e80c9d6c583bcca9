"""Reflex lines: an in-character line for a moment in microseconds, with no model at all.

The offline default and the instant fallback. Lines come from the persona's bank for the
kind; a line whose slots the state cannot fill right now is skipped (never "{health}"), and so
is one that presupposes what has not happened (`after: [fight]` with no fight seen); the same
line is never said twice in a row for a kind, nor while it is among the last few lines
said at all. Choice is seeded, so a replay says the same things.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from couchmate.mind.persona import LineTemplate, Persona
from couchmate.types import GameState

#: state fields that fill a numeric slot, in the order they are tried
_NUMERIC_SLOTS = ("health", "armor", "ammo", "score", "lives", "frags")


def _number(value: object) -> str | None:
    """A HUD number as it should be spoken: 45.0 → "45", 3.25 → "3.2"; junk → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"


def game_title(game: str) -> str:
    """ "atari:space_invaders" → "Space Invaders"; "doom" → "Doom"."""
    name = game.rsplit(":", 1)[-1].replace("_", " ").replace("-", " ").strip()
    return name.title() if name.islower() else name


def slot_values(state: GameState | None, *, player: str = "", game: str = "") -> dict[str, str]:
    """The slots this moment can fill. Missing or unreadable fields are simply absent."""
    values: dict[str, str] = {}
    if state is not None:
        for name in _NUMERIC_SLOTS:
            f = state.fields.get(name)
            if f is not None:
                text = _number(f.value)
                if text is not None:
                    values[name] = text
        if not game and state.game:
            game = game_title(state.game)
    if game:
        values["game"] = game
    if player.strip():
        values["player"] = player.strip()
    return values


class Reflex:
    """Picks and fills bank lines for one persona. Cheap enough to call on every event."""

    def __init__(self, persona: Persona, *, seed: int = 0, recent: int = 6):
        self.persona = persona
        self._rng = random.Random(seed)
        self._last: dict[tuple[str, str], LineTemplate] = {}
        self._recent: deque[LineTemplate] = deque(maxlen=max(1, recent))

    def pick(
        self,
        kind: str,
        lang: str,
        values: Mapping[str, str],
        *,
        must_use: str = "",
        seen: AbstractSet[str] | None = None,
    ) -> str | None:
        """A line for `kind` in `lang` (or the persona's nearest language), filled from
        `values`; None when the persona has no bank for `kind`. `must_use`: a slot the
        line should carry when some line can (the answer itself, e.g. a remembered fact).
        `seen`: the persona.AFTER tags that hold now (None: any line, e.g. to preview)."""
        lang = self.persona.lang(lang)
        bank = self.persona.bank(kind, lang)
        if not bank:
            return None
        usable = [
            t for t in bank if t.slots.issubset(values) and (seen is None or t.after.issubset(seen))
        ]
        if must_use in values:
            usable = [t for t in usable if must_use in t.slots] or usable
        # Validation guarantees a plain line (no slots, no tags) per bank: never empty.
        last = self._last.get((lang, kind))
        recent = self._recent
        fresh = [t for t in usable if t is not last and not any(t is r for r in recent)]
        if not fresh:
            fresh = [t for t in usable if t is not last] or usable
        choice = fresh[0] if len(fresh) == 1 else self._rng.choice(fresh)
        self._last[(lang, kind)] = choice
        self._recent.append(choice)
        return choice.render(values)

    def line_for(
        self,
        kind: str,
        state: GameState | None,
        lang: str,
        *,
        player: str = "",
        game: str = "",
    ) -> str | None:
        """`pick` with the slots taken from `state` and the settings."""
        return self.pick(kind, lang, slot_values(state, player=player, game=game))
