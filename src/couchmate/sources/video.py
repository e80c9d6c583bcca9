"""`video:PATH`: any file PyAV (FFmpeg) can decode, played as a frame stream.

Real-time mode paces frames by the stream's own timestamps, so a recording behaves like
the live screen it came from; fast mode decodes as fast as it can (benchmarks, tests).
A damaged file plays what can be decoded: bad packets and frames are skipped and counted,
a cut-off file ends where the data ends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import numpy as np

from couchmate.errors import BadFrameError, UserError
from couchmate.sources.base import Source
from couchmate.sources.sanitize import DEFAULT_MAX_PIXELS, fit_size, sanitize_frame
from couchmate.types import Frame

log = logging.getLogger(__name__)

_NOT_A_VIDEO_HINT = (
    "point video: at a file FFmpeg can play (mp4, mkv, webm, mov, avi, ...); "
    "an MP4 that was cut short loses its index and cannot be opened"
)


class _Decoder:
    """The open container. Every call runs on the source's worker thread; the lock lets
    `close()` from any other thread wait out a decode in progress instead of racing it."""

    def __init__(self, path: Path, max_pixels: int, loop: bool):
        self.path = path
        self.loop = loop
        self.skipped = 0
        self.demux_errors = 0
        self._lock = threading.Lock()
        try:
            self.container = av.open(str(path))
        except av.error.FFmpegError as e:
            raise UserError(
                f"{path}: not a video file FFmpeg can open ({e.strerror or e})",
                hint=_NOT_A_VIDEO_HINT,
            ) from e
        if not self.container.streams.video:
            self.container.close()
            raise UserError(f"{path}: the file has no video stream", hint=_NOT_A_VIDEO_HINT)
        self.stream = self.container.streams.video[0]
        self.max_pixels = max_pixels
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else None
        self._frames: Iterator[tuple[np.ndarray, float | None, int]] | None = None
        self._closed = False

    def _decode_pass(self) -> Iterator[tuple[np.ndarray, float | None]]:
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                # The demuxer gave up (cut-off or mangled container): end of the usable data.
                self.demux_errors += 1
                log.warning("%s: stopped reading at a damaged spot (%s)", self.path, e)
                return
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                self.skipped += 1
                continue
            for frame in decoded:
                try:
                    yield self._to_rgb(frame), frame.time
                except (av.error.FFmpegError, ValueError, BadFrameError):
                    self.skipped += 1

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = fit_size(frame.width, frame.height, self.max_pixels)
        if (w, h) != (frame.width, frame.height):
            # swscale shrinks oversized video before it ever exists as full-size RGB.
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
        else:
            rgb = frame.to_ndarray(format="rgb24")
        return sanitize_frame(rgb, self.max_pixels)

    def _all(self) -> Iterator[tuple[np.ndarray, float | None, int]]:
        lap = 0
        while True:
            n = 0
            for rgb, pts in self._decode_pass():
                n += 1
                yield rgb, pts, lap
            if not self.loop or n == 0:
                return
            try:
                self.container.seek(0)
            except av.error.FFmpegError as e:
                log.warning("%s: cannot rewind to loop (%s)", self.path, e)
                return
            lap += 1

    def read(self) -> tuple[np.ndarray, float | None, int] | None:
        """The next (rgb, pts in seconds, lap number), or None at the end."""
        with self._lock:
            if self._closed:
                return None
            if self._frames is None:
                self._frames = self._all()
            return next(self._frames, None)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.container.close()


class VideoSource(Source):
    """Frames from a video file. `realtime` paces by timestamps; `loop` starts over."""

    kind = "video"

    def __init__(
        self,
        path: str = "",
        *,
        realtime: bool = True,
        loop: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__()
        if not path:
            raise UserError("video: needs a file", hint="use video:PATH, e.g. video:run.mp4")
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise UserError(f"video file not found: {self.path}", hint="check the path")
        if self.path.is_dir():
            raise UserError(
                f"{self.path} is a folder", hint="an image folder is `dir:PATH`, not `video:`"
            )
        self.realtime = realtime
        self.offline = not realtime
        self.loop = loop
        self.spec = f"video:{path}"
        # Opening reads only the header (milliseconds), so a bad file fails here, early.
        self._decoder = _Decoder(self.path, max_pixels, loop)
        self.fps = self._decoder.fps

    @property
    def skipped(self) -> int:
        """Packets or frames that could not be decoded and were passed over."""
        return self._decoder.skipped

    async def frames(self) -> AsyncIterator[Frame]:
        index = 0
        period = 1.0 / self.fps if self.fps else 1.0 / 30.0
        clock0: float | None = None  # monotonic time the pacing clock started
        pts0 = 0.0  # stream time at clock0
        last_pts = 0.0
        lap = 0
        while True:
            item = await self.in_worker(self._decoder.read)
            if item is None:
                break
            rgb, pts, item_lap = item
            if item_lap != lap:
                lap, clock0 = item_lap, None  # rewound: restart the pacing clock
            # Missing or backwards timestamps (damaged streams): assume one frame period.
            if pts is None or (clock0 is not None and pts <= last_pts):
                pts = last_pts + period
            if self.realtime:
                if clock0 is None:
                    clock0, pts0 = time.monotonic(), pts
                delay = clock0 + (pts - pts0) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif clock0 is None:
                clock0, pts0 = time.monotonic(), pts
            last_pts = pts
            handed = time.monotonic()
            # Flat out, a frame's time is the stream's: rules that count seconds (the gate's
            # keyframe interval, event debounces) then decide the same on every run.
            t = handed if self.realtime else clock0 + (pts - pts0)
            frame = Frame(image=rgb, t=t, source=self.spec, index=index)
            frame.timing.mark("captured", handed)
            index += 1
            yield frame
        if self._decoder.skipped or self._decoder.demux_errors:
            log.warning(
                "%s: skipped %d undecodable packets/frames; played %d frames",
                self.path,
                self._decoder.skipped,
                index,
            )

    def close(self) -> None:
        self._decoder.close()
        super().close()
