"""WAV in and out: parse a streamed header (espeak-ng --stdout), write and resample PCM.

espeak-ng writes its WAV header before it knows the length (the sizes are placeholders),
so the reader below trusts the format chunk and treats everything after the data chunk
header as samples until the stream ends.
"""

from __future__ import annotations

import asyncio
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from couchmate.errors import VoiceError


@dataclass(frozen=True, slots=True)
class WavFormat:
    sample_rate: int
    channels: int
    bits: int


async def read_wav_header(reader: asyncio.StreamReader) -> WavFormat:
    """Consume a RIFF/WAVE header up to the start of the sample data."""
    try:
        riff = await reader.readexactly(12)
        if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise VoiceError(f"engine output is not WAV (starts with {riff[:12]!r})")
        fmt: WavFormat | None = None
        while True:
            kind, size = struct.unpack("<4sI", await reader.readexactly(8))
            if kind == b"data":
                break
            body = await reader.readexactly(size + (size & 1))
            if kind == b"fmt ":
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
                if tag != 1:
                    raise VoiceError(f"engine output is not PCM WAV (format tag {tag})")
                fmt = WavFormat(rate, channels, bits)
    except asyncio.IncompleteReadError as e:
        raise VoiceError("engine output ended inside the WAV header") from e
    if fmt is None:
        raise VoiceError("engine output has no WAV format chunk")
    if fmt.bits != 16:
        raise VoiceError(f"engine output is {fmt.bits}-bit; 16-bit PCM expected")
    return fmt


def to_mono_int16(raw: bytes, channels: int) -> np.ndarray:
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16, copy=False)
    if channels > 1:
        pcm = pcm[: len(pcm) - len(pcm) % channels].reshape(-1, channels).mean(axis=1)
        pcm = pcm.astype(np.int16)
    return pcm


def resample(pcm: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear resampling: enough for speech going into a session recording."""
    if rate == target or len(pcm) == 0:
        return pcm
    n = max(1, round(len(pcm) * target / rate))
    x = np.linspace(0, len(pcm) - 1, n)
    return np.interp(x, np.arange(len(pcm)), pcm).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the sample rate of a 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise VoiceError(f"{path}: {8 * w.getsampwidth()}-bit WAV; 16-bit expected")
        return to_mono_int16(w.readframes(w.getnframes()), w.getnchannels()), w.getframerate()
