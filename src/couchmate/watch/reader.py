"""The HUD reader: one frame in, the game's state out.

For each field of the profile the reader crops the field's box and reads it with the
field's reader kind (OCR recognition, template digits, icon count, or full OCR), parses
the text, and updates the field's track. Three things keep it fast and calm:

- Unchanged boxes are not read again. Each field keeps a small fingerprint of the box it
  last read; when the pixels match, the last reading stands (no OCR call). Most frames of
  a game need zero or one OCR call.
- OCR boxes whose glyphs OCR has already taught are read from a glyph cache in about a
  millisecond (couchmate.watch.glyphs); rapidocr stays the reader of record, the teacher
  and the fallback for any unknown glyph. An OCR text with another number of characters
  than the box has glyphs is a misread once the field's segmentation has proven itself.
- A changed value is committed only when confirmed: the same new value must be seen on
  `confirm` (default 2) different frames in a row, so one misread digit, a flash or a
  half-drawn frame never reaches the state (and never fires an event). Confirmation costs
  one more frame of latency; `pending` tells the pipeline to read the next frame promptly.

Every reading carries the confidence (recogniser score × parser factor) and the time of
the latest frame whose pixels showed it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from couchmate.types import FieldReading, Frame, GameState
from couchmate.watch import digits as digits_mod
from couchmate.watch.glyphs import Glyph, GlyphCache, segment
from couchmate.watch.glyphs import ink as glyph_ink
from couchmate.watch.ocr import Ocr, shared_ocr
from couchmate.watch.parsers import parse
from couchmate.watch.profile import FieldSpec, Profile

log = logging.getLogger(__name__)

# Fingerprints: the box's colours on a coarse grid; it has changed when more than
# DIFF_SHARE of its grid points moved by more than DIFF_LEVEL in some channel (absorbs video
# noise, not a new digit). Per channel, not grey: under Doom's red damage flash a digit and
# its background differ in green and blue only.
DIFF_LEVEL = 16
DIFF_SHARE = 0.004


def fingerprint(crop: np.ndarray) -> np.ndarray:
    step = max(1, min(crop.shape[0], crop.shape[1]) // 24)
    return crop[::step, ::step].astype(np.int16)


def ink_print(mask: np.ndarray) -> np.ndarray:
    """The fingerprint of a text box's ink mask (`glyphs.ink`: Otsu's split from its fill
    colour): a tint, or a flash fading frame by frame, changes every pixel but not the ink."""
    return fingerprint(mask[..., None].astype(np.int16) * 255)


def same_pixels(
    a: np.ndarray | None, b: np.ndarray, exact: bool = False, share: float = DIFF_SHARE
) -> bool:
    """exact: any change counts (after an unreadable read, every new look is worth it)."""
    if a is None or a.shape != b.shape:
        return False
    if exact:
        return bool(np.array_equal(a, b))
    moved = np.count_nonzero(np.abs(a - b).max(axis=-1) > DIFF_LEVEL)
    return moved <= int(share * a.shape[0] * a.shape[1])


# An observation that gave no value (garbage, low confidence, out of range). Distinct from
# None, which a field with `empty = "none"` commits as a real state.
UNREADABLE: Any = object()


# A full-screen flash (Doom's red death and damage palettes, the yellow pickup flash)
# squeezes a HUD box into a few shades of one colour: grey spread under LOW_CONTRAST. The
# glyph cache reads such a box as well as any other; when it cannot, OCR looks at the box
# and at black-on-white masks of what differs from its background, and only a text that
# parses without repair and fits the box's glyphs counts: "0%" does, "01" or "O%" (for
# "0%") do not, nor "13%" for the two glyphs of "3%".
LOW_CONTRAST = 5.0
# While a box holds something unreadable, the committed value's confidence halves every
# DOUBT_HALF_LIFE_S; the event engine ignores changes from a value grown doubtful (under
# 0.3: about a second unread, long enough for a death and a respawn to go unseen).
DOUBT_HALF_LIFE_S = 0.5
INK_DISTANCE = 25  # summed |ΔRGB| from the fill that makes a pixel ink (flashed boxes)
FLASH_PAD_ASPECT = 3.0  # flashed boxes are read widened to this (fewer invented glyphs)
FLASH_LOOKS = 3  # OCR looks at flashed boxes per read() (each costs ~25 ms)
FLASH_SURE = 0.95  # one look at a flashed box this sure needs no second look to agree
FLASH_RETRY_S = 0.15  # an unreadable flashed box is looked at again this often as it fades
# An OCR read teaches the glyph cache when the recogniser is this sure and the text parses
# without repair; after a field's glyphs matched OCR's characters SEGMENT_PROVEN times, an
# OCR text with another number of characters than the box has glyphs is a misread.
TEACH_SCORE = 0.9
SEGMENT_PROVEN = 3


def low_contrast(crop: np.ndarray) -> bool:
    grey = crop[::2, ::2].astype(np.float32).mean(axis=-1)
    return float(grey.std()) < LOW_CONTRAST


def ink_mask(crop: np.ndarray, distance: int) -> np.ndarray:
    """Black where a pixel differs from the box's most common colour, white elsewhere."""
    ink = digits_mod.foreground(crop, [], distance)
    out = np.where(ink, 0, 255).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


def stretch_channels(crop: np.ndarray) -> np.ndarray:
    """Each colour channel stretched to 0..255: a tint's squeeze undone, roughly."""
    c = crop.reshape(-1, crop.shape[-1])
    lo, hi = c.min(axis=0), c.max(axis=0)
    span = np.maximum(hi.astype(np.float32) - lo, 1.0)
    return np.clip((crop - lo) * (255.0 / span), 0, 255).astype(np.uint8)


def pad_to_aspect(crop: np.ndarray, aspect: float) -> np.ndarray:
    """Widen `crop` to width/height >= `aspect` by repeating its left and right edges."""
    h, w = crop.shape[:2]
    need = int(aspect * h) - w
    if need <= 0:
        return crop
    left = need // 2
    return np.pad(crop, ((0, 0), (left, need - left), (0, 0)), mode="edge")


@dataclass(slots=True)
class _Track:
    """What the reader knows about one field across frames."""

    committed: FieldReading | None = None
    cand_value: Any = None
    cand_count: int = 0
    cand_conf: float = 0.0
    cand_raw: str = ""
    last_print: np.ndarray | None = None
    last_obs: tuple[Any, float, str] | None = None  # value, confidence, raw of the last read
    last_read_t: float = -1e18
    last_obs_frame: tuple[int, float] | None = None
    cand_need: int = 1  # agreeing frames the candidate needs (more after a flashed read)
    flashed: bool = False  # the last read was of a flashed (low-contrast) box
    extra: int = 0  # further agreeing frames the last read needs (1: OCR of a flashed box)
    doubt_since: float | None = None  # since when the box has been unreadable
    doubt_from: float = 1.0  # the committed confidence then
    taught: int = 0  # OCR reads of this field whose characters matched its glyphs


@dataclass(slots=True)
class _Look:
    """One box being read on this frame."""

    print: np.ndarray
    crop: np.ndarray
    flash: bool
    glyphs: list[Glyph] | None = None
    ocr: bool = False  # read by OCR (not the glyph cache, not another reader kind)


@dataclass(slots=True)
class ReaderStats:
    frames: int = 0
    ocr_calls: int = 0  # recogniser invocations (one batch of boxes counts once)
    boxes_read: int = 0  # field boxes actually read (any reader kind)
    boxes_skipped: int = 0  # boxes whose pixels had not changed
    cache_reads: int = 0  # OCR boxes read from the glyph cache (no OCR call)
    per_kind: dict[str, int] = field(default_factory=dict)


class Reader:
    """Reads one profile's HUD. Reusable across frames; loads OCR on first need."""

    def __init__(self, profile: Profile, *, ocr: Ocr | None = None, skip_unchanged: bool = True):
        self.profile = profile
        self.skip_unchanged = skip_unchanged
        self._ocr = ocr
        self._tracks: dict[str, _Track] = {n: _Track() for n in profile.fields}
        self._fonts: dict[str, digits_mod.Font] = {}
        self.stats = ReaderStats()
        # one cache for every OCR field: a profile's numbers share a font
        self.glyphs = GlyphCache()
        self._single: dict[str, Callable[[np.ndarray, FieldSpec], tuple[str, float]]] = {
            "digits": self._read_digits,
            "icons": self._read_icons,
            "ocr_full": self._read_full,
        }

    @property
    def ocr(self) -> Ocr:
        if self._ocr is None:
            self._ocr = shared_ocr()
        return self._ocr

    @property
    def pending(self) -> bool:
        """True while a changed value waits for its confirming frame: read the next one."""
        return any(t.cand_count > 0 for t in self._tracks.values())

    def last_observation(self, name: str) -> tuple[Any, float, str] | None:
        """The latest raw reading of a field, committed or not: (value, confidence, text).

        The value is UNREADABLE when the text gave nothing trustworthy."""
        return self._tracks[name].last_obs

    def reset(self) -> None:
        """Forget every field (a new game, a new level, a loaded save)."""
        self._tracks = {n: _Track() for n in self.profile.fields}

    def warm(self) -> None:
        """Load what the profile needs now instead of on the first frame."""
        kinds = {f.reader for f in self.profile.fields.values()}
        if kinds & {"ocr", "ocr_full"}:
            self.ocr.warm()
        for f in self.profile.fields.values():
            if f.reader == "digits":
                self._font(f.font)

    # ------------------------------------------------------------------ reading

    def read(self, frame: Frame) -> GameState:
        img = frame.image
        h, w = img.shape[:2]
        self.stats.frames += 1
        looks: dict[str, _Look] = {}
        observed: dict[str, tuple[str, float]] = {}
        plain: list[str] = []  # OCR boxes for one batched recogniser call
        flashed: list[str] = []  # low-contrast OCR boxes, read look by look
        for name, spec in self.profile.fields.items():
            tr = self._tracks[name]
            x0, y0, x1, y1 = self.profile.box(name, w, h)
            crop = img[y0:y1, x0:x1]
            ocr_box = spec.reader == "ocr"
            flash = ocr_box and low_contrast(crop)
            # An OCR box is fingerprinted by its ink (what differs from its background), not
            # its colours: a damage flash tinting the HUD, or a flash fading frame by frame,
            # changes every pixel but no glyph, and is not worth another (costly) look.
            # The mask is kept for `segment`: computing it is most of a box's cost.
            mask = glyph_ink(crop) if ocr_box else None
            fp = fingerprint(crop) if mask is None else ink_print(mask)
            if self._unchanged(tr, fp, flash, frame.t):
                self.stats.boxes_skipped += 1
                self._observe(tr, spec, *tr.last_obs, frame)
                continue
            if frame.t - tr.last_read_t < spec.min_interval_s:
                continue
            look = looks[name] = _Look(fp, crop, flash)
            kind = spec.reader
            if ocr_box:
                look.glyphs = segment(crop, mask) if spec.glyph_cache else None
                known = self.glyphs.read(look.glyphs)
                if known is not None:  # every glyph taught by OCR before: no OCR call
                    observed[name] = known
                    self.stats.cache_reads += 1
                    kind = "glyphs"
                else:
                    look.ocr = True
                    if flash:  # counted below, if this frame's budget reaches it
                        flashed.append(name)
                        continue
                    plain.append(name)
            else:
                observed[name] = self._single[spec.reader](crop, spec)
            self._count(kind)
        if plain:
            crops = [self._padded(looks[n].crop, self.profile.fields[n]) for n in plain]
            results = self.ocr.recognize(crops)
            self.stats.ocr_calls += 1
            observed.update(zip(plain, results, strict=True))
        # Flashed boxes cost up to three looks each: spend at most FLASH_LOOKS per frame,
        # longest-unread first; the rest wait for the next frame (a flash lasts many).
        budget = FLASH_LOOKS
        for n in sorted(flashed, key=lambda n: self._tracks[n].last_read_t):
            if budget <= 0:
                del looks[n]
                continue
            self._count("ocr")
            spec, tr = self.profile.fields[n], self._tracks[n]
            text, score, used = self._read_flashed(looks[n], spec, tr)
            observed[n] = (text, score)
            budget -= used
        for name, (text, score) in observed.items():
            spec, tr, look = self.profile.fields[name], self._tracks[name], looks[name]
            ocr_flash = look.ocr and look.flash
            value, conf = self._interpret(spec, text, score, strict=ocr_flash)
            if look.ocr:
                value, conf = self._against_glyphs(spec, tr, look.glyphs, text, score, value, conf)
                if value is UNREADABLE and not look.flash and self._no_ink(look.crop, spec):
                    value, conf = self._interpret(spec, "", 1.0)
            tr.last_print = look.print
            tr.last_obs = (value, conf, text)
            tr.last_read_t = frame.t
            tr.flashed = look.flash
            tr.extra = int(ocr_flash)
            self._observe(tr, spec, value, conf, text, frame)
        frame.timing.mark("read")
        return GameState(
            game=self.profile.name,
            t=frame.t,
            fields={n: tr.committed for n, tr in self._tracks.items() if tr.committed is not None},
            frame_index=frame.index,
            timing=frame.timing.copy(),
        )

    def _count(self, kind: str) -> None:
        self.stats.boxes_read += 1
        self.stats.per_kind[kind] = self.stats.per_kind.get(kind, 0) + 1

    def _unchanged(self, tr: _Track, fp: np.ndarray, flash: bool, t: float) -> bool:
        """The box shows what it showed at the last read: that reading stands."""
        if not self.skip_unchanged or tr.last_obs is None:
            return False
        unreadable = tr.last_obs[0] is UNREADABLE
        if unreadable and (flash != tr.flashed or (flash and t - tr.last_read_t >= FLASH_RETRY_S)):
            return False  # the flash came, went or faded on: the same glyphs may read now
        # after an unreadable read any change is worth a look
        return same_pixels(tr.last_print, fp, exact=unreadable and not flash)

    @staticmethod
    def _padded(crop: np.ndarray, spec: FieldSpec) -> np.ndarray:
        return pad_to_aspect(crop, spec.pad_aspect) if spec.pad_aspect else crop

    def _against_glyphs(
        self,
        spec: FieldSpec,
        tr: _Track,
        glyphs: list[Glyph] | None,
        text: str,
        score: float,
        value: Any,
        conf: float,
    ) -> tuple[Any, float]:
        """Hold an OCR read against the box's glyphs: a sure read with one character per
        glyph teaches the cache; once the field's glyphs have matched OCR's characters
        SEGMENT_PROVEN times, a text with more or fewer characters than the box has glyphs
        is a misread ("13%" for the two glyphs of "3%" under a red flash)."""
        if glyphs is None or value is UNREADABLE or value is None:
            return value, conf
        chars = sum(1 for c in text if not c.isspace())
        if chars != len(glyphs):
            return (UNREADABLE, 0.0) if tr.taught >= SEGMENT_PROVEN else (value, conf)
        sure = score >= TEACH_SCORE and parse(spec.parser, text).confidence >= 1.0
        if sure and self.glyphs.learn(glyphs, text):
            tr.taught += 1
        return value, conf

    def _interpret(
        self, spec: FieldSpec, text: str, score: float, strict: bool = False
    ) -> tuple[Any, float]:
        """(value, confidence); UNREADABLE when the text gives no trustworthy value.

        strict: only a text that parses without any repair counts (a flashed box)."""
        if not text.strip():
            if spec.blank is not None:
                return spec.blank, score if score > 0 else 1.0
            if spec.empty == "none":
                return None, score if score > 0 else 1.0
        parsed = parse(spec.parser, text)
        value, conf = parsed.value, parsed.confidence * score
        if strict and parsed.confidence < 1.0:
            return UNREADABLE, conf
        if value is None or conf < spec.min_confidence:
            return UNREADABLE, conf
        if spec.offset and isinstance(value, int | float):
            value = value + spec.offset
        too_low = spec.min is not None and isinstance(value, int | float) and value < spec.min
        too_high = spec.max is not None and isinstance(value, int | float) and value > spec.max
        if too_low or too_high:
            return UNREADABLE, 0.0  # implausible: a misread, not a reading
        return value, conf

    def _observe(
        self,
        tr: _Track,
        spec: FieldSpec,
        value: Any,
        conf: float,
        raw: str,
        frame: Frame,
    ) -> None:
        """One look at a field; `tr.extra` says how many further agreeing frames it needs."""
        if value is UNREADABLE:
            # keep what we know, confirm nothing; but a box with something in it that
            # cannot be read makes the old value less certain the longer it lasts
            c = tr.committed
            if raw.strip() and c is not None:
                if tr.doubt_since is None:
                    tr.doubt_since, tr.doubt_from = frame.t, c.confidence
                decay = 0.5 ** (max(0.0, frame.t - tr.doubt_since) / DOUBT_HALF_LIFE_S)
                tr.committed = FieldReading(c.value, tr.doubt_from * decay, c.t, c.raw)
            tr.last_obs_frame = (frame.index, frame.t)
            return
        tr.doubt_since = None
        key = (frame.index, frame.t)
        if tr.last_obs_frame == key and tr.cand_count:
            return  # the same frame twice confirms nothing
        tr.last_obs_frame = key
        c = tr.committed
        if c is not None and c.value == value:
            # a new object: states handed out earlier keep their own readings
            tr.committed = FieldReading(value, conf, frame.t, raw)
            tr.cand_count = 0
            return
        if tr.cand_count and tr.cand_value == value:
            tr.cand_count += 1
            tr.cand_conf = min(tr.cand_conf, conf)
        else:
            tr.cand_value, tr.cand_count, tr.cand_conf, tr.cand_raw = value, 1, conf, raw
            tr.cand_need = spec.confirm
        tr.cand_need = max(tr.cand_need, spec.confirm + tr.extra)
        if tr.cand_count >= tr.cand_need:
            tr.committed = FieldReading(value=value, confidence=tr.cand_conf, t=frame.t, raw=raw)
            tr.cand_count = 0

    def _read_flashed(self, look: _Look, spec: FieldSpec, tr: _Track) -> tuple[str, float, int]:
        """A flashed box with glyphs the cache does not know: OCR of the box itself (padded),
        of the box with each channel stretched to its full range, then of an ink mask. OCR
        of a tinted box hallucinates ("10%" for "0%", "13%" for "3%"), so a text counts
        only when it parses cleanly, fits the box's glyphs (`_fits`), and either the
        recogniser is sure of it or another look agrees. On Doom's tinted status bar (617
        steady boxes of three seeded minutes) the looks read 88% of the boxes, none wrong;
        the rest wait for the flash to fade. Returns text, score, looks."""
        seen: dict[Any, float] = {}
        known = self.glyphs.known(look.glyphs) if look.glyphs else None
        wide = max(spec.pad_aspect, FLASH_PAD_ASPECT)
        views: list[Callable[[np.ndarray], np.ndarray]] = [
            lambda c: pad_to_aspect(c, wide),
            lambda c: self._padded(stretch_channels(c), spec),
            lambda c: pad_to_aspect(ink_mask(c, INK_DISTANCE), wide),
        ]
        looks = 0
        for view in views:
            text, score = self.ocr.recognize([view(look.crop)])[0]
            self.stats.ocr_calls += 1
            looks += 1
            parsed = parse(spec.parser, text)
            if parsed.value is None or parsed.confidence < 1.0:
                continue
            if not self._fits(text, look.glyphs, known, tr):
                continue
            if score >= FLASH_SURE or parsed.value in seen:
                return text, min(score, seen.get(parsed.value, score)), looks
            seen[parsed.value] = score
        return "?", 0.0, looks  # something is there, but no look is trustworthy

    @staticmethod
    def _fits(
        text: str, glyphs: list[Glyph] | None, known: list[str | None] | None, tr: _Track
    ) -> bool:
        """Could `text` be what these glyphs say? One character per glyph (once the field's
        segmentation has matched OCR SEGMENT_PROVEN times), and the cache's character
        wherever it is sure of one."""
        if glyphs is None:
            return True
        chars = [c for c in text if not c.isspace()]
        if len(chars) != len(glyphs):
            return tr.taught < SEGMENT_PROVEN
        return not known or all(k is None or k == c for k, c in zip(known, chars, strict=True))

    @staticmethod
    def _no_ink(crop: np.ndarray, spec: FieldSpec) -> bool:
        """OCR found nothing it could parse: is the box really empty (no ink at all)?"""
        if not spec.fg:
            return False
        ink = digits_mod.foreground(crop, spec.fg, spec.fg_tolerance)
        return float(ink.mean()) < spec.min_ink

    # ------------------------------------------------------------------ reader kinds

    def _font(self, name: str) -> digits_mod.Font:
        f = self._fonts.get(name)
        if f is None:
            fonts = digits_mod.load_fonts()
            if name not in fonts:
                from couchmate.errors import ProfileError

                raise ProfileError(
                    f"no digit font {name!r} (known: {', '.join(fonts) or 'none'})",
                    path=str(self.profile.path),
                )
            f = self._fonts[name] = fonts[name]
        return f

    def _read_digits(self, crop: np.ndarray, spec: FieldSpec) -> tuple[str, float]:
        return digits_mod.read_digits(crop, self._font(spec.font), spec.fg, spec.fg_tolerance)

    def _read_icons(self, crop: np.ndarray, spec: FieldSpec) -> tuple[str, float]:
        return digits_mod.count_icons(crop, spec.fg, spec.fg_tolerance, spec.icon_area)

    def _read_full(self, crop: np.ndarray, spec: FieldSpec) -> tuple[str, float]:
        boxes = self.ocr.read_text(crop)
        self.stats.ocr_calls += 1
        if not boxes:
            return "", 0.0
        text = "\n".join(b.text for b in boxes)
        return text, float(np.mean([b.score for b in boxes]))
