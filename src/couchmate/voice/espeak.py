"""espeak-ng: the offline default voice, one short-lived subprocess per sentence.

A process per sentence costs ~10 ms to first audio on a laptop (measured by
`couchmate bench tts`), far inside the reflex budget, and makes cancelling trivial and
total: kill the process. Text goes in on stdin as plain UTF-8 (no SSML: `-m` is never
passed, so markup in untrusted text is read out, not obeyed).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator

from couchmate.errors import VoiceError
from couchmate.voice.base import AudioChunk, TTSEngine, VoiceSpec
from couchmate.voice.kana import to_kana_async
from couchmate.voice.wav import read_wav_header, to_mono_int16

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "install espeak-ng (Debian/Ubuntu: sudo apt install espeak-ng; macOS: brew install "
    "espeak-ng; Windows: the espeak-ng installer), or pick another engine with "
    "COUCHMATE_VOICE__ENGINE"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# espeak-ng 1.51's "cmn" voice turns hanzi into pinyin with tone digits and then reads
# the digits out in English ("ni three hao three"; espeak-ng issues #1028, #1370).
# "cmn-latn-pinyin" reads the same pinyin as Mandarin. We probe once and switch if needed.
_MANDARIN = ("cmn", "zh", "zh-cmn")


class EspeakEngine(TTSEngine):
    """espeak-ng via `espeak-ng --stdout`, streamed as it synthesizes."""

    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng", *, chunk_bytes: int = 4096) -> None:
        path = shutil.which(binary)
        if path is None:
            raise VoiceError(f"{binary} is not installed (not found on PATH)", hint=_INSTALL_HINT)
        self.binary = path
        self.chunk_bytes = chunk_bytes
        self._mandarin: str | None = None  # the working Mandarin voice, once probed

    async def _probe_mandarin(self) -> str:
        if self._mandarin is None:
            out = await self._run_capture(["-q", "-x", "-v", "cmn"], "你好")
            self._mandarin = "cmn-latn-pinyin" if "(en)" in out else "cmn"
            if self._mandarin != "cmn":
                log.info("espeak-ng: using cmn-latn-pinyin for Mandarin (cmn reads tones out)")
        return self._mandarin

    async def _run_capture(self, args: list[str], text: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate(text.encode())
        return out.decode(errors="replace")

    async def resolve_voice(self, name: str) -> str:
        """The `-v` argument for `name`, with known-broken voices swapped for working ones."""
        base, plus, variant = name.partition("+")
        if base.lower() in _MANDARIN:
            base = await self._probe_mandarin()
        return f"{base}{plus}{variant}"

    async def synthesize(self, text: str, voice: VoiceSpec) -> AsyncIterator[AudioChunk]:
        text = _CONTROL.sub(" ", text).strip()
        if not text:
            return
        vname = await self.resolve_voice(voice.name)
        if vname.split("+", 1)[0].lower() in ("ja", "jpx/ja"):
            text = await to_kana_async(text)
        args = [
            "--stdout",
            "-b",
            "1",  # input is UTF-8
            "-v",
            vname,
            "-s",
            str(min(max(voice.wpm, 80), 450)),
            "-p",
            str(min(max(voice.pitch, 0), 99)),
        ]
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            raise VoiceError(f"cannot start {self.binary}: {e}", hint=_INSTALL_HINT) from e
        try:
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdin.write(text.encode())
            await proc.stdin.drain()
            proc.stdin.close()
            try:
                fmt = await read_wav_header(proc.stdout)
            except VoiceError as e:
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                raise VoiceError(
                    f"espeak-ng failed for voice {voice.name!r}: {err or e.message}",
                    hint="`espeak-ng --voices` lists the installed voices",
                ) from e
            frame = 2 * fmt.channels
            pending = b""
            while True:
                data = await proc.stdout.read(self.chunk_bytes)
                if not data:
                    break
                pending += data
                usable = len(pending) - len(pending) % frame
                if usable:
                    pcm = to_mono_int16(pending[:usable], fmt.channels)
                    pending = pending[usable:]
                    yield AudioChunk(pcm, fmt.sample_rate, time.monotonic())
            if await proc.wait() != 0:
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                raise VoiceError(f"espeak-ng exited with {proc.returncode}: {err}")
        finally:
            if proc.returncode is None:
                proc.kill()  # cancelled or closed mid-sentence: stop the synthesis now
            # Read the pipes to their end (even when espeak-ng had already finished and we
            # stopped reading), so the transport closes now rather than at GC.
            await proc.communicate()
