"""`screen`: the live desktop (one monitor, or a region of it) through mss.

Works wherever mss does: X11 (including Xvfb and XWayland), macOS, Windows. The mss
handle is created and used only on the source's worker thread, because X11 connections
and GDI contexts belong to the thread that opened them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from couchmate.errors import SourceError, UserError
from couchmate.sources.base import Source
from couchmate.sources.sanitize import DEFAULT_MAX_PIXELS, sanitize_frame
from couchmate.types import Frame

_NO_DISPLAY_HINT = (
    "run under a desktop session or Xvfb, e.g. `xvfb-run -s '-screen 0 1280x720x24' couchmate "
    "watch --source screen`, or set DISPLAY to a running X server"
)


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle in pixels, relative to the chosen monitor's top-left corner."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> Region:
        parts = [p.strip() for p in text.split(",")]
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise UserError(
                f"bad region {text!r}", hint="use x,y,w,h in pixels, e.g. --region 0,0,1280,720"
            ) from None
        if x < 0 or y < 0 or w <= 0 or h <= 0:
            raise UserError(
                f"bad region {text!r}: x and y must be >= 0, w and h > 0",
                hint="use x,y,w,h in pixels, e.g. --region 0,0,1280,720",
            )
        return cls(x, y, w, h)


def _display_missing() -> bool:
    # mss on Linux speaks X11 only (a Wayland session provides DISPLAY through XWayland).
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY")


class ScreenSource(Source):
    """Grabs the screen at up to `fps` frames per second.

    `monitor` is mss's numbering: 1 is the first monitor, 0 all monitors together.
    `region` ("x,y,w,h") crops to part of that monitor; one that runs past it is an error.
    """

    kind = "screen"

    def __init__(
        self,
        arg: str = "",
        *,
        monitor: int = 1,
        region: str | None = None,
        fps: float = 10.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__()
        if arg:  # "screen:2" picks monitor 2
            try:
                monitor = int(arg)
            except ValueError:
                raise UserError(
                    f"bad screen spec 'screen:{arg}'", hint="use screen or screen:N (monitor N)"
                ) from None
        if fps <= 0:
            raise UserError(f"fps must be positive, got {fps}")
        if _display_missing():
            raise UserError("no display to capture: DISPLAY is not set", hint=_NO_DISPLAY_HINT)
        self.monitor = monitor
        self.region = Region.parse(region) if region else None
        self.fps = float(fps)
        self.max_pixels = max_pixels
        self.spec = f"screen:{monitor}"
        self.skipped = 0
        self._sct: Any = None
        self._box: dict[str, int] | None = None
        self._closed = False

    def _open(self) -> dict[str, int]:
        """Connect to the display and work out the capture box (worker thread)."""
        import mss

        factory = getattr(mss, "MSS", None) or mss.mss
        try:
            self._sct = factory()
            monitors = self._sct.monitors
        except mss.ScreenShotError as e:
            where = os.environ.get("DISPLAY", "")
            raise UserError(
                f"cannot open the display {where!r} for capture ({e})", hint=_NO_DISPLAY_HINT
            ) from e
        if not 0 <= self.monitor < len(monitors):
            raise UserError(
                f"no monitor {self.monitor}: this desktop has {len(monitors) - 1}",
                hint="monitor 1 is the first; 0 captures all monitors together",
            )
        mon = monitors[self.monitor]
        box = {k: int(mon[k]) for k in ("left", "top", "width", "height")}
        if self.region:
            r = self.region
            w = min(r.w, box["width"] - r.x)
            h = min(r.h, box["height"] - r.y)
            if (w, h) != (r.w, r.h):
                # Clipping quietly would hand the profile a frame of another shape than asked.
                inside = f"; inside it: {r.x},{r.y},{w},{h}" if w > 0 and h > 0 else ""
                raise UserError(
                    f"region {r.x},{r.y},{r.w},{r.h} runs past monitor {self.monitor} "
                    f"({box['width']}x{box['height']}){inside}",
                    hint="region coordinates are relative to the monitor's top-left corner",
                )
            box = {"left": box["left"] + r.x, "top": box["top"] + r.y, "width": w, "height": h}
        return box

    def _grab(self) -> np.ndarray:
        import mss

        if self._sct is None:
            self._box = self._open()
        try:
            shot = self._sct.grab(self._box)
        except mss.ScreenShotError as e:
            raise SourceError(f"screen capture failed ({e})", hint=_NO_DISPLAY_HINT) from e
        bgra = np.frombuffer(shot.bgra, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return sanitize_frame(bgra, self.max_pixels, order="BGR")

    def _release(self) -> None:
        if self._sct is not None:
            self._sct.close()
            self._sct = None

    async def frames(self) -> AsyncIterator[Frame]:
        period = 1.0 / self.fps
        next_due = time.monotonic()
        index = 0
        try:
            while not self._closed:
                delay = next_due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                # Grab time, not return time: the pixels are as old as the grab's start.
                t = time.monotonic()
                image = await self.in_worker(self._grab)
                next_due = max(next_due + period, time.monotonic())
                frame = Frame(image=image, t=t, source=self.spec, index=index)
                frame.timing.mark("captured", t)
                index += 1
                yield frame
        finally:
            self.close()

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            # The display connection must be closed on the thread that opened it, after
            # any grab in flight; so queue the release there instead of cancelling.
            self._pool.submit(self._release)
            self._pool.shutdown(wait=False)
            self._pool = None
