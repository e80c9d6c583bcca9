"""Scene novelty on real ViZDoom frames: a few steps in one map are the same scene, a
different map is new."""

from __future__ import annotations

import os

import pytest

from couchmate.mind.router import Router


def doom_frames(cfg: str, n: int) -> list:
    vzd = pytest.importorskip("vizdoom")
    game = vzd.DoomGame()
    game.load_config(os.path.join(vzd.scenarios_path, cfg))
    game.set_window_visible(False)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_screen_resolution(vzd.ScreenResolution.RES_320X240)
    game.init()
    try:
        game.new_episode()
        out = []
        for _ in range(n):
            game.make_action([1] + [0] * (game.get_available_buttons_size() - 1))
            out.append(game.get_state().screen_buffer.copy())
        return out
    finally:
        game.close()


def test_novelty_on_real_doom_frames(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ViZDoom writes _vizdoom.ini into the working dir
    basic = doom_frames("basic.cfg", 4)
    other = doom_frames("defend_the_center.cfg", 4)
    r = Router()
    assert r.novel_image(basic[0])
    assert not any(r.novel_image(f) for f in basic[1:])  # the same room, a few steps on
    assert r.novel_image(other[0])  # a different map
    assert not r.novel_image(other[-1])
    assert not r.novel_image(basic[0])  # and the first room is still remembered
