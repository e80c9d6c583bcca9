"""Settings and flags → the right engine and sink, and a muted speaker still keeps time."""

from __future__ import annotations

import asyncio
import wave

import pytest

from couchmate.config import VoiceSettings
from couchmate.voice.base import VoiceSpec
from couchmate.voice.build import build_sink, build_speaker
from couchmate.voice.device import DeviceSink
from couchmate.voice.espeak import EspeakEngine
from couchmate.voice.sinks import NullSink, TeeSink, WavSink

pytestmark = pytest.mark.timeout(60)


def test_flags_pick_the_sink(tmp_path):
    assert type(build_sink(mute=True)) is NullSink
    assert type(build_sink(mute=True, audio_out=tmp_path)) is WavSink
    both = build_sink(audio_out=tmp_path, player="play")
    assert isinstance(both, TeeSink) and isinstance(both.sinks[0], DeviceSink)
    assert isinstance(both.sinks[1], WavSink)


def test_muted_speaker_from_settings_writes_the_session(tmp_path):
    speaker = build_speaker(VoiceSettings(mute=True), audio_out=tmp_path)
    assert isinstance(speaker.engine, EspeakEngine)

    async def run():
        async with speaker:
            return await speaker.say("Hello from the couch.", VoiceSpec(wpm=300))

    spoken = asyncio.run(run())
    assert spoken.first_audio is not None and spoken.audio.samples > 0
    with wave.open(str(tmp_path / "session.wav"), "rb") as w:
        assert w.getnframes() == spoken.audio.samples
