"""The change gate: which frames are worth reading.

Most frames are near-duplicates of the last one that was read. The gate looks at a small
grayscale copy of each frame (strided, then area-averaged: about 160 px wide) and keeps a
frame when

- it is the first one (`first`),
- the picture changed against the last keyframe by more than an adaptive threshold
  (`scene`): the threshold follows the median frame-to-frame motion of the last few
  seconds, so a busy game (everything moves) gives a keyframe every few frames instead of
  every frame, while a calm menu (nothing moves) keeps any visible change,
- one of the profile's HUD regions changed at native resolution (`hud`): a one-digit HUD
  change is a few dozen pixels and would vanish in the small copy,
- or nothing was read for `max_interval_s` (`interval`), so a slow drift is read anyway.

It also raises two signals the pipeline turns into events: `scene_change` and `idle`
(nothing changed for `idle_after_s`). A scene change is a frame whose brightness histogram
moved far from the last keyframe's (a cut, a menu, another game; also a frame of another
size), rate-limited by a cooldown. With a profile, the HUD must have gone too: walking from a
dark room into a lit one or a red damage flash moves the histogram of a Doom frame as much
as a cut does, but its status bar is still there (`_same_hud`). Cost: well under 2 ms per
1280x720 frame on one core (`couchmate bench perception` reports the figure).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from couchmate.types import Frame

#: (field, x0, y0, x1, y1) in pixels of the frame, as Profile.regions(w, h) returns them
Region = tuple[str, int, int, int, int]
RegionsFn = Callable[[int, int], Sequence[Region]]

SMALL_WIDTH = 160


@dataclass(slots=True)
class GateDecision:
    """What the gate made of one frame, and why."""

    keep: bool
    #: "first" | "scene" | "hud" | "interval" | a forced reason ("confirm") | "" (dropped)
    reason: str
    #: mean absolute change of the small gray copy against the last keyframe (0..255)
    score: float
    #: the adaptive threshold `score` was held against
    threshold: float
    #: mean absolute change against the previous frame (0..255): the pace of the game
    motion: float
    #: HUD fields whose region changed at native resolution
    hud_fields: tuple[str, ...] = ()
    #: the picture changed as a whole (histogram distance), rate-limited by a cooldown
    scene_change: bool = False
    #: True on the one frame where the screen became idle (nothing changed for a while)
    idle: bool = False
    #: the histogram distance against the last keyframe (0..1)
    scene_distance: float = 0.0
    #: time spent deciding, in milliseconds
    ms: float = 0.0


def small_gray(image: np.ndarray, width: int = SMALL_WIDTH) -> np.ndarray:
    """A ~`width`-px grayscale copy: stride down to at most 2x the target, then area-average.

    Striding first keeps the cost independent of the input size; the area step removes most
    of the aliasing striding alone would leave.
    """
    h, w = image.shape[:2]
    step = max(1, w // (2 * width))
    if step > 1:
        image = image[::step, ::step]
    sh = max(1, round(width * h / w))
    small = cv2.resize(image, (width, sh), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return small


def _gray(crop: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return g.ravel().astype(np.float32)


def _histogram(gray: np.ndarray) -> np.ndarray:
    h = np.bincount((gray >> 3).ravel(), minlength=32).astype(np.float32)
    return h / max(1.0, float(h.sum()))


class KeyframeGate:
    """Decides per frame whether it goes on to perception. One gate per stream (stateful)."""

    def __init__(
        self,
        *,
        max_interval_s: float = 1.0,
        regions: RegionsFn | None = None,
        sensitivity: float = 3.0,
        min_threshold: float = 1.0,
        max_threshold: float = 40.0,
        window_s: float = 3.0,
        hud_pixel_delta: int = 40,
        hud_min_values: int = 4,  # channel values (R, G or B of one pixel) past the delta
        scene_distance: float = 0.4,
        scene_min_score: float = 12.0,
        scene_cooldown_s: float = 2.0,
        hud_same_ncc: float = 0.5,
        idle_after_s: float = 10.0,
        idle_motion: float = 0.5,
    ):
        self.max_interval_s = max_interval_s
        self.sensitivity = sensitivity
        self.min_threshold = min_threshold
        self.max_threshold = max_threshold
        self.window_s = window_s
        self.hud_pixel_delta = hud_pixel_delta
        self.hud_min_values = hud_min_values
        self.scene_distance = scene_distance
        self.scene_min_score = scene_min_score
        self.scene_cooldown_s = scene_cooldown_s
        self.hud_same_ncc = hud_same_ncc
        self.idle_after_s = idle_after_s
        self.idle_motion = idle_motion
        self._regions_fn = regions
        self._regions_for: tuple[int, int] | None = None
        self._regions: list[Region] = []
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame is `first`."""
        self._key_small: np.ndarray | None = None
        self._key_hist: np.ndarray | None = None
        self._key_hud: dict[str, np.ndarray] = {}
        self._key_t = 0.0
        self._prev_small: np.ndarray | None = None
        self._motions: deque[tuple[float, float]] = deque()
        self._last_scene_t = -1e18
        self._last_change_t: float | None = None
        self._idle = False

    def set_regions(self, regions: RegionsFn | None) -> None:
        """Watch these HUD regions from now on (a new profile was detected)."""
        self._regions_fn = regions
        self._regions_for = None
        self._key_hud = {}

    def _regions_of(self, w: int, h: int) -> list[Region]:
        if self._regions_fn is None:
            return []
        if self._regions_for != (w, h):
            self._regions = [
                (name, max(0, x0), max(0, y0), min(w, x1), min(h, y1))
                for name, x0, y0, x1, y1 in self._regions_fn(w, h)
                if x1 > x0 and y1 > y0
            ]
            self._regions_for = (w, h)
        return self._regions

    def _threshold(self, t: float, motion: float) -> float:
        self._motions.append((t, motion))
        while self._motions and self._motions[0][0] < t - self.window_s:
            self._motions.popleft()
        pace = float(np.median([m for _, m in self._motions]))
        return min(self.max_threshold, max(self.min_threshold, self.sensitivity * pace))

    def _hud_changes(self, image: np.ndarray) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
        h, w = image.shape[:2]
        crops: dict[str, np.ndarray] = {}
        changed: list[str] = []
        for name, x0, y0, x1, y1 in self._regions_of(w, h):
            crop = image[y0:y1, x0:x1]
            crops[name] = crop
            old = self._key_hud.get(name)
            if old is None or old.shape != crop.shape:
                changed.append(name)
                continue
            # Channel values that moved by more than the delta; a 2-D view lets OpenCV count
            # them in one pass (much cheaper than a numpy max over the channel axis).
            diff = cv2.absdiff(crop, old).reshape(crop.shape[0], -1)
            _, moved = cv2.threshold(diff, self.hud_pixel_delta, 255, cv2.THRESH_BINARY)
            if cv2.countNonZero(moved) >= self.hud_min_values:
                changed.append(name)
        return tuple(changed), crops

    def _same_hud(self, crops: dict[str, np.ndarray]) -> bool:
        """Is the profile's HUD still on screen, as on the last keyframe?

        Normalized cross-correlation of the HUD boxes in gray: a damage flash or a new
        palette tints them (NCC stays high), a changed digit moves it a little, another
        screen (a menu, an intermission, another game) drops it near zero.
        """
        names = [
            n for n in crops if n in self._key_hud and crops[n].shape == self._key_hud[n].shape
        ]
        if not names:
            return False
        a = np.concatenate([_gray(crops[n]) for n in names])
        b = np.concatenate([_gray(self._key_hud[n]) for n in names])
        a -= a.mean()
        b -= b.mean()
        denom = float(np.sqrt(float(a @ a) * float(b @ b)))
        return denom > 0 and float(a @ b) / denom >= self.hud_same_ncc

    def check(self, frame: Frame, *, force: str = "") -> GateDecision:
        """Decide on one frame (uses `frame.t`, so replays decide as the live run did).

        `force`: keep the frame with this reason when nothing else would (the reader asks
        for the next frame to confirm a changed value).
        """
        t0 = time.perf_counter()
        t = frame.t
        small = small_gray(frame.image)
        prev = self._prev_small
        motion = 0.0
        if prev is not None and prev.shape == small.shape:
            motion = float(cv2.absdiff(small, prev).mean())
        self._prev_small = small
        threshold = self._threshold(t, motion)
        hud_fields, crops = self._hud_changes(frame.image)

        key = self._key_small
        if key is None or key.shape != small.shape:
            # The first frame, or the picture changed shape (another window, another game):
            # nothing to compare with, and the latter is a scene change by any measure.
            resized = key is not None
            self._remember(t, small, crops)
            self._last_change_t = t
            self._idle = False
            if resized:
                self._last_scene_t = t
            return GateDecision(
                keep=True,
                reason="scene" if resized else "first",
                score=255.0,
                threshold=threshold,
                motion=motion,
                hud_fields=hud_fields,
                scene_change=resized,
                scene_distance=1.0 if resized else 0.0,
                ms=(time.perf_counter() - t0) * 1000.0,
            )

        score = float(cv2.absdiff(small, key).mean())
        hist = _histogram(small)
        scene_dist = 0.5 * float(np.abs(hist - self._key_hist).sum())
        scene_change = (
            scene_dist >= self.scene_distance
            and score >= self.scene_min_score
            and t - self._last_scene_t >= self.scene_cooldown_s
            and not self._same_hud(crops)
        )
        if scene_change:
            self._last_scene_t = t

        idle = False
        if motion > self.idle_motion or hud_fields or self._last_change_t is None:
            self._last_change_t = t
            self._idle = False
        elif not self._idle and t - self._last_change_t >= self.idle_after_s:
            self._idle = idle = True

        if scene_change or score >= threshold:
            reason = "scene"
        elif hud_fields:
            reason = "hud"
        elif t - self._key_t >= self.max_interval_s:
            reason = "interval"
        else:
            reason = force
        if reason:
            self._remember(t, small, crops, hist)
        return GateDecision(
            keep=bool(reason),
            reason=reason,
            score=score,
            threshold=threshold,
            motion=motion,
            hud_fields=hud_fields,
            scene_change=scene_change,
            idle=idle,
            scene_distance=scene_dist,
            ms=(time.perf_counter() - t0) * 1000.0,
        )

    def _remember(
        self,
        t: float,
        small: np.ndarray,
        crops: dict[str, np.ndarray],
        hist: np.ndarray | None = None,
    ) -> None:
        self._key_small = small
        self._key_hist = _histogram(small) if hist is None else hist
        # Copies: the crops are views into a frame the caller may reuse.
        self._key_hud = {name: crop.copy() for name, crop in crops.items()}
        self._key_t = t


def gate_cost_ms(
    frames: Sequence[np.ndarray],
    *,
    width: int = 1280,
    height: int = 720,
    regions: RegionsFn | None = None,
) -> dict[str, Any]:
    """Time `KeyframeGate.check` on `frames` resized to width x height, OpenCV on one thread.

    Returns wall-clock p50/p95/max in milliseconds, and under "cpu" the same for the
    thread's CPU time (on a busy machine the wall clock also counts time spent preempted).
    Used by `couchmate bench perception`.
    """
    from couchmate.bench.stats import percentiles

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        sized = [cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames]
        gate = KeyframeGate(regions=regions)
        wall: list[float] = []
        cpu: list[float] = []
        for i, img in enumerate(sized):
            frame = Frame(image=img, t=i / 35.0, source="bench", index=i)
            c0, t0 = time.thread_time(), time.perf_counter()
            gate.check(frame)
            wall.append((time.perf_counter() - t0) * 1000.0)
            cpu.append((time.thread_time() - c0) * 1000.0)
    finally:
        cv2.setNumThreads(threads)
    return {**percentiles(wall), "cpu": percentiles(cpu)}
