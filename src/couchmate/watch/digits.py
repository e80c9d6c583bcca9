"""Template digits: for game fonts that defeat OCR (Atari's blocky numbers, Doom's tiny ammo
table). A region is split into glyph blobs by columns of background; each blob is scaled
to a small grid and matched to the nearest template of its font. Scaling makes one
template set work for any integer or fractional scale of the native frame.

Templates live in digits.npz next to this file, built from real engine frames whose
values the engine reports (scripts/build_digit_templates.py). Per font `F` the file holds
`F/glyphs` (N×GH×GW float32), `F/labels` (N chars), `F/aspects` (N) and `F/interlaced`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FONT_FILE = Path(__file__).parent / "digits.npz"
GLYPH_SHAPE = (12, 8)  # rows, cols of a normalised glyph
# A blob this far from every template (mean abs difference + aspect term) is not a digit.
MAX_DISTANCE = 0.30


@dataclass(frozen=True)
class Font:
    name: str
    glyphs: np.ndarray  # N×GH×GW in [0, 1]
    labels: np.ndarray  # N one-character strings
    aspects: np.ndarray  # N, width / height of the blob
    interlaced: bool = False  # drawn on every other line (Space Invaders): close rows first


_fonts: dict[str, Font] | None = None
_fonts_lock = threading.Lock()


def load_fonts(path: Path = FONT_FILE) -> dict[str, Font]:
    global _fonts
    if _fonts is not None and path == FONT_FILE:
        return _fonts
    fonts: dict[str, Font] = {}
    if path.exists():
        with np.load(path) as z:
            names = {k.split("/")[0] for k in z.files}
            for n in sorted(names):
                fonts[n] = Font(
                    name=n,
                    glyphs=z[f"{n}/glyphs"].astype(np.float32),
                    labels=z[f"{n}/labels"].astype(str),
                    aspects=z[f"{n}/aspects"].astype(np.float32),
                    interlaced=bool(z[f"{n}/interlaced"]),
                )
    if path == FONT_FILE:
        with _fonts_lock:
            _fonts = fonts
    return fonts


def font_names() -> list[str]:
    return sorted(load_fonts())


def background(crop: np.ndarray) -> np.ndarray:
    """The crop's most common colour (int16 RGB), which for a HUD box is its fill."""
    flat = crop.reshape(-1, 3)
    keys = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    vals, counts = np.unique(keys, return_counts=True)
    k = int(vals[counts.argmax()])
    return np.array([(k >> 16) & 255, (k >> 8) & 255, k & 255], np.int16)


def foreground(crop: np.ndarray, fg: list[tuple[int, int, int]], tolerance: int) -> np.ndarray:
    """Boolean mask of glyph pixels: near one of `fg`, or (no `fg`) unlike the `background`."""
    px = crop.astype(np.int16)
    if fg:
        mask = np.zeros(crop.shape[:2], bool)
        for c in fg:
            d = np.abs(px - np.array(c, np.int16)).sum(axis=2)
            mask |= d <= tolerance
        return mask
    return np.abs(px - background(crop)).sum(axis=2) > tolerance


def close_interlace(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[:-1] |= mask[1:]
    return out


@dataclass(frozen=True, slots=True)
class Blob:
    x0: int
    x1: int
    y0: int
    y1: int  # exclusive ends


def segment(mask: np.ndarray) -> list[Blob]:
    """Split a glyph mask into blobs at empty columns, left to right."""
    cols = mask.any(axis=0)
    blobs: list[Blob] = []
    x = 0
    w = len(cols)
    while x < w:
        if not cols[x]:
            x += 1
            continue
        x0 = x
        while x < w and cols[x]:
            x += 1
        rows = np.flatnonzero(mask[:, x0:x].any(axis=1))
        blobs.append(Blob(x0, x, int(rows[0]), int(rows[-1]) + 1))
    return blobs


def normalise(mask: np.ndarray, blob: Blob) -> tuple[np.ndarray, float]:
    """The blob scaled to GLYPH_SHAPE in [0, 1], and its width/height ratio."""
    sub = mask[blob.y0 : blob.y1, blob.x0 : blob.x1].astype(np.float32)
    h, w = sub.shape
    g = cv2.resize(sub, (GLYPH_SHAPE[1], GLYPH_SHAPE[0]), interpolation=cv2.INTER_AREA)
    return g, w / h


def match(font: Font, glyph: np.ndarray, aspect: float) -> tuple[str, float]:
    """The nearest template's character and the distance to it."""
    d = np.abs(font.glyphs - glyph).mean(axis=(1, 2))
    d = d + 0.25 * np.abs(np.log(font.aspects / aspect))
    i = int(d.argmin())
    return str(font.labels[i]), float(d[i])


def read_digits(
    crop: np.ndarray,
    font: Font,
    fg: list[tuple[int, int, int]],
    tolerance: int,
) -> tuple[str, float]:
    """The digits in `crop` and a score in [0, 1]; ("", 1.0) for an empty box."""
    mask = foreground(crop, fg, tolerance)
    if font.interlaced:
        mask = close_interlace(mask)
    blobs = segment(mask)
    if not blobs:
        return "", 1.0
    tallest = max(b.y1 - b.y0 for b in blobs)
    chars = []
    worst = 0.0
    for b in blobs:
        # specks far shorter than the digits (a bullet's trail, a dot) are not glyphs
        if (b.y1 - b.y0) < 0.5 * tallest or (b.y1 - b.y0) < 2:
            continue
        g, aspect = normalise(mask, b)
        ch, dist = match(font, g, aspect)
        chars.append(ch)
        worst = max(worst, dist)
    score = max(0.0, 1.0 - worst / MAX_DISTANCE)
    return "".join(chars), score


def count_icons(
    crop: np.ndarray,
    fg: list[tuple[int, int, int]],
    tolerance: int,
    area: tuple[float, float],
) -> tuple[str, float]:
    """How many icons (connected blobs of `fg` whose area share is in `area`)."""
    mask = foreground(crop, fg, tolerance).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    total = mask.shape[0] * mask.shape[1]
    lo, hi = area
    shares = stats[1:, cv2.CC_STAT_AREA] / total
    count = int(((shares >= lo) & (shares <= hi)).sum())
    # blobs outside the size range make the count doubtful (an overlapping sprite)
    odd = int(((shares > hi) | ((shares < lo) & (shares > lo / 4))).sum())
    return str(count), 1.0 if odd == 0 else 0.3
