"""Lulls fit what happened: no lull comment on a screen where nothing has happened yet (the
user's black window got "That last fight was wild." after 11 s), and a persona line that
presupposes a fight or some play is said only when one was seen."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from couchmate.config import Settings
from couchmate.mind.director import Director, DirectorPolicy
from couchmate.mind.mind import Mind
from couchmate.mind.persona import PersonaBook, load_persona
from couchmate.session import Session
from couchmate.sources.folder import FolderSource
from tests.mind.support import FakeClock, event

FIGHT_LINE = "That last fight was wild."
PLAY_LINE = "You're getting the hang of this!"


def test_a_screen_where_nothing_happened_is_no_lull():
    clock = FakeClock()
    d = Director(talkativeness=3, clock=clock)
    clock.advance(11)
    assert d.in_lull() == (False, "") and d.lull_due() is None
    d.observe(event("idle", clock.t, 0.1))  # the watcher: nothing moved for 10 s
    clock.advance(60)
    assert d.in_lull() == (False, "") and d.lull_due() is None
    # The game starts: from here, quiet is counted.
    d.observe(event("pickup", clock.t, 0.3))
    clock.advance(9)
    assert d.in_lull()[0] is False
    clock.advance(2)
    assert d.in_lull() == (True, "quiet for 11s")
    assert d.lull_due() is not None


def test_seen_says_what_lines_may_presuppose():
    clock = FakeClock()
    d = Director(clock=clock, policy=DirectorPolicy(fight_memory_s=120))
    assert d.seen() == frozenset()
    d.observe(event("scene_change", clock.t, 0.4))
    assert d.seen() == frozenset()  # something on screen, but no play yet
    d.observe(event("pickup", clock.t, 0.3))
    assert d.seen() == {"play"}
    d.observe(event("kill", clock.t, 0.7))
    assert d.seen() == {"play", "fight"}
    clock.advance(121)
    assert d.seen() == {"play"}  # that fight is no longer "the last fight"


def lull_lines(first_event: str, seeds=range(40), persona="sunny") -> set[str]:
    """The lull line a reflex-only mind says 12 s after `first_event`, over many seeds."""
    said = set()
    for seed in seeds:
        clock = FakeClock()
        mind = Mind(load_persona(persona), clock=clock, seed=seed)
        kw = {"scene": "menu"} if first_event == "scene_change" else {}
        mind.on_update(None, [event(first_event, clock.t, 0.3, **kw)])
        clock.advance(12)
        lines = mind.on_update(None, [])
        assert [ln.event.kind for ln in lines] == ["lull"], seed
        said.add(lines[0].text)
    return said


def test_lull_lines_fit_what_was_seen():
    after_pickup = lull_lines("pickup")
    assert FIGHT_LINE not in after_pickup  # play, but no fight
    assert PLAY_LINE in after_pickup
    after_kill = lull_lines("kill")
    assert FIGHT_LINE in after_kill
    on_a_menu = lull_lines("scene_change")  # a menu is a lull, before any play
    assert FIGHT_LINE not in on_a_menu and PLAY_LINE not in on_a_menu
    dry = lull_lines("pickup", persona="deadpan")
    assert "That last fight. We should talk about it." not in dry


def test_every_persona_line_that_presupposes_is_tagged_and_a_plain_one_remains():
    for name in ("sunny", "deadpan"):
        p = load_persona(name)
        for lang in p.languages:
            bank = p.bank("lull", lang)
            assert sum(bool(t.after) for t in bank) == 2, (name, lang)
            assert len([t for t in bank if not t.after and not t.slots]) >= 3


def test_an_unknown_after_tag_is_an_error_naming_file_and_line(tmp_path: Path):
    base = load_persona("sunny").source
    text = Path(base).read_text(encoding="utf-8").replace("name: sunny", "name: mine", 1)
    text = text.replace("after: [fight]}", "after: [boss]}", 1)
    (tmp_path / "mine.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(Exception) as err:
        PersonaBook(tmp_path).get("mine")
    msg = str(err.value)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if "after: [boss]" in x)
    assert f"mine.yaml:{line}" in msg and "boss" in msg and "fight" in err.value.hint


@pytest.mark.slow
def test_a_black_screen_gets_a_greeting_and_no_lull_comment(tmp_path: Path):
    """The user's steps: a source that shows only black, watched for over 11 s."""
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"black{i}.png"), np.zeros((480, 640, 3), np.uint8))

    async def go():
        source = FolderSource(str(tmp_path), fps=10, realtime=True, loop=True)
        async with Session(Settings(), source, mute=True) as session:
            return await session.run(seconds=12.5)

    report = asyncio.run(go())
    assert report.error == ""
    said = [(u.line.event.kind if u.line.event else "", u.line.text) for u in report.lines()]
    assert [k for k, _ in said] == ["greeting"], said
    assert report.watch is not None and report.watch.captured > 100  # 12 s of frames
