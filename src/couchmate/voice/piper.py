"""piper: neural voices from a model file the user points at (`voice.piper_model`).

Runs in-process through the `piper-tts` package (onnxruntime, which releases the GIL) on a
worker thread. Piper synthesizes one sentence per ONNX run and we yield each as it comes,
so a line starts playing after its first sentence. Cancelling stops at once for the
listener; the ONNX run already in flight (one sentence) finishes in the background.

couchmate never downloads a voice: the .onnx file and its .onnx.json config must exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from couchmate.errors import VoiceError
from couchmate.voice.base import DEFAULT_WPM, AudioChunk, TTSEngine, VoiceSpec

log = logging.getLogger(__name__)

_MODEL_HINT = (
    "set voice.piper_model (COUCHMATE_VOICE__PIPER_MODEL) to a Piper voice .onnx file with "
    "its .onnx.json config beside it; or use the espeak-ng engine"
)


class PiperEngine(TTSEngine):
    """A Piper voice model. `model` is the .onnx path; `config` defaults to model + .json."""

    name = "piper"

    def __init__(self, model: str = "", *, config: str | None = None) -> None:
        if not model:
            raise VoiceError("the piper engine needs a voice model file", hint=_MODEL_HINT)
        self.model = Path(model).expanduser()
        self.config = Path(config).expanduser() if config else Path(f"{self.model}.json")
        if not self.model.is_file():
            raise VoiceError(f"piper voice model not found: {self.model}", hint=_MODEL_HINT)
        if not self.config.is_file():
            raise VoiceError(
                f"piper voice config not found: {self.config}",
                hint="a Piper voice is two files: NAME.onnx and NAME.onnx.json",
            )
        try:
            import piper  # noqa: F401
        except ImportError as e:
            raise VoiceError(
                "the piper engine needs the piper-tts package",
                hint="pip install piper-tts (or use the espeak-ng engine)",
            ) from e
        self._voice: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-piper")
        self._load_lock = asyncio.Lock()

    @property
    def sample_rate(self) -> int | None:
        return self._voice.config.sample_rate if self._voice is not None else None

    def _load_blocking(self) -> Any:
        from piper import PiperVoice

        try:
            return PiperVoice.load(self.model, config_path=self.config)
        except (OSError, ValueError, KeyError) as e:
            raise VoiceError(
                f"cannot load piper voice {self.model}: {type(e).__name__}: {e}",
                hint="the .onnx and .onnx.json must be a matching Piper voice",
            ) from e
        except Exception as e:  # onnxruntime raises its own types for a bad model file
            raise VoiceError(
                f"cannot load piper voice {self.model}: {e}",
                hint="the .onnx file must be a Piper voice model",
            ) from e

    async def load(self) -> None:
        """Load the model now (it otherwise loads on the first sentence)."""
        async with self._load_lock:
            if self._voice is None:
                loop = asyncio.get_running_loop()
                self._voice = await loop.run_in_executor(self._pool, self._load_blocking)

    def _settings(self, voice: VoiceSpec) -> Any:
        from piper.config import SynthesisConfig

        speakers = self._voice.config.speaker_id_map or {}
        return SynthesisConfig(
            speaker_id=speakers.get(voice.name),
            # Piper's speed is a duration multiplier; 1.0 is the model's natural pace,
            # which we take to be espeak-ng's default rate.
            length_scale=DEFAULT_WPM / max(voice.wpm, 1),
        )

    async def synthesize(self, text: str, voice: VoiceSpec) -> AsyncIterator[AudioChunk]:
        text = text.strip()
        if not text:
            return
        await self.load()
        loop = asyncio.get_running_loop()
        sentences: Iterator[Any] = iter(self._voice.synthesize(text, self._settings(voice)))
        while True:
            try:
                chunk = await loop.run_in_executor(self._pool, next, sentences, None)
            except Exception as e:
                raise VoiceError(f"piper failed on {text[:40]!r}: {e}") from e
            if chunk is None:
                return
            yield AudioChunk(chunk.audio_int16_array, chunk.sample_rate, time.monotonic())

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
