"""The last few seconds of keyframes, kept as a clip for vision models.

The mind sends clips, not single stills: a death makes sense only with the seconds before
it. The buffer keeps keyframes of the last `seconds` (measured on frame time), stores large
frames downscaled so memory stays bounded, and never holds more than `max_frames` (past
that it thins the clip evenly rather than shortening it).
"""

from __future__ import annotations

import threading
from collections import deque

import cv2
import numpy as np

from couchmate.types import Frame


class ClipBuffer:
    """A ring buffer of keyframes. The pipeline adds from its gate thread while consumers
    take clips on the event loop, so both sides hold a lock (held for microseconds)."""

    def __init__(self, seconds: float = 8.0, *, max_frames: int = 64, max_side: int = 640):
        if seconds <= 0 or max_frames <= 0 or max_side <= 0:
            raise ValueError("seconds, max_frames and max_side must be positive")
        self.seconds = seconds
        self.max_frames = max_frames
        self.max_side = max_side
        self._frames: deque[Frame] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(f.image.nbytes for f in self._frames)

    def add(self, frame: Frame) -> None:
        """Keep `frame` (a downscaled copy when it is larger than `max_side`)."""
        small = self._shrunk(frame)
        with self._lock:
            self._frames.append(small)
            while self._frames and self._frames[0].t < frame.t - self.seconds:
                self._frames.popleft()
            while len(self._frames) > self.max_frames:
                self._thin()

    def _thin(self) -> None:
        """Drop the frame whose neighbours are closest: the clip keeps its whole time span
        (oldest and newest stay) and gets evenly sparser instead of shorter."""
        f = self._frames
        if len(f) <= 2:
            f.popleft()
            return
        best = min(range(1, len(f) - 1), key=lambda i: f[i + 1].t - f[i - 1].t)
        del f[best]

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    def _shrunk(self, frame: Frame) -> Frame:
        h, w = frame.image.shape[:2]
        scale = self.max_side / max(h, w)
        if scale >= 1.0:
            image = frame.image
        else:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
        return Frame(
            image=image,
            t=frame.t,
            source=frame.source,
            index=frame.index,
            timing=frame.timing.copy(),
            truth=frame.truth,
        )

    def clip(self, seconds: float | None = None, max_frames: int | None = None) -> list[Frame]:
        """Up to `max_frames` keyframes spread evenly in time over the last `seconds`.

        The newest keyframe is always included; frames come oldest first.
        """
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return []
        newest = frames[-1].t
        span = self.seconds if seconds is None else min(seconds, self.seconds)
        window = [f for f in frames if f.t >= newest - span]
        k = len(window) if max_frames is None else max(1, min(max_frames, len(window)))
        if k >= len(window):
            return window
        times = np.array([f.t for f in window])
        targets = np.linspace(times[0], times[-1], k)
        picked: list[int] = []
        for target in targets:
            # The nearest frame not picked yet keeps the clip at exactly k frames.
            order = np.argsort(np.abs(times - target), kind="stable")
            picked.append(next(int(i) for i in order if int(i) not in picked))
        return [window[i] for i in sorted(picked)]
