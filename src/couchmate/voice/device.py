"""The speakers: `sounddevice` when it is installed, else a player subprocess fed raw PCM
on stdin (paplay, aplay, or sox's `play`).

No sound card, no audio server, a player that dies: the sink warns once and carries on
muted, keeping the playback clock, so the companion's timing does not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass

from couchmate.errors import VoiceError
from couchmate.voice.base import AudioChunk
from couchmate.voice.sinks import AudioSink, LineAudio

log = logging.getLogger(__name__)


class _Output(ABC):
    """One line's worth of audio going to the device."""

    @abstractmethod
    async def write(self, pcm: bytes) -> None: ...

    @abstractmethod
    async def drain(self) -> None:
        """Play out what was written, then release the device. Raises OSError on failure."""

    @abstractmethod
    async def stop(self) -> None:
        """Silence at once and release the device."""


@dataclass(frozen=True, slots=True)
class PipePlayer:
    """A command that plays raw s16le mono PCM from stdin at {rate}."""

    name: str
    args: tuple[str, ...]

    def available(self) -> bool:
        return shutil.which(self.name) is not None

    async def open(self, rate: int) -> _Output:
        cmd = [shutil.which(self.name) or self.name, *(a.format(rate=rate) for a in self.args)]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return _PipeOutput(self.name, proc)


class _PipeOutput(_Output):
    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc

    async def _failure(self) -> OSError:
        err = b""
        if self.proc.stderr is not None:
            with contextlib.suppress(TimeoutError):
                err = await asyncio.wait_for(self.proc.stderr.read(), 1.0)
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        return OSError(f"{self.name}: {lines[-1] if lines else 'exited early'}")

    async def write(self, pcm: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(pcm)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await self.proc.wait()
            raise await self._failure() from None

    async def drain(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.close()
        if await self.proc.wait() != 0:
            raise await self._failure()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class SoundDevicePlayer:
    """PortAudio through the `sounddevice` package (used only when it is installed)."""

    name = "sounddevice"

    def available(self) -> bool:
        return importlib.util.find_spec("sounddevice") is not None

    async def open(self, rate: int) -> _Output:
        import sounddevice as sd

        def start() -> object:
            stream = sd.RawOutputStream(samplerate=rate, channels=1, dtype="int16")
            stream.start()
            return stream

        try:
            stream = await asyncio.to_thread(start)
        except sd.PortAudioError as e:
            raise OSError(f"sounddevice: {e}") from e
        return _SoundDeviceOutput(stream)


class _SoundDeviceOutput(_Output):
    def __init__(self, stream: object) -> None:
        self.stream = stream

    async def _call(self, method: str, *args: object) -> None:
        import sounddevice as sd

        try:
            await asyncio.to_thread(getattr(self.stream, method), *args)
        except sd.PortAudioError as e:
            raise OSError(f"sounddevice: {e}") from e

    async def write(self, pcm: bytes) -> None:
        await self._call("write", pcm)

    async def drain(self) -> None:
        await self._call("stop")  # stop() plays out the queued buffers first
        await self._call("close")

    async def stop(self) -> None:
        await self._call("abort")
        await self._call("close")


#: Tried in this order when no player is named.
PLAYERS: dict[str, PipePlayer | SoundDevicePlayer] = {
    "sounddevice": SoundDevicePlayer(),
    "paplay": PipePlayer("paplay", ("--raw", "--format=s16le", "--rate={rate}", "--channels=1")),
    "aplay": PipePlayer("aplay", ("-q", "-t", "raw", "-f", "S16_LE", "-r", "{rate}", "-c", "1")),
    "play": PipePlayer(
        "play", ("-q", "-t", "raw", "-r", "{rate}", "-e", "signed", "-b", "16", "-c", "1", "-")
    ),
}

_DRAIN_SLACK_S = 5.0
_NO_SOUND_HINT = (
    "install sounddevice (pip install sounddevice), or PulseAudio/PipeWire (paplay), "
    "ALSA (aplay) or sox (play); or use --mute / --audio-out DIR"
)


class DeviceSink(AudioSink):
    """Plays lines on the speakers. `player` picks one of PLAYERS; default: the first found.

    Without a working device it warns once (`self.failure` says why) and stays muted,
    still keeping time like NullSink.
    """

    def __init__(self, player: str | None = None) -> None:
        super().__init__(realtime=True)
        if player is not None:
            if player not in PLAYERS:
                raise VoiceError(
                    f"unknown audio player {player!r}", hint=f"known: {', '.join(PLAYERS)}"
                )
            chosen = PLAYERS[player] if PLAYERS[player].available() else None
        else:
            chosen = next((p for p in PLAYERS.values() if p.available()), None)
        self.player = chosen
        self.failure: str | None = None
        self._out: _Output | None = None
        if chosen is None:
            self._give_up(f"no audio player found ({player or ', '.join(PLAYERS)})")

    def _give_up(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            log.warning("no sound: %s; going on muted. hint: %s", reason, _NO_SOUND_HINT)

    async def _output(self, chunk: AudioChunk, start: float) -> None:
        if self.player is None or self.failure is not None:
            return
        try:
            if self._out is None:
                self._out = await self.player.open(chunk.sample_rate)
            await self._out.write(chunk.pcm.astype("<i2", copy=False).tobytes())
        except OSError as e:
            await self._abandon(str(e))

    async def _drain(self) -> None:
        if self._out is None:
            return
        out, self._out = self._out, None
        try:
            # The clock says the audio is over; the device gets a little slack on top.
            async with asyncio.timeout(_DRAIN_SLACK_S):
                await out.drain()
        except TimeoutError:
            await self._abandon(f"{self.player.name} did not finish playing", out)
        except OSError as e:
            await self._abandon(str(e), out)

    async def _stop(self) -> None:
        if self._out is not None:
            out, self._out = self._out, None
            with contextlib.suppress(OSError):
                await out.stop()

    async def _finish(self, line: LineAudio) -> None:
        await self._stop()

    async def _abandon(self, reason: str, out: _Output | None = None) -> None:
        out = out or self._out
        self._out = None
        if out is not None:
            with contextlib.suppress(OSError):
                await out.stop()
        self._give_up(reason)
