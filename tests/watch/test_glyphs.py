"""The OCR-taught glyph cache on real Doom frames, taught by real OCR."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from couchmate.types import Frame
from couchmate.watch.glyphs import GlyphCache, segment
from couchmate.watch.profile import load_profile
from couchmate.watch.reader import Reader, low_contrast
from couchmate.watch.testing import fresh

BIG_NUMBERS = ("ammo", "health", "armor", "frags")


def _text(field: str, value: int | None) -> str:
    """What the status bar shows for a value."""
    if value is None:
        return ""
    return f"{value}%" if field in ("health", "armor") else str(value)


def _boxes(frames: list[Frame]) -> Iterator[tuple[str, np.ndarray, str]]:
    """(field, crop, text) of every big-number box whose value is steady around its frame
    (a change may show a frame late: no doubt about what these show)."""
    prof = load_profile("doom-deathmatch")
    for prev, f, nxt in zip(frames, frames[1:], frames[2:], strict=False):
        for name in BIG_NUMBERS:
            if not prev.truth[name] == f.truth[name] == nxt.truth[name]:
                continue
            x0, y0, x1, y1 = prof.box(name, *f.size)
            yield name, f.image[y0:y1, x0:x1], _text(name, f.truth[name])


def _glyphs_of(frames: list[Frame], text: str, skip: int = 0):
    found = [segment(c) for _, c, t in _boxes(frames) if t == text]
    return found[skip]


@pytest.mark.slow
def test_each_character_is_one_glyph_even_under_the_red_flash(doom_dm):
    right = wrong = flashed = 0
    for _, crop, text in _boxes(doom_dm):
        if not text:
            continue
        glyphs = segment(crop)
        ok = glyphs is not None and len(glyphs) == len(text)
        right += ok
        wrong += not ok
        flashed += ok and low_contrast(crop)
    assert wrong <= 0.005 * (right + wrong), (right, wrong)
    assert flashed >= 20  # deaths and hits: tinted boxes are in the data and split right


@pytest.mark.slow
def test_the_cache_learns_from_ocr_then_reads_new_frames_without_it(doom_dm, ocr):
    reader = Reader(load_profile("doom-deathmatch"), ocr=ocr)
    first, rest = doom_dm[:210], doom_dm[210:]
    for f in first:
        reader.read(fresh(f))
    taught = reader.glyphs.stats.taught
    assert taught >= 10 and reader.glyphs.stats.evicted == 0

    # Every steady box of the later frames: read from the cache alone, never wrongly.
    right = unknown = tinted = 0
    for _, crop, text in _boxes(rest):
        got = reader.glyphs.read(segment(crop))
        if got is None:
            unknown += 1
            continue
        assert got[0] == text
        right += 1
        tinted += low_contrast(crop)
    # unknown: characters first seen in the later frames (OCR reads and teaches them)
    assert right >= 0.75 * (right + unknown), (right, unknown)
    assert tinted > 0  # a tinted box reads from the glyphs plain frames taught

    # The reader on the later frames: most changed boxes come from the cache, not OCR,
    # and the state stays exact.
    ocr_before, cache_before = reader.stats.per_kind.get("ocr", 0), reader.stats.cache_reads
    wrong = 0
    for f in rest:
        state = reader.read(fresh(f))
        for name in ("health", "armor", "frags"):
            r = state.fields.get(name)
            wrong += r is not None and r.value != next(x for x in rest if x.t == r.t).truth[name]
    via_ocr = reader.stats.per_kind.get("ocr", 0) - ocr_before
    via_cache = reader.stats.cache_reads - cache_before
    assert via_cache >= 3 * max(1, via_ocr), (via_cache, via_ocr)
    assert wrong == 0
    # a flashed box deferred past a frame's look budget was not read: counted nowhere
    assert sum(reader.stats.per_kind.values()) == reader.stats.boxes_read, reader.stats


@pytest.mark.slow
def test_a_mapping_is_trusted_after_two_reads_and_evicted_when_ocr_disagrees(doom_dm):
    a, b = _glyphs_of(doom_dm, "100%"), _glyphs_of(doom_dm, "100%", skip=5)
    cache = GlyphCache()
    assert cache.learn(a, "100%")
    assert cache.read(a) is None  # taught once ("100%" confirms its "0" once, not twice)
    assert cache.learn(b, "100%")
    assert cache.read(a) == ("100%", pytest.approx(1.0, abs=0.3))
    # OCR reads the same glyphs as "180%": the cached "0" is forgotten, not trusted
    cache.learn(a, "180%")
    assert cache.stats.evicted == 1
    assert cache.read(a) is None
    assert cache.known(a) == ["1", None, None, "%"]


@pytest.mark.slow
def test_ocr_text_that_does_not_fit_the_glyphs_teaches_nothing(doom_dm):
    glyphs = _glyphs_of(doom_dm, "100%")
    cache = GlyphCache()
    assert not cache.learn(glyphs, "1100%")  # an extra character: a hallucination
    assert not cache.learn(glyphs, "10%")
    assert cache.entries == [] and cache.stats.refused == 2
    assert cache.read(None) is None and cache.read([]) is None
