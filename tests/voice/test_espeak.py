"""espeak-ng, for real: three languages, speed, cancellation, and a missing binary."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest

from couchmate.config import VoiceSettings
from couchmate.errors import VoiceError
from couchmate.voice.base import VoiceSpec, engine_from_settings, open_engine, synthesize_all
from couchmate.voice.espeak import EspeakEngine

pytestmark = pytest.mark.timeout(60)


def voiced_seconds(pcm: np.ndarray, rate: int) -> float:
    """Seconds of 10 ms frames louder than a whisper: speech, not silence."""
    n = len(pcm) // (rate // 100) * (rate // 100)
    frames = pcm[:n].astype(np.float32).reshape(-1, rate // 100)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > 300).sum()) / 100


def espeak_children() -> list[int]:
    """espeak-ng processes whose parent is this test process (Linux /proc)."""
    me, out = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if comm.startswith("espeak") and int(fields[1]) == me and fields[0] != "Z":
            out.append(int(entry.name))
    return out


@pytest.fixture(scope="module")
def engine():
    return EspeakEngine()


@pytest.mark.parametrize(
    ("lang", "text", "min_s", "max_s"),
    [
        ("en", "Watch out, the boss is right behind you!", 1.0, 5.0),
        ("zh", "小心，敌人就在你后面！", 1.0, 6.0),
        ("ja", "きをつけて、うしろにいるよ！", 0.8, 6.0),
    ],
)
def test_speaks_three_languages(engine, lang, text, min_s, max_s):
    voice = VoiceSpec.for_lang(lang)
    audio = asyncio.run(synthesize_all(engine, text, voice))
    assert audio.sample_rate == 22050 and audio.pcm.dtype == np.int16
    assert min_s < audio.duration_s < max_s
    assert voiced_seconds(audio.pcm, audio.sample_rate) > 0.4 * audio.duration_s


def test_mandarin_is_read_as_mandarin(engine):
    """espeak-ng 1.51's `cmn` reads tone digits out in English; the engine must avoid it."""
    resolved = asyncio.run(engine.resolve_voice("cmn+f3"))
    assert resolved.endswith("+f3")
    phonemes = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", resolved.split("+")[0], "你好"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "(en)" not in phonemes and phonemes.strip()


def test_speed_and_pitch_change_the_audio(engine):
    text = "This sentence is long enough that the speaking rate clearly shows."
    slow = asyncio.run(synthesize_all(engine, text, VoiceSpec(wpm=120)))
    fast = asyncio.run(synthesize_all(engine, text, VoiceSpec(wpm=300)))
    assert fast.duration_s < 0.6 * slow.duration_s
    low = asyncio.run(synthesize_all(engine, "Hello there.", VoiceSpec(pitch=10)))
    high = asyncio.run(synthesize_all(engine, "Hello there.", VoiceSpec(pitch=90)))
    assert not np.array_equal(low.pcm[: len(high.pcm)], high.pcm[: len(low.pcm)])


def test_streams_in_chunks_and_cancel_kills_the_process(engine):
    text = " ".join(["The quick brown fox jumps over the lazy dog, again and again."] * 150)

    async def run():
        chunks, t_first = 0, None
        async with aclosing(engine.synthesize(text, VoiceSpec())) as stream:
            async for _ in stream:
                chunks += 1
                if t_first is None:
                    t_first = time.monotonic()
                    assert espeak_children(), "espeak-ng should be running mid-sentence"
                if chunks == 3:
                    break
        return chunks, time.monotonic() - t_first

    chunks, cancel_s = asyncio.run(run())
    assert chunks == 3
    assert cancel_s < 1.0  # a full synthesis of this text takes far longer
    assert espeak_children() == []


def test_cancelling_the_task_mid_sentence_stops_promptly(engine):
    text = " ".join(["Another very long sentence that would take a while to say."] * 150)

    async def run():
        started = asyncio.Event()

        async def consume():
            # aclosing: the documented way to consume, so the iterator closes with the task.
            async with aclosing(engine.synthesize(text, VoiceSpec())) as stream:
                async for _ in stream:
                    started.set()
                    await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        await started.wait()
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(run()) < 0.5
    assert espeak_children() == []


def test_empty_text_gives_no_audio(engine):
    audio = asyncio.run(synthesize_all(engine, " \x00\n ", VoiceSpec()))
    assert len(audio.pcm) == 0


def test_unknown_voice_is_a_voice_error(engine):
    with pytest.raises(VoiceError, match="xx-nope") as e:
        asyncio.run(synthesize_all(engine, "hello", VoiceSpec(name="xx-nope")))
    assert "--voices" in e.value.hint


def test_missing_espeak_is_a_voice_error_with_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VoiceError, match="not installed") as e:
        engine_from_settings(VoiceSettings())
    assert "apt install espeak-ng" in e.value.hint


def test_registry_knows_both_engines():
    assert isinstance(open_engine("espeak-ng"), EspeakEngine)
    with pytest.raises(VoiceError, match="voice model"):
        open_engine("piper")


@pytest.mark.parametrize("name", ["sunny", "deadpan"])
def test_every_builtin_persona_voice_speaks(engine, name):
    from couchmate.mind.persona import load_persona

    persona = load_persona(name)

    async def run():
        out = {}
        for lang in persona.languages:
            voice = VoiceSpec.from_persona(persona.voice(lang), lang)
            plain = next(t for t in persona.bank("greeting", lang) if t.plain)
            out[lang] = (voice, await synthesize_all(engine, plain.text, voice))
        return out

    for lang, (voice, audio) in asyncio.run(run()).items():
        assert voice.wpm == persona.voice(lang).wpm and voice.lang == lang
        assert audio.duration_s > 0.3, (lang, voice.name)
        assert voiced_seconds(audio.pcm, audio.sample_rate) > 0.2


def test_japanese_kanji_are_read_through_kana(engine):
    pytest.importorskip("pykakasi")
    from couchmate.voice.kana import to_kana

    assert to_kana("惜しい！一緒に遊ぼう、Doom 2で！") == "おしい！いっしょにあそぼう、Doom 2で！"
    voice = VoiceSpec.for_lang("ja")

    async def run():
        return [await synthesize_all(engine, t, voice) for t in ("体力ピンチ", "たいりょくピンチ")]

    kanji, kana = asyncio.run(run())
    assert np.array_equal(kanji.pcm, kana.pcm)  # espeak-ng heard the reading, not "Chinese letter"
