"""What the game-engine sources (Doom, Atari) share: stepping an engine on the worker thread,
pacing it to the game's clock, and closing it on that same thread.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from couchmate.errors import UserError
from couchmate.sources.base import Source
from couchmate.types import Frame

_FALL_BEHIND_S = 0.5  # realtime: further behind than this, stop trying to catch up


def missing_engine(name: str) -> UserError:
    """The error for a game engine package that is not installed (an optional extra)."""
    return UserError(
        f"{name} is not installed, so this source cannot run",
        hint="install the game engines: pip install 'couchmate[games]'",
    )


class EngineSource(Source):
    """A source that steps an emulator or game engine and knows the truth of each frame.

    Subclasses implement `_open`, `_step` and `_close_engine`; all three run on the
    source's single worker thread, the only thread that ever touches the engine.
    """

    has_truth = True
    #: the game's own clock: steps per second when every frame is kept
    native_rate: float = 60.0

    def __init__(
        self,
        spec: str,
        *,
        realtime: bool = True,
        seed: int = 0,
        max_frames: int | None = None,
        frame_skip: int = 1,
    ):
        super().__init__()
        if frame_skip < 1:
            raise UserError(f"frame_skip must be 1 or more, not {frame_skip}")
        if max_frames is not None and max_frames < 0:
            raise UserError(f"max_frames must be 0 or more, not {max_frames}")
        self.spec = spec
        self.realtime = realtime
        self.seed = seed
        self.max_frames = max_frames
        self.frame_skip = frame_skip
        self.fps = self.native_rate / frame_skip
        self._closed = False

    @property
    def name(self) -> str:
        return self.spec

    async def frames(self) -> AsyncIterator[Frame]:
        """One frame per `frame_skip` engine steps, paced to the game's clock if realtime.

        Timestamps are taken when the engine hands over the frame, so when this source
        falls behind (slow machine) the gaps show it; it does not burst to catch up.
        """
        if self._closed or self.max_frames == 0:
            self.close()
            return
        period = self.frame_skip / self.native_rate
        try:
            await self.in_worker(self._open)
            index = 0
            deadline: float | None = None
            while not self._closed and (self.max_frames is None or index < self.max_frames):
                if self.realtime:
                    now = time.monotonic()
                    deadline = now if deadline is None else deadline
                    if deadline > now:
                        await asyncio.sleep(deadline - now)
                    elif now - deadline > _FALL_BEHIND_S:
                        deadline = now
                    deadline += period
                if self._closed:
                    break
                image, t, truth = await self.in_worker(self._step)
                frame = Frame(image=image, t=t, source=self.spec, index=index, truth=truth)
                frame.timing.mark("captured", t)
                index += 1
                yield frame
        finally:
            self.close()

    def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            # Queued behind a step that may still be running: the engine closes on its
            # own thread, and nothing is cancelled half-way.
            pool.submit(self._close_engine)
            pool.shutdown(wait=False)

    @abstractmethod
    def _open(self) -> None:
        """Start the engine (worker thread)."""

    @abstractmethod
    def _step(self) -> tuple[np.ndarray, float, dict[str, Any]]:
        """Advance `frame_skip` steps; return (RGB image, time.monotonic() at capture, truth)."""

    @abstractmethod
    def _close_engine(self) -> None:
        """Free the engine (worker thread); must be safe to call when it never opened."""
