"""The HUD reader: one frame in, the game's state out.

For each field of the profile the reader crops the field's box and reads it with the
field's reader kind (OCR recognition, template digits, icon count, or full OCR), parses
the text, and updates the field's track. Two things keep it fast and calm:

- Unchanged boxes are not read again. Each field keeps a small fingerprint of the box it
  last read; when the pixels match, the last reading stands (no OCR call). Most frames of
  a game need zero or one OCR call.
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
# A flashed box's ink mask wobbles as the flash fades; only a bigger change is a new glyph.
FLASH_DIFF_SHARE = 0.05


def fingerprint(crop: np.ndarray) -> np.ndarray:
    step = max(1, min(crop.shape[0], crop.shape[1]) // 24)
    return crop[::step, ::step].astype(np.int16)


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


def _same(a: Any, b: Any) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a == b)


# A full-screen flash (Doom's red death and damage palettes, the yellow pickup flash)
# squeezes a HUD box into a few shades of one colour: grey spread under LOW_CONTRAST. Such a
# box is read from a black-on-white mask of what differs from its background, and only a
# text that parses without repair counts: "0%" does, "01" (for "0%") or "O%" do not.
LOW_CONTRAST = 5.0
# Each look at a box that holds something unreadable scales the committed value's
# confidence by this; the event engine ignores changes from a value this doubtful.
DOUBT_DECAY = 0.8
INK_DISTANCES = (20, 25)
FLASH_LOOKS = 3  # OCR looks at flashed boxes per read() (each costs ~25 ms)
FLASH_SURE = 0.95  # one ink-mask look this sure needs no second look to agree


def low_contrast(crop: np.ndarray) -> bool:
    grey = crop[::2, ::2].astype(np.float32).mean(axis=-1)
    return float(grey.std()) < LOW_CONTRAST


def ink_mask(crop: np.ndarray, distance: int) -> np.ndarray:
    """Black where a pixel differs from the box's most common colour, white elsewhere."""
    ink = digits_mod.foreground(crop, [], distance)
    out = np.where(ink, 0, 255).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


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


@dataclass(slots=True)
class ReaderStats:
    frames: int = 0
    ocr_calls: int = 0  # recogniser invocations (one batch of boxes counts once)
    boxes_read: int = 0  # field boxes actually read (any reader kind)
    boxes_skipped: int = 0  # boxes whose pixels had not changed
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
        to_ocr: list[tuple[str, np.ndarray]] = []
        observed: dict[str, tuple[str, float]] = {}
        prints: dict[str, np.ndarray] = {}
        padded: dict[str, np.ndarray] = {}
        flashed: set[str] = set()
        for name, spec in self.profile.fields.items():
            tr = self._tracks[name]
            x0, y0, x1, y1 = self.profile.box(name, w, h)
            crop = img[y0:y1, x0:x1]
            ocr_box = spec.reader == "ocr"
            flash = ocr_box and low_contrast(crop)
            # An OCR box is fingerprinted by its ink (what differs from its background), not
            # its colours: a damage flash tinting the HUD, or a flash fading frame by frame,
            # changes every pixel but no glyph, and is not worth another (costly) look.
            fp = fingerprint(ink_mask(crop, INK_DISTANCES[1])[..., :1] if ocr_box else crop)
            # after an unreadable read any change is worth a look
            doubtful = tr.last_obs is not None and tr.last_obs[0] is UNREADABLE and not flash
            if (
                self.skip_unchanged
                and tr.last_obs is not None
                and same_pixels(
                    tr.last_print,
                    fp,
                    exact=doubtful,
                    share=FLASH_DIFF_SHARE if flash else DIFF_SHARE,
                )
            ):
                self.stats.boxes_skipped += 1
                self._observe(tr, spec, *tr.last_obs, frame, extra=int(tr.flashed))
                continue
            if frame.t - tr.last_read_t < spec.min_interval_s:
                continue
            prints[name] = fp
            self.stats.boxes_read += 1
            self.stats.per_kind[spec.reader] = self.stats.per_kind.get(spec.reader, 0) + 1
            if spec.reader == "ocr":
                to_ocr.append((name, crop))
                if flash:
                    flashed.add(name)  # read below, from ink masks
                elif spec.pad_aspect:
                    padded[name] = pad_to_aspect(crop, spec.pad_aspect)
            else:
                observed[name] = self._single[spec.reader](crop, spec)
        plain = [(n, c) for n, c in to_ocr if n not in flashed]
        if plain:
            results = self.ocr.recognize([padded.get(n, c) for n, c in plain])
            self.stats.ocr_calls += 1
            observed.update({n: r for (n, _), r in zip(plain, results, strict=True)})
        # Flashed boxes cost up to two looks each: spend at most FLASH_LOOKS per frame,
        # longest-unread first; the rest wait for the next frame (a flash lasts many).
        budget = FLASH_LOOKS
        waiting = sorted(
            ((n, c) for n, c in to_ocr if n in flashed),
            key=lambda nc: self._tracks[nc[0]].last_read_t,
        )
        for n, c in waiting:
            if budget <= 0:
                self.stats.boxes_read -= 1
                continue
            text, score, looks = self._read_flashed(c, self.profile.fields[n])
            observed[n] = (text, score)
            budget -= looks
        crops = dict(to_ocr)
        for name, (text, score) in observed.items():
            spec, tr = self.profile.fields[name], self._tracks[name]
            flash = name in flashed
            value, conf = self._interpret(spec, text, score, strict=flash)
            if (
                value is UNREADABLE
                and not flash
                and name in crops
                and self._no_ink(crops[name], spec)
            ):
                value, conf = self._interpret(spec, "", 1.0)
            tr.last_print = prints[name]
            tr.last_obs = (value, conf, text)
            tr.last_read_t = frame.t
            tr.flashed = flash
            self._observe(tr, spec, value, conf, text, frame, extra=int(flash))
        frame.timing.mark("read")
        state = GameState(
            game=self.profile.name,
            t=frame.t,
            fields={n: tr.committed for n, tr in self._tracks.items() if tr.committed is not None},
            frame_index=frame.index,
            timing=frame.timing.copy(),
        )
        return state

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
        extra: int = 0,
    ) -> None:
        """One look at a field. `extra`: further agreeing frames this look needs (flashed)."""
        if value is UNREADABLE:
            # keep what we know, confirm nothing; but a box with something in it that
            # cannot be read makes the old value less certain with every look
            c = tr.committed
            if raw.strip() and c is not None and tr.last_obs_frame != (frame.index, frame.t):
                tr.committed = FieldReading(c.value, c.confidence * DOUBT_DECAY, c.t, c.raw)
            tr.last_obs_frame = (frame.index, frame.t)
            return
        key = (frame.index, frame.t)
        if tr.last_obs_frame == key and tr.cand_count:
            return  # the same frame twice confirms nothing
        tr.last_obs_frame = key
        c = tr.committed
        if c is not None and _same(c.value, value):
            # a new object: states handed out earlier keep their own readings
            tr.committed = FieldReading(value, conf, frame.t, raw)
            tr.cand_count = 0
            return
        if tr.cand_count and _same(tr.cand_value, value):
            tr.cand_count += 1
            tr.cand_conf = min(tr.cand_conf, conf)
        else:
            tr.cand_value, tr.cand_count, tr.cand_conf, tr.cand_raw = value, 1, conf, raw
            tr.cand_need = spec.confirm
        tr.cand_need = max(tr.cand_need, spec.confirm + extra)
        if tr.cand_count >= tr.cand_need:
            tr.committed = FieldReading(value=value, confidence=tr.cand_conf, t=frame.t, raw=raw)
            tr.cand_count = 0

    def _read_flashed(self, crop: np.ndarray, spec: FieldSpec) -> tuple[str, float, int]:
        """A flashed box: read ink masks at a few thresholds (OCR of the flashed box itself
        hallucinates, "10%" for "0%"); a text counts when it parses cleanly and either the
        recogniser is sure of it or another look agrees. Returns text, score, looks."""
        seen: dict[Any, float] = {}
        looks = 0
        for level in INK_DISTANCES:
            img = ink_mask(crop, level)
            if spec.pad_aspect:
                img = pad_to_aspect(img, spec.pad_aspect)
            text, score = self.ocr.recognize([img])[0]
            self.stats.ocr_calls += 1
            looks += 1
            parsed = parse(spec.parser, text)
            if parsed.value is None or parsed.confidence < 1.0:
                continue
            if score >= FLASH_SURE or parsed.value in seen:
                return text, min(score, seen.get(parsed.value, score)), looks
            seen[parsed.value] = score
        return "?", 0.0, looks  # something is there, but no look is trustworthy

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
