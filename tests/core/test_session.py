"""The whole companion on real parts: the Doom engine, the real reader, the mind, espeak-ng."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import pytest

from couchmate.config import Settings
from couchmate.errors import SourceError
from couchmate.mind.moments import SPECS
from couchmate.session import Session
from couchmate.sources.doom import DoomSource

pytestmark = pytest.mark.slow


class DyingDoom(DoomSource):
    """The real Doom source, whose feed breaks after `n` frames (a capture card unplugged)."""

    def __init__(self, n: int, **kw):
        super().__init__(**kw)
        self.n = n

    async def frames(self):
        async for frame in super().frames():
            if frame.index >= self.n:
                raise SourceError("the capture device went away")
            yield frame


def _srt_blocks(text: str) -> list[list[str]]:
    return [b.splitlines() for b in text.strip().split("\n\n") if b.strip()]


def test_session_speaks_writes_transcript_subtitles_and_wavs(tmp_path: Path):
    folder = tmp_path / "session"

    async def go():
        source = DoomSource(realtime=True, seed=0)
        async with Session(Settings(), source, folder=folder, mute=True) as session:
            return await session.run(seconds=12)

    report = asyncio.run(go())
    assert report.error == ""
    assert report.watch is not None and report.watch.states > 0
    lines = [json.loads(x) for x in (folder / "transcript.jsonl").read_text().splitlines()]
    assert lines, "the greeting at least must be spoken"
    assert len(lines) == len(report.utterances)
    for rec in lines:
        for key in ("t", "text", "path", "reason", "event", "timings"):
            assert key in rec
        assert rec["text"].strip()
        assert rec["path"] == "reflex"  # no model is configured
        assert "first_audio" in rec["timings"]
        # None stale: every line was heard inside its moment's window.
        spec = SPECS.get(rec["event"])
        if spec is not None and "evented" in rec["timings"]:
            heard_after = rec["timings"]["first_audio"] - rec["timings"]["evented"]
            assert heard_after <= spec.stale_s * 1000
    blocks = _srt_blocks((folder / "subtitles.srt").read_text())
    assert [b[2] for b in blocks] == [rec["text"] for rec in lines]
    assert all(" --> " in b[1] for b in blocks)
    wavs = [folder / rec["audio"] for rec in lines if rec["audio"]]
    assert wavs
    for path in wavs:
        with wave.open(str(path)) as w:
            assert w.getnframes() > 0
    assert (folder / "watch" / "meta.json").is_file()
    assert (folder / "watch" / "states.jsonl").stat().st_size > 0


def test_a_source_that_dies_ends_the_session_cleanly_with_the_reason(tmp_path: Path):
    async def go():
        source = DyingDoom(60, realtime=False, seed=0)
        async with Session(Settings(), source, folder=tmp_path / "s", mute=True) as session:
            return await asyncio.wait_for(session.run(seconds=30), timeout=25)

    report = asyncio.run(go())
    assert "capture device went away" in report.error
    assert (tmp_path / "s" / "transcript.jsonl").exists()


def test_the_player_is_answered_at_once_without_a_model(tmp_path: Path):
    async def go():
        source = DoomSource(realtime=True, seed=0)
        settings = Settings()
        async with Session(settings, source, mute=True, greet=False) as session:

            async def ask_later():
                await asyncio.sleep(1.0)
                session.ask("what should I do now?")

            asker = asyncio.create_task(ask_later())
            report = await session.run(seconds=4)
            await asker
            return report

    report = asyncio.run(go())
    answers = [u for u in report.utterances if u.line.event.kind == "player_message"]
    assert answers, [u.line.text for u in report.utterances]
    ms = answers[0].line.timing.span_ms("evented", "first_audio")
    assert ms is not None and ms < 1500  # reflex answer; generous bound on a loaded machine


def test_wavs_written_outside_the_session_folder_are_named_so_they_resolve(tmp_path: Path):
    folder, wavs = tmp_path / "session", tmp_path / "elsewhere" / "wavs"

    async def go():
        source = DoomSource(realtime=True, seed=0)
        async with Session(
            Settings(), source, folder=folder, audio_out=wavs, mute=True, record_watch=False
        ) as session:
            return await session.run(seconds=3)

    asyncio.run(go())
    lines = [json.loads(x) for x in (folder / "transcript.jsonl").read_text().splitlines()]
    audio = [rec["audio"] for rec in lines if rec["audio"]]
    assert audio, "the greeting at least is written"
    assert not (folder / "audio").exists()
    for name in audio:
        path = (folder / name).resolve()
        assert path.parent == wavs.resolve() and path.is_file(), name
