"""What a TTS engine is: text and a voice in, a stream of PCM chunks out.

One method (`synthesize`), an async iterator, so the speaker can start playing the first
chunk of a sentence while the rest is still being made, and cancel it at any moment:
closing or cancelling the iterator stops the engine (kills its subprocess) at once.

Engines register in `TTS_ENGINES` ("couchmate.tts" entry points for plugins).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import numpy as np

from couchmate.config import VoiceSettings
from couchmate.registry import Registry

#: espeak-ng's default speaking rate; other engines scale their speed against it.
DEFAULT_WPM = 175

# Language code → espeak-ng voice, for a VoiceSpec that names only a language.
_ESPEAK_BY_LANG = {"en": "en-us", "zh": "cmn", "ja": "ja", "yue": "yue"}


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    """How a line should sound.

    `name` is the engine's voice id (espeak-ng: "en-us", "cmn", "ja", optionally with a
    variant, "en-us+f3"; piper: a speaker name of a multi-speaker model, or empty).
    `wpm` is the speaking rate in words per minute, `pitch` 0..99 (50 is neutral).
    """

    name: str = "en-us"
    lang: str = "en"
    wpm: int = DEFAULT_WPM
    pitch: int = 50

    @classmethod
    def for_lang(cls, lang: str, *, wpm: int = DEFAULT_WPM, pitch: int = 50) -> VoiceSpec:
        head = lang.lower().replace("_", "-").split("-", 1)[0]
        head = {"cmn": "zh", "jp": "ja"}.get(head, head)
        return cls(name=_ESPEAK_BY_LANG.get(head, head), lang=head, wpm=wpm, pitch=pitch)

    @classmethod
    def from_persona(cls, voice: Any, lang: str) -> VoiceSpec:
        """From a persona's voice (anything with espeak, variant, wpm, pitch attributes,
        e.g. couchmate.mind.persona.Voice), without the voice package importing the mind."""
        name = str(voice.espeak)
        variant = getattr(voice, "variant", "")
        return cls(
            name=f"{name}+{variant}" if variant else name,
            lang=lang,
            wpm=int(voice.wpm),
            pitch=int(voice.pitch),
        )


@dataclass(slots=True)
class AudioChunk:
    """A piece of mono 16-bit PCM, and the monotonic time the engine had it ready."""

    pcm: np.ndarray  # int16, shape (n,)
    sample_rate: int
    t_ready: float

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(slots=True)
class Audio:
    """A whole utterance: mono int16 PCM at `sample_rate`."""

    pcm: np.ndarray
    sample_rate: int
    #: monotonic time the first chunk was ready (time to first audio = this - request time)
    t_first_chunk: float | None = None

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate if self.sample_rate else 0.0

    @classmethod
    def join(cls, chunks: list[AudioChunk], sample_rate: int = 0) -> Audio:
        if not chunks:
            return cls(np.zeros(0, np.int16), sample_rate)
        pcm = np.concatenate([c.pcm for c in chunks]).astype(np.int16, copy=False)
        return cls(pcm, chunks[0].sample_rate, chunks[0].t_ready)


class TTSEngine(ABC):
    """Turns text into speech. Subclasses implement `synthesize`; `aclose` frees resources."""

    #: registry name
    name: str = ""

    @abstractmethod
    def synthesize(self, text: str, voice: VoiceSpec) -> AsyncIterator[AudioChunk]:
        """Yield PCM chunks for `text` as soon as each is ready.

        Consume it inside `contextlib.aclosing(...)`: then cancelling the task or leaving
        the loop early closes the iterator, which stops synthesis at once (and frees the
        subprocess before the event loop moves on). Raises VoiceError when the engine
        fails or is missing.
        """

    async def aclose(self) -> None:
        return None


async def synthesize_all(engine: TTSEngine, text: str, voice: VoiceSpec) -> Audio:
    """The whole utterance at once (tests, benchmarks, WAV export)."""
    chunks: list[AudioChunk] = []
    async with aclosing(engine.synthesize(text, voice)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    return Audio.join(chunks)


#: name → TTSEngine subclass. Plugins register under the "couchmate.tts" entry-point group.
TTS_ENGINES: Registry[type[TTSEngine]] = Registry("tts engine", "couchmate.tts")
TTS_ENGINES.register("espeak-ng", "couchmate.voice.espeak:EspeakEngine")
TTS_ENGINES.register("piper", "couchmate.voice.piper:PiperEngine")


def open_engine(name: str, **options: Any) -> TTSEngine:
    """Build a registered engine by name; options go to its constructor."""
    return TTS_ENGINES.get(name)(**options)


def engine_from_settings(settings: VoiceSettings) -> TTSEngine:
    """The engine the settings ask for. A piper model file, when set, selects piper."""
    if settings.piper_model and settings.engine in ("espeak-ng", "piper"):
        return open_engine("piper", model=settings.piper_model)
    return open_engine(settings.engine)
