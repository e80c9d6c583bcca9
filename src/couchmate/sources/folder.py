"""`dir:PATH`: a folder of screenshots (png, jpg, webp, bmp) played as a frame stream.

Files play in natural name order (frame2 before frame10). A file that cannot be read
(zero bytes, truncated, corrupt, absurdly large) is logged, counted in `skipped` and passed
over; the rest go on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from couchmate.errors import BadFrameError, UserError
from couchmate.sources.base import Source
from couchmate.sources.sanitize import DEFAULT_MAX_PIXELS, load_image
from couchmate.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: frame2 < frame10 < Frame11."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.casefold()) for p in parts if p)


def list_images(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: (natural_key(p.name), p.name))


class FolderSource(Source):
    """Images from a folder, in natural name order.

    `fps` paces the frames when `realtime` is on; otherwise they come as fast as they
    decode. `loop` starts over at the end.
    """

    kind = "dir"

    def __init__(
        self,
        path: str = "",
        *,
        fps: float = 10.0,
        realtime: bool = True,
        loop: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__()
        if not path:
            raise UserError("dir: needs a folder", hint="use dir:PATH, e.g. dir:./screenshots")
        if fps <= 0:
            raise UserError(f"fps must be positive, got {fps}")
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise UserError(f"folder not found: {self.path}", hint="check the path")
        if not self.path.is_dir():
            raise UserError(
                f"not a folder: {self.path}",
                hint="a single video file is `video:PATH`; an image folder is `dir:PATH`",
            )
        self.files = list_images(self.path)
        if not self.files:
            raise UserError(
                f"no images in {self.path}",
                hint=f"put {', '.join(sorted(IMAGE_SUFFIXES))} files there",
            )
        self.fps = float(fps)
        self.realtime = realtime
        self.offline = not realtime
        self.loop = loop
        self.max_pixels = max_pixels
        self.spec = f"dir:{path}"
        #: images that could not be read (each one logged once per pass)
        self.skipped = 0
        self._closed = False

    def _load(self, path: Path) -> np.ndarray | BadFrameError:
        try:
            return load_image(path, self.max_pixels)
        except BadFrameError as e:
            return e

    async def frames(self) -> AsyncIterator[Frame]:
        index = 0
        period = 1.0 / self.fps
        next_due = start = time.monotonic()
        while not self._closed:
            yielded_this_pass = 0
            for path in self.files:
                if self._closed:
                    return
                image = await self.in_worker(self._load, path)
                if isinstance(image, BadFrameError):
                    self.skipped += 1
                    log.warning("skipping image: %s", image.message)
                    continue
                if self.realtime:
                    delay = next_due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    # Fell behind (slow decode): restart the schedule instead of bursting.
                    next_due = max(next_due + period, time.monotonic())
                handed = time.monotonic()
                # Flat out, frames are `fps` apart on their own clock, the same every run.
                t = handed if self.realtime else start + index * period
                frame = Frame(image=image, t=t, source=self.spec, index=index)
                frame.timing.mark("captured", handed)
                index += 1
                yielded_this_pass += 1
                yield frame
            if yielded_this_pass == 0:
                raise UserError(
                    f"none of the {len(self.files)} images in {self.path} could be read",
                    hint="the log names each file and why",
                )
            if not self.loop:
                return

    def close(self) -> None:
        self._closed = True
        super().close()
