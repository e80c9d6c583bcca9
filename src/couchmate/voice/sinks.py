"""Where speech goes: nowhere (muted, but timed), WAV files, several places at once.

Speakers live in couchmate.voice.device. Every sink runs the same playback clock: audio
handed over while earlier audio is still "playing" is scheduled after it, so a sink
always knows when each line's first sample starts (or, muted, would start) and when the
line is over. With `realtime=False` the clock is skipped: audio counts as played the
moment it arrives (tests, benchmarks, offline rendering).

A line's life: begin(key) → write(chunk)… → drain() → end(cut=False); a cut line is
stop() → end(cut=True) instead, which drops whatever had not been heard yet.
"""

from __future__ import annotations

import asyncio
import re
import time
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from couchmate.voice.base import AudioChunk
from couchmate.voice.wav import resample, write_wav


@dataclass(slots=True)
class LineAudio:
    """What a sink did with one line."""

    key: str
    #: monotonic time the first sample started playing (muted: would have started)
    started: float | None = None
    #: monotonic time the last sample finished (or the cut)
    ended: float | None = None
    samples: int = 0  # samples heard (a cut line: up to the cut)
    sample_rate: int = 0
    cut: bool = False
    path: Path | None = None  # the line's WAV file, for sinks that write one

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0


class AudioSink:
    """Base sink: the playback clock and the line records. Subclasses add an output by
    overriding the `_open`, `_output`, `_drain`, `_stop`, `_finish` and `_close` hooks."""

    def __init__(self, *, realtime: bool = True, history: int = 256) -> None:
        self.realtime = realtime
        #: recent lines, oldest first
        self.history: deque[LineAudio] = deque(maxlen=history)
        self._line: LineAudio | None = None
        self._clock_end = 0.0  # monotonic time the audio handed over so far ends
        self._written = 0  # samples handed over in this line

    # --- the interface the Speaker uses ---------------------------------------------------

    async def begin(self, key: str) -> None:
        """A new line starts; `key` names it (WAV file name, records)."""
        self._line = LineAudio(key=key)
        self._written = 0
        await self._open(self._line)

    async def write(self, chunk: AudioChunk) -> float:
        """Hand over audio; returns the monotonic time its first sample starts playing."""
        line = self._require_line()
        now = time.monotonic()
        start = max(now, self._clock_end) if self.realtime else now
        self._clock_end = start + chunk.duration_s
        if line.started is None:
            line.started = start
            line.sample_rate = chunk.sample_rate
        self._written += len(chunk.pcm)
        await self._output(chunk, start)
        return start

    @property
    def queued_s(self) -> float:
        """Seconds of audio handed over but not yet played (0 when not real-time)."""
        return max(0.0, self._clock_end - time.monotonic()) if self.realtime else 0.0

    async def drain(self) -> None:
        """Wait until everything handed over has been played."""
        if self.realtime:
            delay = self._clock_end - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await self._drain()

    async def stop(self) -> None:
        """Silence now: drop what has not been heard yet."""
        now = time.monotonic()
        self._clock_end = min(self._clock_end, now)
        await self._stop()

    async def end(self, *, cut: bool = False) -> LineAudio:
        """Close the current line and return its record."""
        line = self._require_line()
        now = time.monotonic()
        line.cut = cut
        line.samples = self._written
        if cut and self.realtime and line.started is not None and line.sample_rate:
            heard = int(max(0.0, now - line.started) * line.sample_rate)
            line.samples = min(self._written, heard)
        if line.started is not None:
            line.ended = line.started + line.duration_s if not cut else max(now, line.started)
        await self._finish(line)
        self.history.append(line)
        self._line = None
        return line

    async def aclose(self) -> None:
        if self._line is not None:
            await self.stop()
            await self.end(cut=True)
        await self._close()

    # --- hooks ----------------------------------------------------------------------------

    async def _open(self, line: LineAudio) -> None:
        return None

    async def _output(self, chunk: AudioChunk, start: float) -> None:
        return None

    async def _drain(self) -> None:
        return None

    async def _stop(self) -> None:
        return None

    async def _finish(self, line: LineAudio) -> None:
        return None

    async def _close(self) -> None:
        return None

    def _require_line(self) -> LineAudio:
        if self._line is None:
            raise RuntimeError("no line in progress: call begin() first")
        return self._line


class NullSink(AudioSink):
    """Mute: plays nothing, but keeps the clock, so first-audio times and line lengths are
    what they would have been."""


_SLUG = re.compile(r"[^\w-]+", re.UNICODE)


def _slug(text: str, limit: int = 40) -> str:
    s = _SLUG.sub("-", text.strip().lower()).strip("-")
    return (s[:limit].rstrip("-")) or "line"


class WavSink(AudioSink):
    """Writes each line to its own WAV file in `folder` (0001-<key>.wav, ...) and, with
    `session_file`, the whole session to one WAV whose timeline follows the clock: the
    silence between lines is kept, so it lines up with a screen recording of the session.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        per_line: bool = True,
        session_file: str | None = None,
        realtime: bool = True,
    ) -> None:
        super().__init__(realtime=realtime)
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.per_line = per_line
        self.session_path = self.folder / session_file if session_file else None
        self._count = 0
        self._chunks: list[np.ndarray] = []
        self._session: wave.Wave_write | None = None
        self._session_rate = 0
        self._session_t0 = 0.0  # monotonic time of the session file's first sample
        self._session_samples = 0

    async def _open(self, line: LineAudio) -> None:
        self._chunks = []

    async def _output(self, chunk: AudioChunk, start: float) -> None:
        self._chunks.append(chunk.pcm)

    async def _finish(self, line: LineAudio) -> None:
        chunks, self._chunks = self._chunks, []
        if not chunks or not line.sample_rate or line.started is None:
            return
        pcm = np.concatenate(chunks)[: line.samples]  # a cut line: only what was heard
        if self.per_line:
            self._count += 1
            path = self.folder / f"{self._count:04d}-{_slug(line.key)}.wav"
            line.path = await asyncio.to_thread(write_wav, path, pcm, line.sample_rate)
        if self.session_path is not None:
            await asyncio.to_thread(self._append_session, pcm, line.sample_rate, line.started)

    def _append_session(self, pcm: np.ndarray, rate: int, started: float) -> None:
        if self._session is None:
            # Open for the whole session; aclose() finishes the header.
            self._session = wave.open(str(self.session_path), "wb")  # noqa: SIM115
            self._session.setnchannels(1)
            self._session.setsampwidth(2)
            self._session.setframerate(rate)
            self._session_rate = rate
            self._session_t0 = started
        at = round((started - self._session_t0) * self._session_rate)
        if at > self._session_samples:  # the silence since the last line
            self._session.writeframes(np.zeros(at - self._session_samples, "<i2").tobytes())
            self._session_samples = at
        pcm = resample(pcm, rate, self._session_rate)
        self._session.writeframes(np.asarray(pcm, "<i2").tobytes())
        self._session_samples += len(pcm)

    async def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class TeeSink(AudioSink):
    """Several sinks at once (speakers and a WAV folder). The first one keeps the time."""

    def __init__(self, primary: AudioSink, *others: AudioSink) -> None:
        super().__init__(realtime=primary.realtime)
        self.sinks = (primary, *others)

    @property
    def queued_s(self) -> float:
        return self.sinks[0].queued_s

    async def begin(self, key: str) -> None:
        for s in self.sinks:
            await s.begin(key)

    async def write(self, chunk: AudioChunk) -> float:
        starts = [await s.write(chunk) for s in self.sinks]
        return starts[0]

    async def drain(self) -> None:
        await asyncio.gather(*(s.drain() for s in self.sinks))

    async def stop(self) -> None:
        for s in self.sinks:
            await s.stop()

    async def end(self, *, cut: bool = False) -> LineAudio:
        records = [await s.end(cut=cut) for s in self.sinks]
        self.history.append(records[0])
        return records[0]

    async def aclose(self) -> None:
        for s in self.sinks:
            await s.aclose()
