"""Field parsers: the text a reader saw in a HUD box → a typed value and a confidence factor.

A parser never raises on screen text: garbage gives `Parsed(None, 0.0)`. The confidence it
returns says how cleanly the text matched (1.0 exact; lower when characters had to be
repaired, e.g. an OCR "O" taken as a zero); the reader multiplies it with the recogniser's
own score. Profiles name parsers by their key in `PARSERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Parsed:
    value: Any
    confidence: float


NOTHING = Parsed(None, 0.0)

# Letters OCR models commonly return for digits in game fonts. Each repair costs confidence.
_DIGIT_LOOKALIKES = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "I": "1",
        "l": "1",
        "|": "1",
        "i": "1",
        "!": "1",
        "Z": "2",
        "z": "2",
        "S": "5",
        "s": "5",
        "$": "5",
        "B": "8",
        "G": "6",
        "b": "6",
        "g": "9",
        "q": "9",
        "—": "-",
        "–": "-",
        "_": "-",
    }
)
_REPAIR_COST = 0.85
_EDGE_JUNK = " .,:;'\"`~^*"


def _digits_text(text: str, allowed: str) -> tuple[str, float]:
    """Strip, repair look-alike letters; return the cleaned text and a confidence factor."""
    t = text.strip().strip(_EDGE_JUNK).replace(" ", "")
    conf = 1.0 if t == text.strip() else 0.95
    repaired = t.translate(_DIGIT_LOOKALIKES)
    n_fixed = sum(1 for a, b in zip(t, repaired, strict=True) if a != b and a not in allowed)
    return repaired, conf * (_REPAIR_COST**n_fixed)


_INT = re.compile(r"-?\d+")


def parse_integer(text: str) -> Parsed:
    """'42' → 42; '-3' → -3 (Doom frags go negative); anything else → None."""
    t, conf = _digits_text(text, "-")
    if not _INT.fullmatch(t):
        return NOTHING
    return Parsed(int(t), conf)


def parse_percent(text: str) -> Parsed:
    """'100%' → 100. A missing '%' is accepted at a small confidence cost."""
    t, conf = _digits_text(text, "%")
    if t.endswith("%"):
        t = t[:-1]
    else:
        conf *= 0.9
    if not re.fullmatch(r"\d+", t):
        return NOTHING
    return Parsed(int(t), conf)


def parse_ratio(text: str) -> Parsed:
    """'12/3/4' → (12, 3, 4); '45 / 200' → (45, 200). Parts may be negative."""
    t, conf = _digits_text(text, "/-")
    parts = t.split("/")
    if len(parts) < 2 or not all(_INT.fullmatch(p) for p in parts):
        return NOTHING
    return Parsed(tuple(int(p) for p in parts), conf)


def parse_clock(text: str) -> Parsed:
    """'24:37' → 1477 seconds; '1:02:03' → 3723; '-0:05' (overtime, countdown) → -5."""
    t, conf = _digits_text(text, ":-")
    neg = t.startswith("-")
    parts = t.lstrip("-").split(":")
    if not 2 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+", p) for p in parts):
        return NOTHING
    if any(int(p) >= 60 for p in parts[1:]) or any(len(p) != 2 for p in parts[1:]):
        return NOTHING
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return Parsed(-seconds if neg else seconds, conf)


def parse_text(text: str) -> Parsed:
    """Free text, whitespace collapsed. Empty → None."""
    t = " ".join(text.split())
    return Parsed(t, 1.0) if t else NOTHING


PARSERS: dict[str, Callable[[str], Parsed]] = {
    "integer": parse_integer,
    "percent": parse_percent,
    "ratio": parse_ratio,
    "clock": parse_clock,
    "text": parse_text,
}


def parse(parser: str, text: str) -> Parsed:
    return PARSERS[parser](text)
