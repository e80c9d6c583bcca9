"""piper: the errors a user can hit, and the real piper-tts runtime on a stand-in model.

We have no trained Piper voice offline (they are 60 MB downloads). data/tiny-piper.onnx has
a Piper voice's exact inputs and outputs but plays tones (see data/make_tiny_piper.py), so
these tests exercise piper-tts's phonemizer, id map, sentence split and ONNX run for real,
and say nothing about how a real voice sounds.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from contextlib import aclosing
from pathlib import Path

import pytest

from couchmate.config import VoiceSettings
from couchmate.errors import VoiceError
from couchmate.voice.base import VoiceSpec, engine_from_settings, synthesize_all
from couchmate.voice.sinks import WavSink
from couchmate.voice.speaker import Speaker

pytestmark = pytest.mark.timeout(60)

TINY = Path(__file__).parent / "data" / "tiny-piper.onnx"


def test_model_file_errors_name_the_file(tmp_path):
    from couchmate.voice.piper import PiperEngine

    with pytest.raises(VoiceError, match="needs a voice model") as e:
        PiperEngine()
    assert "piper_model" in e.value.hint
    with pytest.raises(VoiceError, match="nope.onnx"):
        PiperEngine(str(tmp_path / "nope.onnx"))
    lonely = tmp_path / "voice.onnx"
    shutil.copy(TINY, lonely)
    with pytest.raises(VoiceError, match=r"voice\.onnx\.json") as e:
        PiperEngine(str(lonely))
    assert ".onnx.json" in e.value.hint


def test_missing_package_is_a_voice_error(monkeypatch):
    from couchmate.voice.piper import PiperEngine

    monkeypatch.setitem(sys.modules, "piper", None)  # what an absent package looks like
    with pytest.raises(VoiceError, match="piper-tts") as e:
        PiperEngine(str(TINY))
    assert "pip install piper-tts" in e.value.hint


def test_settings_with_a_model_select_piper():
    pytest.importorskip("piper")
    from couchmate.voice.piper import PiperEngine

    engine = engine_from_settings(VoiceSettings(piper_model=str(TINY)))
    assert isinstance(engine, PiperEngine)


def test_corrupt_model_fails_on_first_use(tmp_path):
    pytest.importorskip("piper")
    from couchmate.voice.piper import PiperEngine

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 100)
    shutil.copy(f"{TINY}.json", f"{bad}.json")
    engine = PiperEngine(str(bad))
    with pytest.raises(VoiceError, match="cannot load piper voice"):
        asyncio.run(synthesize_all(engine, "hello", VoiceSpec()))


def test_streams_one_chunk_per_sentence_at_the_model_rate():
    pytest.importorskip("piper")
    from couchmate.voice.piper import PiperEngine

    engine = PiperEngine(str(TINY))
    text = "Hello there. How are you doing today? Fine, thanks."

    async def run():
        chunks = []
        async with aclosing(engine.synthesize(text, VoiceSpec())) as stream:
            async for c in stream:
                chunks.append(c)
        normal = await synthesize_all(engine, text, VoiceSpec(wpm=175))
        quick = await synthesize_all(engine, text, VoiceSpec(wpm=350))
        await engine.aclose()
        return chunks, normal, quick

    chunks, normal, quick = asyncio.run(run())
    assert len(chunks) == 3 and all(c.sample_rate == 16000 for c in chunks)
    assert chunks[0].t_ready <= chunks[1].t_ready <= chunks[2].t_ready
    assert normal.pcm.dtype.name == "int16" and normal.pcm.std() > 1000
    assert 0.45 < quick.duration_s / normal.duration_s < 0.55  # twice the rate, half the time


def test_cancel_between_sentences_and_speak_through_the_speaker(tmp_path):
    pytest.importorskip("piper")
    from couchmate.voice.piper import PiperEngine

    engine = PiperEngine(str(TINY))
    text = " ".join(f"Sentence number {i} is here." for i in range(40))

    async def run():
        got = 0
        t0 = time.monotonic()
        async with aclosing(engine.synthesize(text, VoiceSpec())) as stream:
            async for _ in stream:
                got += 1
                if got == 2:
                    break
        stopped_s = time.monotonic() - t0
        async with Speaker(engine, WavSink(tmp_path, realtime=False)) as speaker:
            spoken = await speaker.say("Piper speaks. Twice.", VoiceSpec())
        return got, stopped_s, spoken

    got, stopped_s, spoken = asyncio.run(run())
    assert got == 2 and stopped_s < 5
    assert spoken.audio.sample_rate == 16000 and spoken.sentences_played == 1
    assert spoken.audio.path.exists()
