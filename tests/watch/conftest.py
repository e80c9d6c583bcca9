"""Real engine frames for the reading tests, generated once per session (seeded).

Small on purpose: a few hundred Doom frames take a few seconds to render; Atari frames
are nearly free. The seeds differ from the ones the digit templates were built from.
"""

from __future__ import annotations

import pytest

from couchmate.types import Frame
from couchmate.watch.ocr import Ocr
from couchmate.watch.testing import ATARI_GAMES, atari_frames, doom_frames


@pytest.fixture(scope="session")
def ocr() -> Ocr:
    o = Ocr()
    o.warm()
    return o


@pytest.fixture(scope="session")
def doom_sp() -> list[Frame]:
    """Single-player status bar: monsters, console gifts (armor, health, ammo, weapons)."""
    return list(doom_frames(240, hud="doom", seed=23, tics=3, gifts=0.04))


@pytest.fixture(scope="session")
def doom_dm() -> list[Frame]:
    """Deathmatch arena against bots, with suicides: deaths (red flash), respawns, frags."""
    return list(doom_frames(420, hud="doom-deathmatch", seed=11, suicide=0.004, dead_tics=50))


@pytest.fixture(scope="session")
def atari() -> dict[str, list[Frame]]:
    return {g: list(atari_frames(g, 900, seed=21, every=4)) for g in ATARI_GAMES}
