"""Session folders: record a live Doom run, read it back, replay it through the pipeline."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil

import pytest

from couchmate.errors import UserError
from couchmate.sources.base import open_source
from couchmate.watch.pipeline import SIGNAL_KINDS, WatchPipeline, WatchUpdate
from couchmate.watch.record import Recording, ReplaySource, SessionRecorder


def _reader_events(updates: list[WatchUpdate]) -> list[tuple[str, int, object]]:
    return [
        (e.kind, e.frame_index, e.data.get("to"))
        for u in updates
        for e in u.events
        if e.kind not in SIGNAL_KINDS
    ]


async def _record(folder) -> tuple[list[WatchUpdate], SessionRecorder]:
    src = open_source("doom:health_gathering", realtime=True, seed=0)
    rec = SessionRecorder(folder, source="doom:health_gathering")
    pipeline = WatchPipeline(src)
    updates: list[WatchUpdate] = []

    def keep(u: WatchUpdate) -> None:
        updates.append(u)
        rec.write(u)

    await pipeline.run(keep, seconds=6.0)
    await rec.close(pipeline.stats())
    return updates, rec


async def _replay(folder, fast: bool = True) -> list[WatchUpdate]:
    recording = Recording(folder)
    src = ReplaySource(recording, fast=fast)
    pipeline = WatchPipeline(src, recording.meta.profile, keep_all=True, lossless=fast)
    out: list[WatchUpdate] = []
    await pipeline.run(out.append)
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("session") / "rec"
    updates, rec = asyncio.run(_record(folder))
    return folder, updates, rec


@pytest.mark.slow
def test_record_then_replay_gives_the_same_states_and_events(recorded):
    folder, live, rec = recorded
    live_states = [u.state for u in live if u.state is not None]
    recording = Recording(folder)
    assert recording.meta.profile == "doom" and recording.meta.ended_at is not None
    assert recording.meta.counts["states"] == len(live_states) == rec.counts["keyframes"]
    records = recording.state_records()
    assert [r.frame_index for r in records] == [s.frame_index for s in live_states]
    assert all((folder / r.keyframe).is_file() for r in records)
    assert records[0].timing_ms["captured"] == 0.0 and records[-1].truth["hud"] == "doom"
    live_events = _reader_events(live)
    assert live_events, "health_gathering changes health every second: events to replay"
    recorded_events = [
        (e.kind, e.frame_index) for e in recording.event_records() if e.kind not in SIGNAL_KINDS
    ]
    assert recorded_events == [(k, i) for k, i, _ in live_events]

    replayed = asyncio.run(_replay(folder))
    again = [u.state for u in replayed if u.state is not None]
    # The same keyframes through the same reader: the same values, the same events.
    assert [(s.frame_index, s.values()) for s in again] == [
        (s.frame_index, s.values()) for s in live_states
    ]
    assert _reader_events(replayed) == live_events


@pytest.mark.slow
def test_damaged_lines_are_skipped_with_a_warning(recorded, tmp_path, caplog):
    folder, live, _ = recorded
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    lines = (copy / "states.jsonl").read_text().splitlines(keepends=True)
    n = len(lines)
    # A crash mid-write leaves half a line; a disk error leaves garbage in the middle.
    damaged = [*lines[:2], "{not json\n", *lines[2:], lines[-1][: len(lines[-1]) // 2]]
    (copy / "states.jsonl").write_text("".join(damaged))
    with (copy / "events.jsonl").open("a") as fh:
        fh.write(json.dumps({"kind": "death", "t_rel": "soon"}) + "\n")
    recording = Recording(copy)
    with caplog.at_level(logging.WARNING):
        assert len(recording.state_records()) == n
        events = recording.event_records()
    assert recording.skipped == {"states.jsonl": 2, "events.jsonl": 1}
    assert sum("skipped a damaged line" in r.message for r in caplog.records) == 3
    assert all(e.kind != "death" or e.t_rel != "soon" for e in events)
    replayed = asyncio.run(_replay(copy))
    assert len([u for u in replayed if u.state is not None]) == n


def test_recorder_and_reader_refuse_the_wrong_folder(tmp_path):
    open_one = SessionRecorder(tmp_path / "rec", source="doom")
    with pytest.raises(UserError, match="already holds a recording"):
        SessionRecorder(tmp_path / "rec", source="doom")
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="not a recording"):
        Recording(tmp_path / "plain")
    with pytest.raises(UserError, match="no recording"):
        Recording(tmp_path / "missing")
    with pytest.raises(UserError, match="recorded nothing"):
        Recording(tmp_path / "rec")  # an empty session (one that died unclosed) is refused
    asyncio.run(open_one.close())


def test_a_recording_that_failed_before_any_frame_is_removed_and_refused(tmp_path):
    """`watch --source dir:EMPTY --record rec` failing left an empty recording that replay
    took; now nothing is left to take, and a hand-made empty one is refused with the error."""
    from couchmate.watch.pipeline import WatchStats

    rec = SessionRecorder(tmp_path / "rec", source="screen")
    asyncio.run(rec.close(WatchStats(error="monitor 2 does not exist")))
    assert rec.discarded and not (tmp_path / "rec").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    asyncio.run(SessionRecorder(kept, source="screen").close(WatchStats(error="boom")))
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]  # the user's file stays


@pytest.mark.slow
def test_keyframe_images_stop_at_the_size_cap_and_states_go_on(recorded, tmp_path):
    """`play --out` wrote ~40 MB of PNG keyframes a minute with no cap."""
    _, live, rec = recorded
    capped = SessionRecorder(tmp_path / "capped", source="doom", max_image_mb=0.2)
    for u in live:
        capped.write(u)
    asyncio.run(capped.close())
    images = list((tmp_path / "capped" / "keyframes").iterdir())
    written = sum(p.stat().st_size for p in images)
    assert capped.counts["states"] == rec.counts["states"]  # every state is still there
    assert 0 < len(images) < rec.counts["keyframes"]
    assert capped.counts["images_capped"] == rec.counts["keyframes"] - len(images)
    largest = max(p.stat().st_size for p in images)
    assert 0.2e6 <= written < 0.2e6 + largest  # the one that crossed the cap is the last
