from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from couchmate.config import config_dir
from couchmate.errors import ProfileError, UserError
from couchmate.watch.profile import list_profiles, load_profile

BUILTINS = {
    "doom",
    "doom-deathmatch",
    "atari-pong",
    "atari-breakout",
    "atari-mspacman",
    "atari-spaceinvaders",
    "generic",
}


def _user_profile(name: str, text: str) -> Path:
    folder = config_dir() / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_builtins_load_with_fields_rules_and_detection():
    profiles = {p.name: p for p in list_profiles()}
    assert set(profiles) >= BUILTINS
    doom = profiles["doom"]
    assert doom.title == "Doom (Freedoom)"
    assert {"health", "armor", "ammo"} <= set(doom.fields)
    assert {r.event for r in doom.rules.values()} >= {"damage_taken", "low_health", "death"}
    dm = profiles["doom-deathmatch"]
    assert "frags" in dm.fields and dm.rules["kill"].field == "frags"
    # extends: the deathmatch profile inherits doom's rules
    assert "damage_taken" in dm.rules
    assert profiles["generic"].rules == {}
    for name in BUILTINS - {"generic"}:
        assert profiles[name].detect is not None, name


def test_regions_scale_with_the_frame():
    doom = load_profile("doom")
    mid = {n: b for n, *b in doom.regions(640, 480)}
    big = {n: b for n, *b in doom.regions(1280, 960)}
    for name in mid:
        for a, b in zip(mid[name], big[name], strict=True):
            assert abs(a * 2 - b) <= 2, name
    # 320x240 draws the status bar unscaled, in the bottom 32 rows: the profile adjusts
    x0, y0, x1, y1 = doom.box("health", 320, 240)
    assert abs(x0 * 2 - mid["health"][0]) <= 2
    assert 240 - 32 <= y0 < y1 <= 240
    assert doom.box("health", 320, 200)[1] < y0  # other sizes keep the plain fractions


def test_user_profile_is_found_and_overrides_a_builtin():
    _user_profile(
        "my-doom.toml",
        """
        name = "doom"
        title = "My Doom"
        extends = "doom"

        [fields.health]
        region = [0.1, 0.8, 0.3, 0.9]
        confirm = 3
        """,
    )
    _user_profile(
        "tetris.yaml",
        """
        name: tetris
        title: Tetris
        fields:
          lines:
            region: [0.7, 0.1, 0.9, 0.2]
            parser: integer
        rules:
          line_clear:
            event: score_up
            field: lines
            kind: rise
        """,
    )
    doom = load_profile("doom")
    assert doom.title == "My Doom" and not doom.builtin
    assert doom.fields["health"].region == (0.1, 0.8, 0.3, 0.9)
    assert doom.fields["health"].confirm == 3
    # untouched parts of the built-in are still there
    assert doom.fields["health"].parser == "percent"
    assert "armor" in doom.fields and "death" in doom.rules
    tetris = load_profile("tetris")
    assert tetris.rules["line_clear"].kind == "rise"
    assert "tetris" in {p.name for p in list_profiles()}


def test_a_profile_by_path():
    path = _user_profile("x.toml", 'name = "x"\n[fields.t]\nregion = [0, 0, 1, 1]\n')
    assert load_profile(str(path)).name == "x"


@pytest.mark.parametrize(
    ("filename", "text", "line", "words"),
    [
        (
            "bad.toml",
            """
            name = "bad"
            [fields.hp]
            region = [0.1, 0.1, 0.2
            parser = "integer"
            """,
            4,
            "TOML syntax",
        ),
        (
            "bad.yaml",
            """
            name: bad
            fields:
              hp:
                region: [0.1, 0.1, 0.2, 0.2]
               parser: integer
            """,
            5,
            "YAML syntax",
        ),
        (
            "bad.toml",
            """
            name = "bad"
            title = "Bad"

            [fields.hp]
            region = [0.1, 0.1, 0.2, 0.2]
            parser = "roman"
            """,
            6,
            "unknown parser 'roman'",
        ),
        (
            "bad.toml",
            """
            name = "bad"
            [fields.hp]
            region = [0.1, 0.1, 0.2, 0.2]

            [rules.hurt]
            event = "damage_taken"
            field = "hp"
            kind = "plummet"
            """,
            8,
            "rules.hurt.kind",
        ),
        (
            "bad.yaml",
            """
            name: bad
            fields:
              hp:
                region: [0.1, 0.1, 0.2, 0.2]
            rules:
              hurt:
                event: damage_taken
                field: hp
                kind: plummet
            """,
            9,
            "rules.hurt.kind",
        ),
        (
            "bad.toml",
            """
            name = "bad"
            [fields.hp]
            parser = "integer"
            """,
            2,
            "missing required key 'region'",
        ),
        (
            "bad.toml",
            """
            name = "bad"
            [fields.hp]
            region = [0.1, 0.1, 0.2, 0.2]

            [rules.hurt]
            event = "damage_taken"
            field = "health"
            kind = "drop"
            """,
            7,
            "no field named 'health'",
        ),
        (
            "bad.toml",
            """
            name = "bad"
            [fields.hp]
            region = [0.5, 0.1, 0.2, 0.2]
            """,
            3,
            "region",
        ),
        (
            "bad.toml",
            """
            name = "bad"
            [fields.hp]
            region = [0.1, 0.1, 0.2, 0.2]
            colour = "red"
            """,
            4,
            "unknown key 'colour'",
        ),
    ],
)
def test_bad_profiles_name_the_file_and_the_line(filename, text, line, words):
    path = _user_profile(filename, text)
    with pytest.raises(ProfileError) as e:
        load_profile("bad")
    err = e.value
    assert err.path == str(path)
    assert err.line == line, str(err)
    assert words in str(err)
    assert str(err).startswith(f"{path}:{line}: ")


def test_unknown_game_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        load_profile("half-life-3")
    assert "half-life-3" in str(e.value)
    assert "doom" in (e.value.hint or "")


def test_a_broken_user_profile_does_not_hide_the_others():
    _user_profile("broken.toml", 'name = "broken"\n[fields\n')
    names = {p.name for p in list_profiles()}
    assert "broken" not in names
    assert names >= BUILTINS


def test_extends_unknown_profile_is_an_error():
    path = _user_profile("child.toml", 'name = "child"\nextends = "nope"\n')
    with pytest.raises(ProfileError) as e:
        load_profile("child")
    assert e.value.line == 2 and e.value.path == str(path)
