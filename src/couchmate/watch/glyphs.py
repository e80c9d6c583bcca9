"""An OCR-taught glyph cache: read a HUD number in ~1 ms once OCR has read its glyphs.

A game draws its numbers from a small bitmap font, so the same character looks the same
every time it is drawn. The reader splits each OCR box into glyphs (`segment`) and, when
rapidocr has read the box confidently with one character per glyph, remembers each glyph's
shape → character (`GlyphCache.learn`). A mapping is used only after it was taught
`confirmations` times by separate OCR reads (a read confirms an entry once, however often
the glyph appears in it) with no disagreement; when OCR later reads a glyph
near a cached one as another character, the cached entry is evicted (OCR is the reader of
record: a wrong entry costs two more OCR reads, never a wrong value for long). A box whose
glyphs are all known is read from the cache without an OCR call (`GlyphCache.read`); any
unknown glyph sends the whole box to OCR, which then teaches it.

Glyphs are found on the box's ink: pixels whose colour is far from the box's most common
colour (its fill), the threshold chosen per box by Otsu's method, so a full-screen tint
(Doom's red damage and death palettes, the yellow pickup flash) shifts both sides alike and
the same glyphs come out. Ink blobs (8-connected) that overlap in x make one glyph ("%" is
three blobs); specks and thin lines along the box's edges (frames) are dropped. A glyph is
described by its grey levels inside the ink, standardised (so a tint, an affine change of
every colour, changes nothing), outside the ink a fixed level (the silhouette), scaled to
GLYPH_SHAPE; plus its aspect ratio and its height in pixels. On Doom's status bar (three
runs of 2,100 frames, 25,000 boxes: each split into exactly as many glyphs as its value has
characters) the same character, plain or tinted, lies within 0.01 of itself and ≥ 0.18
from any other; MATCH_DISTANCE sits between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from couchmate.watch.digits import background

GLYPH_SHAPE = (16, 10)  # rows, cols of a described glyph
_OUTSIDE = -3.0  # the descriptor's level outside the ink
_GREY = np.array([0.299, 0.587, 0.114], np.float32)
MIN_INK_DISTANCE = 12  # summed |ΔRGB| below this is never ink, whatever Otsu says
MAX_GLYPHS = 12  # more blobs than this is not a number (noise, a picture)
#: a glyph this close (see `distance`) to a cached one is the same character
MATCH_DISTANCE = 0.06


@dataclass(slots=True)
class Glyph:
    """One character's ink in a box."""

    x0: int
    x1: int
    height: int
    desc: np.ndarray  # GLYPH_SHAPE float32
    aspect: float  # width / height


def ink(crop: np.ndarray) -> np.ndarray:
    """Boolean mask of the box's ink: far (Otsu's threshold) from its most common colour."""
    d = np.abs(crop.astype(np.int16) - background(crop)).sum(axis=2)
    d8 = np.clip(d, 0, 255).astype(np.uint8)
    t, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return d8 > max(t, MIN_INK_DISTANCE)


def _blobs(mask: np.ndarray) -> list[list[int]]:
    """Ink blobs as [x0, x1, y0, y1] (exclusive ends), specks and edge lines dropped,
    blobs that overlap in x merged, left to right."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    h, w = mask.shape
    speck = max(3.0, (0.08 * h) ** 2)
    line = max(2.0, 0.15 * h)
    found = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < speck:
            continue
        on_edge = x == 0 or y == 0 or x + bw == w or y + bh == h
        if on_edge and min(bw, bh) <= line:
            continue  # the box's frame, or a bar of the picture around it
        found.append([x, x + bw, y, y + bh])
    found.sort()
    merged: list[list[int]] = []
    for b in found:
        if merged and b[0] < merged[-1][1]:
            m = merged[-1]
            m[1], m[2], m[3] = max(m[1], b[1]), min(m[2], b[2]), max(m[3], b[3])
        else:
            merged.append(b)
    return merged


def segment(crop: np.ndarray, mask: np.ndarray | None = None) -> list[Glyph] | None:
    """The glyphs of an RGB box, left to right; None when its ink does not look like text.

    `mask`: the box's `ink`, when the caller has it already (the reader fingerprints it)."""
    if crop.ndim != 3 or crop.shape[0] < 4 or crop.shape[1] < 4:
        return None
    if mask is None:
        mask = ink(crop)
    blobs = _blobs(mask)
    if len(blobs) > MAX_GLYPHS:
        return None
    grey = crop.astype(np.float32) @ _GREY
    out = []
    for x0, x1, y0, y1 in blobs:
        patch, m = grey[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        v = patch[m]
        z = np.where(m, (patch - v.mean()) / max(float(v.std()), 1.0), _OUTSIDE).astype(np.float32)
        desc = cv2.resize(z, (GLYPH_SHAPE[1], GLYPH_SHAPE[0]), interpolation=cv2.INTER_AREA)
        out.append(Glyph(x0, x1, y1 - y0, desc, (x1 - x0) / (y1 - y0)))
    return out


def distance(a: Glyph, b: Glyph) -> float:
    """0 for the same glyph; about 0.2 and more between the characters of one font."""
    shape = float(np.abs(a.desc - b.desc).mean()) / abs(_OUTSIDE)
    return shape + 0.25 * abs(np.log(a.aspect / b.aspect)) + 0.5 * abs(np.log(a.height / b.height))


@dataclass(slots=True)
class _Entry:
    glyph: Glyph
    char: str
    taught: int = 1  # separate OCR reads that agreed


@dataclass(slots=True)
class CacheStats:
    reads: int = 0  # boxes read from the cache
    misses: int = 0  # boxes with an unknown glyph (OCR read them)
    taught: int = 0  # glyphs OCR taught (new entries and confirmations)
    evicted: int = 0  # entries dropped because OCR disagreed
    refused: int = 0  # OCR reads not taught: not one character per glyph


@dataclass(slots=True)
class GlyphCache:
    """Glyph → character, taught by OCR. One per reader (per stream); not thread-safe."""

    confirmations: int = 2
    match: float = MATCH_DISTANCE
    max_entries: int = 256
    entries: list[_Entry] = field(default_factory=list)
    stats: CacheStats = field(default_factory=CacheStats)

    def _near(self, g: Glyph) -> list[tuple[float, _Entry]]:
        near = [(distance(g, e.glyph), e) for e in self.entries]
        return sorted((d, e) for d, e in near if d <= self.match)

    def _lookup(self, g: Glyph) -> tuple[str | None, float]:
        """The glyph's character if the cache is sure of it (the nearest entry was taught
        `confirmations` times and no entry of another character is near), and the distance."""
        near = self._near(g)
        if not near or len({e.char for _, e in near}) > 1:
            return None, 1.0
        d, e = near[0]
        return (e.char if e.taught >= self.confirmations else None), d

    def known(self, glyphs: list[Glyph]) -> list[str | None]:
        """Each glyph's character where the cache is sure of it, else None."""
        return [self._lookup(g)[0] for g in glyphs]

    def read(self, glyphs: list[Glyph] | None) -> tuple[str, float] | None:
        """The text of a box whose every glyph is known for sure, with a score; else None."""
        if not glyphs:
            return None  # an empty box is OCR's to judge (a faint glyph may hide there)
        chars: list[str] = []
        worst = 0.0
        for g in glyphs:
            ch, d = self._lookup(g)
            if ch is None:
                self.stats.misses += 1
                return None
            chars.append(ch)
            worst = max(worst, d)
        self.stats.reads += 1
        return "".join(chars), 1.0 - 0.3 * worst / self.match

    def learn(self, glyphs: list[Glyph] | None, text: str) -> bool:
        """Teach the glyphs of a box OCR read as `text`. False (nothing taught) unless the
        text has exactly one character per glyph."""
        chars = [c for c in text if not c.isspace()]
        if not glyphs or len(chars) != len(glyphs):
            self.stats.refused += 1
            return False
        touched: list[_Entry] = []  # one read confirms an entry once ("100%": one "0")
        for g, ch in zip(glyphs, chars, strict=True):
            near = self._near(g)
            wrong = [e for _, e in near if e.char != ch]
            if wrong:  # OCR and the cache disagree: forget the cache's idea, teach nothing
                self.entries = [e for e in self.entries if all(e is not w for w in wrong)]
                self.stats.evicted += len(wrong)
                continue
            if near and any(near[0][1] is e for e in touched):
                continue
            self.stats.taught += 1
            if near:
                near[0][1].taught += 1
                touched.append(near[0][1])
            else:
                self.entries.append(_Entry(g, ch))
                touched.append(self.entries[-1])
        if len(self.entries) > self.max_entries:
            # keep the best-taught entries (noise makes one-off entries)
            self.entries.sort(key=lambda e: -e.taught)
            del self.entries[self.max_entries :]
        return True
