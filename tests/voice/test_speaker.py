"""The Speaker with real espeak-ng: order, no overlap, streaming sentences, cut, failures."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import wave

import numpy as np
import pytest

from couchmate.types import Line
from couchmate.voice.base import VoiceSpec, synthesize_all
from couchmate.voice.device import DeviceSink
from couchmate.voice.espeak import EspeakEngine
from couchmate.voice.sinks import NullSink, TeeSink, WavSink
from couchmate.voice.speaker import Speaker

pytestmark = pytest.mark.timeout(60)

FAST = VoiceSpec(wpm=320)


@pytest.fixture(scope="module")
def engine():
    return EspeakEngine()


def wav_samples(path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getnframes(), w.getframerate()


def test_lines_play_in_order_and_never_overlap(engine):
    async def run():
        sink = NullSink(realtime=True)
        async with Speaker(engine, sink) as speaker:
            lines = [Line(text) for text in ("Go!", "Nice shot.", "Behind you!")]
            utts = [speaker.start(FAST, line) for line in lines]
            for utt, line in zip(utts, lines, strict=True):
                utt.add(line.text)
                utt.close()
            spoken = [await u.wait() for u in utts]
            return lines, spoken, list(sink.history)

    lines, spoken, history = asyncio.run(run())
    assert [h.key for h in history] == ["Go!", "Nice shot.", "Behind you!"]
    for prev, nxt in zip(history, history[1:], strict=False):
        assert nxt.started >= prev.ended - 1e-3  # one line at a time
    for line, s in zip(lines, spoken, strict=True):
        assert not s.cut and s.sentences_played == 1 and s.audio.samples > 0
        assert line.timing.get("first_audio") == s.first_audio


def test_sentences_stream_in_while_the_line_plays(engine, tmp_path):
    first, second = "Oh no, the lava again.", "Jump earlier this time!"

    async def run():
        sink = WavSink(tmp_path, realtime=True)
        async with Speaker(engine, sink) as speaker:
            utt = speaker.start(FAST, key="streamed")
            t0 = time.monotonic()
            utt.add(first)
            heard_at = await utt.first_audio()
            await asyncio.sleep(0.1)  # the model is still writing the second sentence
            utt.add(second)
            utt.close()
            spoken = await utt.wait()
        solo = [await synthesize_all(engine, s, FAST) for s in (first, second)]
        return heard_at - t0, spoken, solo

    ttfa, spoken, solo = asyncio.run(run())
    assert ttfa < 0.5  # the first sentence started before the second existed
    assert spoken.sentences_played == 2 and not spoken.cut
    n, rate = wav_samples(spoken.audio.path)
    assert rate == 22050 and n == sum(len(a.pcm) for a in solo)


def test_cut_stops_mid_sentence_and_drops_the_rest(engine, tmp_path):
    sentences = [
        "This first sentence is long enough to be interrupted halfway through it.",
        "This second one must never be heard.",
        "Nor this third one.",
    ]

    async def run():
        sink = WavSink(tmp_path, realtime=True)
        async with Speaker(engine, sink) as speaker:
            utt = speaker.start(VoiceSpec(), key="long")
            for s in sentences:
                utt.add(s)
            utt.close()
            nxt = speaker.start(FAST, key="next")
            nxt.add("Next!")
            nxt.close()
            await utt.first_audio()
            await asyncio.sleep(0.4)
            t_cut = time.monotonic()
            speaker.cut()
            spoken = await utt.wait()
            cut_latency = time.monotonic() - t_cut
            after = await nxt.wait()
            utt.add("too late")  # ignored: the line is over
        full = await synthesize_all(engine, sentences[0], VoiceSpec())
        return spoken, after, cut_latency, t_cut, full

    spoken, after, cut_latency, t_cut, full = asyncio.run(run())
    assert spoken.cut and spoken.sentences_played == 1 and spoken.sentences_dropped == 2
    assert cut_latency < 0.2
    heard_s = spoken.audio.samples / 22050
    assert 0.3 < heard_s < 0.7 and spoken.audio.samples < len(full.pcm) / 2
    assert wav_samples(spoken.audio.path)[0] == spoken.audio.samples
    assert not after.cut and after.first_audio >= t_cut  # the next line still plays, after


def test_stale_and_failed_lines_are_dropped_and_the_speaker_goes_on(engine, caplog):
    async def run():
        async with Speaker(engine, NullSink(realtime=False)) as speaker:
            stale = Line("Too late now.", deadline=time.monotonic() - 1)
            r1 = await speaker.say("Too late now.", FAST, stale)
            r2 = await speaker.say("Broken voice.", VoiceSpec(name="xx-nope"))
            r3 = await speaker.say(["Still ", "here."], FAST)
            return r1, r2, r3

    with caplog.at_level(logging.WARNING, logger="couchmate.voice.speaker"):
        r1, r2, r3 = asyncio.run(run())
    assert r1.stale and r1.first_audio is None
    assert r2.error and "xx-nope" in r2.error and r2.first_audio is None
    assert "xx-nope" in caplog.text
    assert r3.first_audio is not None and r3.sentences_played == 2 and not r3.cut


def test_clear_drops_waiting_lines_and_aclose_ends_a_playing_one(engine):
    async def run():
        speaker = Speaker(engine, NullSink(realtime=True))
        playing = speaker.start(VoiceSpec(), key="playing")
        playing.add("A sentence that takes a good second or two to say out loud.")
        playing.close()
        waiting = speaker.start(FAST, key="waiting")
        waiting.add("Never said.")
        waiting.close()
        await playing.first_audio()
        speaker.clear()
        t0 = time.monotonic()
        await speaker.aclose()
        return await playing.wait(), await waiting.wait(), time.monotonic() - t0

    playing, waiting, close_s = asyncio.run(run())
    assert waiting.cut and waiting.first_audio is None and waiting.sentences_dropped == 1
    assert playing.cut and close_s < 0.5


def test_wav_sink_writes_each_line_and_a_session_timeline(engine, tmp_path):
    async def run():
        sink = WavSink(tmp_path / "out", session_file="session.wav", realtime=True)
        async with Speaker(engine, sink) as speaker:
            a = await speaker.say("First line.", FAST)
            await asyncio.sleep(0.3)  # silence between lines
            b = await speaker.say("Second line.", FAST)
        return a, b

    a, b = asyncio.run(run())
    files = sorted((tmp_path / "out").glob("*.wav"))
    assert [f.name for f in files] == ["0001-first-line.wav", "0002-second-line.wav", "session.wav"]
    assert wav_samples(files[0])[0] == a.audio.samples
    assert wav_samples(files[1])[0] == b.audio.samples
    total, rate = wav_samples(files[2])
    gap = total - a.audio.samples - b.audio.samples
    assert rate == 22050 and 0.28 * rate < gap < 0.6 * rate  # the pause is in the timeline


def test_speakers_without_a_device_warn_once_and_keep_time(engine, monkeypatch, caplog):
    if not shutil.which("play"):
        pytest.skip("sox `play` is not installed")
    # Point sox at an ALSA device that cannot exist, whatever this machine has.
    monkeypatch.setenv("AUDIODRIVER", "alsa")
    monkeypatch.setenv("AUDIODEV", "hw:CARD=couchmate_no_such_card")

    async def run():
        device = DeviceSink(player="play")
        async with Speaker(engine, TeeSink(device, NullSink(realtime=False))) as speaker:
            r1 = await speaker.say("Can you hear me?", FAST)
            r2 = await speaker.say("Hello?", FAST)
        return device, r1, r2

    with caplog.at_level(logging.WARNING, logger="couchmate.voice.device"):
        device, r1, r2 = asyncio.run(run())
    assert device.failure and "play" in device.failure
    assert caplog.text.count("no sound") == 1
    assert r1.first_audio and r2.first_audio and r2.first_audio >= r1.ended - 1e-3
    assert r1.audio.samples > 0 and r2.audio.samples > 0


def test_no_player_at_all_is_one_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("couchmate.voice.device.SoundDevicePlayer.available", lambda self: False)
    with caplog.at_level(logging.WARNING, logger="couchmate.voice.device"):
        sink = DeviceSink()
    assert sink.player is None and "no audio player" in sink.failure
    assert caplog.text.count("no sound") == 1

    async def run():
        await sink.begin("x")
        chunk = np.zeros(2205, np.int16)
        from couchmate.voice.base import AudioChunk

        t = await sink.write(AudioChunk(chunk, 22050, time.monotonic()))
        return t, await sink.end()

    t, rec = asyncio.run(run())
    assert rec.started == t and rec.samples == 2205


def test_cutting_a_waiting_line_ends_it_at_once(engine):
    async def run():
        async with Speaker(engine, NullSink(realtime=True)) as speaker:
            first = speaker.start(FAST, key="first")
            first.add("One, two, three.")
            first.close()
            second = speaker.start(FAST, key="second")
            second.add("Never.")
            second.cut()
            r2 = await asyncio.wait_for(second.wait(), 0.1)  # no need to wait for `first`
            r1 = await first.wait()
            return r1, r2, [h.key for h in speaker.sink.history]

    r1, r2, keys = asyncio.run(run())
    assert r2.cut and r2.sentences_dropped == 1 and r2.first_audio is None
    assert not r1.cut and keys == ["first"]


def test_cancelling_say_cuts_the_line(engine):
    """Mind.run_voice cancels its `say(line)` task to pre-empt: that must silence the line."""

    async def run():
        async with Speaker(engine, NullSink(realtime=True)) as speaker:
            line = Line("A long line that is going to be pre-empted by something urgent.")
            task = asyncio.create_task(speaker.say(line.text, VoiceSpec(), line))
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            urgent = await speaker.say("Now!", FAST)
            return line, urgent, t0, list(speaker.sink.history)

    line, urgent, t_cancel, history = asyncio.run(run())
    assert history[0].cut and history[0].ended - t_cancel < 0.15
    assert line.timing.get("first_audio") is not None
    assert not urgent.cut and urgent.first_audio - t_cancel < 0.3  # the urgent line followed
