"""The baseline reader of `couchmate bench perception`: full-frame OCR, no profile.

What a reasonable person would build without game profiles: run rapidocr (detection +
recognition, its shipped ONNX models; the angle classifier is off because game HUDs are
upright) on the whole frame (frames under 480 px tall are upscaled first, bicubic), with
per-character boxes, then map text to fields by layout:

- Doom: find the status-bar labels (AMMO, HEALTH, ARMOR, FRAGS) among the recognized
  words; every recognized digit that sits just above a label (within three label heights,
  and within half a label width of it sideways) is given to the label nearest in x; the
  digits of one label are split into runs at wide gaps and the run closest to the label's
  centre is the value. A detection box that spans two numbers ("50100%") is split by its
  character boxes, so it is not penalized.
- Atari: the digits in the top quarter of the screen, split into numbers at wide gaps,
  ordered left to right. Pong (two scores): the left number is the opponent's, the right
  one the player's. Other games: the first number is the score, the next one the lives
  (Breakout's top line: score, balls left, player number).

It needs no profile, so it learns nothing about fonts or positions; that is the point of
the comparison. Fields it cannot find are left out of the state (counted as misses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from couchmate.types import FieldReading, Frame, GameState

MIN_OCR_HEIGHT = 480  # upscale frames shorter than this before OCR
DOOM_LABELS = {"AMMO": "ammo", "HEALTH": "health", "ARMOR": "armor", "FRAGS": "frags"}


@dataclass(slots=True)
class Glyph:
    """One recognized character and its box (pixels)."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


Line = list[Glyph]
Fields = dict[str, FieldReading]


def _box(points: object) -> tuple[float, float, float, float] | None:
    a = np.asarray(points, dtype=np.float32).reshape(-1)
    if a.size < 4 or a.size % 2:
        return None
    a = a.reshape(-1, 2)
    return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())


def _glyph(item: object, scale: float) -> Glyph | None:
    """One (text, score, box) entry of rapidocr's word results, or None if malformed."""
    if not isinstance(item, tuple | list) or len(item) != 3 or not isinstance(item[0], str):
        return None
    box = _box(item[2])
    if box is None:
        return None
    return Glyph(item[0], float(item[1]), *(v / scale for v in box))


def _runs(glyphs: list[Glyph]) -> list[list[Glyph]]:
    """Split digits (sorted by x) into numbers where the gap is wider than a glyph."""
    runs: list[list[Glyph]] = []
    for g in sorted(glyphs, key=lambda g: g.x0):
        if runs:
            last = runs[-1][-1]
            width = max(1.0, last.x1 - last.x0)
            if g.x0 - last.x1 <= 0.8 * width:
                runs[-1].append(g)
                continue
        runs.append([g])
    return runs


def _reading(run: list[Glyph], t: float) -> FieldReading:
    text = "".join(g.text for g in run)
    return FieldReading(int(text), float(np.mean([g.score for g in run])), t, text)


def doom_fields(lines: list[Line], width: int, height: int, t: float, game: str) -> Fields:
    labels: list[tuple[str, Glyph]] = []
    for line in lines:
        text = "".join(g.text for g in line).upper()
        for word, field in DOOM_LABELS.items():
            i = text.find(word)
            if i < 0:
                continue
            part = line[i : i + len(word)]
            box = Glyph(
                word,
                1.0,
                min(g.x0 for g in part),
                min(g.y0 for g in part),
                max(g.x1 for g in part),
                max(g.y1 for g in part),
            )
            labels.append((field, box))
    if not labels:
        return {}
    owned: dict[str, list[Glyph]] = {}
    for g in (g for line in lines for g in line if g.text.isdigit()):
        above = [
            (abs(g.cx - box.cx), field)
            for field, box in labels
            if g.cy < box.y0
            and box.y0 - g.y1 <= 3 * (box.y1 - box.y0)
            and box.x0 - (box.x1 - box.x0) / 2 <= g.cx <= box.x1 + (box.x1 - box.x0) / 2
        ]
        if above:
            owned.setdefault(min(above)[1], []).append(g)
    out: Fields = {}
    for field, box in labels:
        runs = _runs(owned.get(field, []))
        if runs:
            best = min(runs, key=lambda r: abs((r[0].x0 + r[-1].x1) / 2 - box.cx))
            out[field] = _reading(best, t)
    return out


def atari_fields(lines: list[Line], width: int, height: int, t: float, game: str) -> Fields:
    digits = [g for line in lines for g in line if g.text.isdigit() and g.cy < height / 4]
    runs = _runs(digits)
    if not runs:
        return {}
    if game.endswith("pong"):
        if len(runs) >= 2:
            return {"opponent_score": _reading(runs[0], t), "player_score": _reading(runs[-1], t)}
        side = "player_score" if runs[0][0].cx > width / 2 else "opponent_score"
        return {side: _reading(runs[0], t)}
    out = {"score": _reading(runs[0], t)}
    if len(runs) >= 2:
        out["lives"] = _reading(runs[1], t)
    return out


#: the fields each heuristic can fill (others are misses by construction)
BASELINE_FIELDS = {
    "doom": tuple(DOOM_LABELS.values()),
    "atari": ("score", "lives", "player_score", "opponent_score"),
}

HEURISTICS: dict[str, Callable[[list[Line], int, int, float, str], Fields]] = {
    "doom": doom_fields,
    "atari": atari_fields,
}


class NaiveOcrReader:
    """Full-frame rapidocr on every frame it is given; `family` ("doom", "atari") picks the
    layout heuristic and `game` (e.g. "atari-pong") names the fields it fills."""

    def __init__(self, family: str, game: str = ""):
        from rapidocr import RapidOCR

        self.family = family
        self.game = game
        self._fields = HEURISTICS[family]
        self._ocr = RapidOCR(
            params={
                "Global.use_cls": False,
                "Global.return_word_box": True,
                "Global.return_single_char_box": True,
                "Global.log_level": "warning",
            }
        )

    def lines(self, image: np.ndarray) -> list[Line]:
        """Recognized lines as glyphs, in the coordinates of `image`."""
        h = image.shape[0]
        # Small frames (Atari's 210x160) are upscaled first, as anyone would before OCR.
        scale = max(1.0, MIN_OCR_HEIGHT / h)
        if scale > 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        result = self._ocr(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        out: list[Line] = []
        for word in result.word_results or ():
            if len(word) == 3 and isinstance(word[0], str):  # one glyph, not wrapped
                word = (word,)
            line = [g for g in (_glyph(item, scale) for item in word) if g is not None]
            if line:
                out.append(line)
        return out

    def read(self, frame: Frame) -> GameState:
        h, w = frame.image.shape[:2]
        fields = self._fields(self.lines(frame.image), w, h, frame.t, self.game)
        state = GameState(
            game=f"naive-{self.family}",
            t=frame.t,
            fields=fields,
            frame_index=frame.index,
            timing=frame.timing.copy(),
        )
        state.timing.mark("read")
        return state
