from __future__ import annotations

import pytest

from couchmate.watch.parsers import PARSERS, parse


@pytest.mark.parametrize(
    ("parser", "text", "value"),
    [
        ("integer", "42", 42),
        ("integer", " 007 ", 7),
        ("integer", "-3", -3),
        ("percent", "100%", 100),
        ("percent", "0%", 0),
        ("ratio", "12/3/4", (12, 3, 4)),
        ("ratio", "45 / 200", (45, 200)),
        ("clock", "24:37", 24 * 60 + 37),
        ("clock", "1:02:03", 3723),
        ("clock", "-0:05", -5),
        ("text", "  Press   START ", "Press START"),
    ],
)
def test_clean_text_parses_exactly_with_full_confidence(parser, text, value):
    p = parse(parser, text)
    assert p.value == value
    assert p.confidence >= 0.95


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        ("integer", "街"),
        ("integer", "12a4"),
        ("integer", ""),
        ("integer", "--3"),
        ("percent", "%"),
        ("percent", "5%5"),
        ("ratio", "12"),
        ("ratio", "12//3"),
        ("clock", "24:77"),
        ("clock", "2437"),
        ("clock", "1:2"),
        ("text", "   "),
    ],
)
def test_garbage_is_none_with_no_confidence(parser, text):
    p = parse(parser, text)
    assert p.value is None
    assert p.confidence == 0.0


def test_repaired_lookalikes_cost_confidence():
    clean, repaired = parse("integer", "10"), parse("integer", "1O")
    assert repaired.value == 10
    assert repaired.confidence < clean.confidence
    # each repair costs more: two repairs are trusted less than one
    assert parse("integer", "lO").confidence < repaired.confidence


def test_percent_without_sign_is_less_certain():
    with_sign, without = parse("percent", "87%"), parse("percent", "87")
    assert with_sign.value == without.value == 87
    assert without.confidence < with_sign.confidence


def test_every_parser_is_registered():
    assert set(PARSERS) == {"integer", "percent", "ratio", "clock", "text"}
