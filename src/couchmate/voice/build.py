"""Wire a voice from settings and CLI flags: engine + sink → Speaker.

    speaker = build_speaker(settings.voice, audio_out=args.audio_out)

`mute` keeps every timing (NullSink) but plays nothing; `audio_out` writes one WAV per
line plus the whole session as session.wav, alongside the speakers unless muted.
"""

from __future__ import annotations

from pathlib import Path

from couchmate.config import VoiceSettings
from couchmate.voice.base import engine_from_settings
from couchmate.voice.device import DeviceSink
from couchmate.voice.sinks import AudioSink, NullSink, TeeSink, WavSink
from couchmate.voice.speaker import Speaker

SESSION_FILE = "session.wav"


def build_sink(
    *,
    mute: bool = False,
    audio_out: str | Path | None = None,
    session_file: str | None = SESSION_FILE,
    player: str | None = None,
) -> AudioSink:
    """Speakers, a WAV folder, both, or (muted, no folder) a timed NullSink."""
    wav = WavSink(audio_out, session_file=session_file) if audio_out else None
    if mute:
        return wav or NullSink()
    speakers = DeviceSink(player)
    return TeeSink(speakers, wav) if wav else speakers


def build_speaker(
    settings: VoiceSettings,
    *,
    audio_out: str | Path | None = None,
    mute: bool | None = None,
) -> Speaker:
    """The engine `settings` ask for (espeak-ng, or piper when a model is set) into the
    sink the flags ask for. Raises VoiceError when the engine is missing."""
    engine = engine_from_settings(settings)
    return Speaker(
        engine, build_sink(mute=settings.mute if mute is None else mute, audio_out=audio_out)
    )
