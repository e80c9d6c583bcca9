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
from couchmate.watch.profile import FieldSpec, Profile, to_pixels

log = logging.getLogger(__name__)

# Fingerprints: grey levels on a coarse grid; a box has changed when more than this share
# of its grid points moved by more than DIFF_LEVEL (absorbs video noise, not a new digit).
DIFF_LEVEL = 24
DIFF_SHARE = 0.004


def fingerprint(crop: np.ndarray) -> np.ndarray:
    step = max(1, min(crop.shape[0], crop.shape[1]) // 24)
    sub = crop[::step, ::step]
    return (sub[..., 0].astype(np.int16) * 3 + sub[..., 1] * 4 + sub[..., 2]) >> 3


def same_pixels(a: np.ndarray | None, b: np.ndarray) -> bool:
    if a is None or a.shape != b.shape:
        return False
    moved = np.count_nonzero(np.abs(a - b) > DIFF_LEVEL)
    return moved <= max(0, int(DIFF_SHARE * a.size))


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
        for name, spec in self.profile.fields.items():
            tr = self._tracks[name]
            x0, y0, x1, y1 = to_pixels(spec.region, w, h)
            crop = img[y0:y1, x0:x1]
            fp = fingerprint(crop)
            if self.skip_unchanged and tr.last_obs is not None and same_pixels(tr.last_print, fp):
                self.stats.boxes_skipped += 1
                self._observe(tr, spec, *tr.last_obs, frame)
                continue
            if frame.t - tr.last_read_t < spec.min_interval_s:
                continue
            prints[name] = fp
            self.stats.boxes_read += 1
            self.stats.per_kind[spec.reader] = self.stats.per_kind.get(spec.reader, 0) + 1
            if spec.reader == "ocr":
                to_ocr.append((name, crop))
            else:
                observed[name] = self._single[spec.reader](crop, spec)
        if to_ocr:
            results = self.ocr.recognize([c for _, c in to_ocr])
            self.stats.ocr_calls += 1
            observed.update({n: r for (n, _), r in zip(to_ocr, results, strict=True)})
        for name, (text, score) in observed.items():
            spec, tr = self.profile.fields[name], self._tracks[name]
            value, conf = self._interpret(spec, text, score)
            tr.last_print = prints[name]
            tr.last_obs = (value, conf, text)
            tr.last_read_t = frame.t
            self._observe(tr, spec, value, conf, text, frame)
        frame.timing.mark("read")
        state = GameState(
            game=self.profile.name,
            t=frame.t,
            fields={n: tr.committed for n, tr in self._tracks.items() if tr.committed},
            frame_index=frame.index,
            timing=frame.timing.copy(),
        )
        return state

    def _interpret(self, spec: FieldSpec, text: str, score: float) -> tuple[Any, float]:
        if not text.strip() and spec.blank is not None:
            return spec.blank, score if score > 0 else 1.0
        parsed = parse(spec.parser, text)
        value, conf = parsed.value, parsed.confidence * score
        if value is None or conf < spec.min_confidence:
            return None, conf
        too_low = spec.min is not None and isinstance(value, int | float) and value < spec.min
        too_high = spec.max is not None and isinstance(value, int | float) and value > spec.max
        if too_low or too_high:
            return None, 0.0  # implausible: a misread, not a reading
        return value, conf

    def _observe(
        self, tr: _Track, spec: FieldSpec, value: Any, conf: float, raw: str, frame: Frame
    ) -> None:
        if value is None:
            return  # unreadable this time: keep what we know, confirm nothing
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
        if tr.cand_count >= spec.confirm:
            tr.committed = FieldReading(value=value, confidence=tr.cand_conf, t=frame.t, raw=raw)
            tr.cand_count = 0

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
