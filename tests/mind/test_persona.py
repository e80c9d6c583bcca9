"""Persona packs: the built-ins are complete in en/zh/ja; broken packs name file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from couchmate.errors import PersonaError, UserError
from couchmate.mind.persona import (
    BUILTIN_DIR,
    LINE_KINDS,
    SLOTS,
    PersonaBook,
    load_persona,
    normalize_lang,
)

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
KANA = re.compile(r"[\u3040-\u30ff]")


@pytest.mark.parametrize("name", ["sunny", "deadpan"])
def test_builtin_personas_are_complete_in_three_languages(name):
    p = load_persona(name)
    assert p.languages == ("en", "zh", "ja")
    assert p.voice("en").espeak == "en-us" and p.voice("zh").espeak == "cmn"
    assert p.voice("ja").espeak == "ja"
    assert len(p.style) > 100
    for lang in p.languages:
        for kind in LINE_KINDS:
            bank = p.bank(kind, lang)
            assert len(bank) >= 4, (lang, kind)
            assert any(not t.slots for t in bank), (lang, kind)
            for t in bank:
                assert t.slots <= SLOTS
                if lang == "en":
                    assert not CJK.search(t.text), t.text
                else:
                    assert CJK.search(t.text), t.text
                    assert len(t.text) <= 30, t.text  # short, spoken
        if lang == "ja":  # Japanese, not Chinese: kana in (nearly) every line
            lines = [t.text for k in LINE_KINDS for t in p.bank(k, "ja")]
            assert sum(bool(KANA.search(x)) for x in lines) / len(lines) > 0.9


def test_personas_differ_and_languages_resolve():
    sunny, dry = load_persona("sunny"), load_persona("deadpan")
    assert {t.text for t in sunny.bank("death", "en")}.isdisjoint(
        t.text for t in dry.bank("death", "en")
    )
    assert sunny.lang("zh-CN") == "zh" and sunny.lang("ja_JP") == "ja"
    assert sunny.lang("fr") == "en"  # the first language when it has no French
    assert normalize_lang("cmn") == "zh"
    assert sunny.voice("en").espeak_name == "en-us+f3"


def _write(dir_: Path, name: str, text: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    p = dir_ / f"{name}.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def _minimal(name: str, *, death: str = '["Oh no!"]', extra: str = "") -> str:
    hey = '["Hey."]'
    kinds = "\n".join(f"    {k}: {death if k == 'death' else hey}" for k in LINE_KINDS)
    return (
        f"name: {name}\nstyle: A test persona.\nlanguages: [en]\n"
        f"voice:\n  en: {{espeak: en-us}}\n{extra}lines:\n  en:\n{kinds}\n"
    )


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("death", "extra", "needle", "message"),
    [
        ('["{helth}% left"]', "", "{helth}", "unknown slot {helth}"),
        ("[{health}% left]", "", "death:", "YAML error"),
        ('["{health:>3}"]', "", "death:", "unknown slot"),
        ('["{health} left"]', "", "death:", "needs a slot"),
        ('["Oh no!"]', "colour: blue\n", "colour", "Extra inputs are not permitted"),
        ('["Oh no!"]', "display_name: [1, 2]\n", "display_name", "display_name"),
    ],
)
def test_broken_packs_name_file_and_line(tmp_path, death, extra, needle, message):
    text = _minimal("broken", death=death, extra=extra)
    path = _write(tmp_path, "broken", text)
    with pytest.raises(PersonaError) as err:
        PersonaBook(tmp_path).get("broken")
    msg = err.value.message
    assert message in msg, msg
    assert f"{path}:{_line_of(text, needle)}:" in msg, msg
    assert err.value.hint


def test_missing_kind_and_unknown_kind_are_reported(tmp_path):
    text = _minimal("gappy").replace('    kill: ["Hey."]\n', '    kil: ["Hey."]\n')
    path = _write(tmp_path, "gappy", text)
    with pytest.raises(PersonaError, match=rf"{re.escape(str(path))}:\d+: unknown line kind 'kil'"):
        PersonaBook(tmp_path).get("gappy")
    text = _minimal("gappy").replace('    kill: ["Hey."]\n', "")
    _write(tmp_path, "gappy", text)
    with pytest.raises(PersonaError, match="has no 'kill' lines"):
        PersonaBook(tmp_path).get("gappy")


def test_user_pack_overrides_and_extends_builtins(tmp_path):
    # Same name as a built-in: extends it, replaces one bank, keeps the rest.
    _write(
        tmp_path,
        "sunny",
        "name: sunny\nextends: sunny\ndisplay_name: Sunny Mk2\nlines:\n  en:\n"
        '    death: ["Down you go, {player}!", "Whoops."]\n',
    )
    # A new persona built on the dry one, adding nothing but a name and style.
    _write(tmp_path, "grumpy", "name: grumpy\nextends: deadpan\nstyle: Grumpier than Dex.\n")
    book = PersonaBook(tmp_path)
    assert {"sunny", "deadpan", "grumpy"} <= set(book.names())
    sunny = book.get("sunny")
    assert sunny.display_name == "Sunny Mk2"
    assert [t.text for t in sunny.bank("death", "en")] == ["Down you go, {player}!", "Whoops."]
    assert sunny.bank("kill", "en") == load_persona("sunny").bank("kill", "en")
    assert sunny.bank("death", "ja") == load_persona("sunny").bank("death", "ja")
    grumpy = book.get("grumpy")
    assert grumpy.style == "Grumpier than Dex." and grumpy.languages == ("en", "zh", "ja")
    assert grumpy.bank("kill", "zh") == load_persona("deadpan").bank("kill", "zh")


def test_user_pack_file_name_must_match_and_unknown_names_list_known(tmp_path):
    _write(tmp_path, "mine", _minimal("other"))
    with pytest.raises(PersonaError, match="declares name 'other'"):
        PersonaBook(tmp_path).get("mine")
    with pytest.raises(UserError) as err:
        PersonaBook(tmp_path).get("nobody")
    assert "sunny" in (err.value.hint or "")


def test_builtin_files_are_the_registered_ones():
    assert {p.stem for p in BUILTIN_DIR.glob("*.yaml")} == {"sunny", "deadpan"}
