"""Which game is on screen: each profile's `[detect]` checks against one frame.

Checks, cheapest first: the frame's aspect (a hard requirement), colour signatures (a
share of a region near a colour; microseconds), then anchor words OCR'd from small
regions (~25 ms each, only for profiles whose cheap checks can still pass, each region
recognised once even when several profiles share it). A profile matches when the share
of its checks that pass reaches its `min_score`; the best share wins, ties go to the
profile with more checks. Nothing matches: the generic profile.

The pipeline calls this at start and when the scene changes a lot, not per frame.
"""

from __future__ import annotations

import logging
from difflib import SequenceMatcher

import numpy as np

from couchmate.types import Frame
from couchmate.watch.digits import foreground
from couchmate.watch.ocr import Ocr, shared_ocr
from couchmate.watch.profile import (
    GENERIC,
    AnchorCheck,
    ColorCheck,
    Profile,
    list_profiles,
    load_profile,
)

log = logging.getLogger(__name__)

WORD_MATCH = 0.75  # OCR reads Doom's "ARMS" as "ARHS": close counts


def color_passes(img: np.ndarray, check: ColorCheck, profile: Profile) -> bool:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = profile.pixels(check.region, w, h)
    near = foreground(img[y0:y1, x0:x1], [check.rgb], check.tolerance)
    return float(near.mean()) >= check.min_fraction


def word_matches(text: str, words: list[str]) -> bool:
    t = "".join(ch for ch in text.upper() if ch.isalnum())
    for w in words:
        w = w.upper()
        if w in t or SequenceMatcher(None, t, w).ratio() >= WORD_MATCH:
            return True
    return False


class _AnchorReader:
    """OCR of anchor regions for one frame, each pixel box read once."""

    def __init__(self, img: np.ndarray, ocr: Ocr):
        self.img = img
        self.ocr = ocr
        self._cache: dict[tuple[int, int, int, int], str] = {}

    def text(self, check: AnchorCheck, profile: Profile) -> str:
        h, w = self.img.shape[:2]
        box = profile.pixels(check.region, w, h)
        if box not in self._cache:
            x0, y0, x1, y1 = box
            self._cache[box] = self.ocr.recognize([self.img[y0:y1, x0:x1]])[0][0]
        return self._cache[box]


def score_profile(
    img: np.ndarray, profile: Profile, anchors: _AnchorReader
) -> tuple[float, int] | None:
    """(share of checks passed, number of checks), or None when it cannot match."""
    d = profile.detect
    if d is None:
        return None
    h, w = img.shape[:2]
    if d.aspect is not None and not d.aspect[0] <= w / h <= d.aspect[1]:
        return None
    total = len(d.colors) + len(d.anchors)
    if total == 0:
        return None
    passed = sum(color_passes(img, c, profile) for c in d.colors)
    # give up before any OCR when even all anchors passing would not be enough
    if (passed + len(d.anchors)) / total < d.min_score:
        return None
    for a in d.anchors:
        passed += word_matches(anchors.text(a, profile), a.words)
    share = passed / total
    return (share, total) if share >= d.min_score else None


def detect_profile(
    frame: Frame | np.ndarray,
    candidates: list[Profile | str] | None = None,
    *,
    ocr: Ocr | None = None,
) -> Profile:
    """The profile whose `[detect]` checks best match this frame; `generic` if none does."""
    img = frame.image if isinstance(frame, Frame) else frame
    profiles = (
        [load_profile(c) if isinstance(c, str) else c for c in candidates]
        if candidates is not None
        else list_profiles()
    )
    anchors = _AnchorReader(img, ocr or shared_ocr())
    best: tuple[float, int] | None = None
    chosen: Profile | None = None
    for p in profiles:
        if p.name == GENERIC:
            continue
        s = score_profile(img, p, anchors)
        if s is not None and (best is None or s > best):
            best, chosen = s, p
    if chosen is None:
        log.info("no profile matches this %dx%d frame: generic", img.shape[1], img.shape[0])
        return load_profile(GENERIC)
    log.info("detected %s (checks passed %.0f%% of %d)", chosen.name, best[0] * 100, best[1])
    return chosen
