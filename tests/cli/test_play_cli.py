"""`couchmate demo`, `play`, `bench router` and `bench latency` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_couchmate
from tests.sources.test_screen import xvfb  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow


def couchmate(*args: str, timeout: float = 240, stdin: str | None = None):
    return run_couchmate(*args, timeout=timeout, stdin=stdin)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "run"
    r = couchmate("demo", "--seconds", "10", "--mute", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "session folder" in r.stdout
    return out


def test_demo_leaves_a_session_folder(demo_folder: Path):
    for name in ("transcript.jsonl", "subtitles.srt", "audio/session.wav", "watch/meta.json"):
        assert (demo_folder / name).is_file(), name
    first = json.loads((demo_folder / "transcript.jsonl").read_text().splitlines()[0])
    assert {"t", "text", "path", "reason", "event", "timings"} <= first.keys()


def test_bench_router_replays_the_demo(demo_folder: Path, tmp_path: Path):
    out = tmp_path / "router.json"
    r = couchmate("bench", "router", "--session", str(demo_folder), "--json", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["mode"] == "virtual time"
    assert set(data["paths"]) <= {"reflex", "fast", "smart"}
    assert data["events"], "the demo's recorded events are replayed"
    assert "budget_misses" in data and "latency_ms" in data


def test_play_with_an_unknown_source_is_one_clear_line():
    r = couchmate("play", "--source", "nintendo64", "--seconds", "1")
    assert r.returncode == 2
    assert "unknown source 'nintendo64'" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_a_flag_that_does_not_apply_to_the_source_is_refused():
    r = couchmate("play", "--source", "doom", "--region", "0,0,10,10", "--seconds", "1")
    assert r.returncode == 2
    assert "--region does not apply to the doom source" in r.stderr


def test_play_answers_typed_messages_and_names_wavs_written_elsewhere(tmp_path: Path):
    folder, wavs = tmp_path / "session", tmp_path / "wavs"
    r = couchmate(
        "play",
        "--source",
        "doom",
        "--seconds",
        "6",
        "--mute",
        "--no-memory",
        "--out",
        str(folder),
        "--audio-out",
        str(wavs),
        stdin="what should I do?\n",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "(player_message)" in r.stdout
    lines = [json.loads(x) for x in (folder / "transcript.jsonl").read_text().splitlines()]
    audio = [rec["audio"] for rec in lines if rec["audio"]]
    assert audio
    for name in audio:
        path = (folder / name).resolve()
        assert path.parent == wavs.resolve() and path.is_file(), name


@pytest.mark.server
def test_bench_latency_measures_reflex_and_model_paths(tmp_path: Path):
    out = tmp_path / "latency.json"
    r = couchmate(
        "bench",
        "latency",
        "--seconds",
        "20",
        "--ask-every",
        "3",
        "--json",
        str(out),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["model"] == "tiny llama.cpp (local)"
    model_paths = [p for p in data["paths"] if p in ("fast", "smart")]
    assert model_paths, data["paths"]
    for p in data["paths"].values():
        assert {"p50", "p95"} <= p["event_to_first_audio_ms"].keys()
        assert p["n"] > 0
    assert data["overhead_ms"]["n"] > 0
    assert data["overhead_ms"]["p50"] > 0


def test_play_with_a_broken_profile_fails_before_any_greeting(tmp_path: Path):
    """It greeted "I'm here. Let's go!", printed a normal report and exited 0."""
    broken = tmp_path / "mine.toml"
    broken.write_text('name = "mine"\n[regions.health\nbox = [0, 0]\n')
    folder = tmp_path / "session"
    r = couchmate(
        "play", "--source", "doom", "--profile", str(broken), "--seconds", "5",
        "--mute", "--no-memory", "--out", str(folder),
    )  # fmt: skip
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "error:" in r.stderr and "mine.toml" in r.stderr
    assert "session:" not in r.stdout and "(greeting)" not in r.stdout
    assert not (folder / "transcript.jsonl").exists()
    assert not (folder / "watch" / "meta.json").exists()


@pytest.mark.x11
def test_play_on_a_monitor_that_does_not_exist_is_the_error_watch_gives(xvfb, tmp_path):  # noqa: F811
    env = {"DISPLAY": xvfb}
    watch = run_couchmate(
        "watch", "--source", "screen", "--monitor", "2", "--seconds", "2", env=env
    )
    play = run_couchmate(
        "play", "--source", "screen", "--monitor", "2", "--seconds", "2", "--mute",
        "--no-memory", "--out", str(tmp_path / "session"), env=env, timeout=120,
    )  # fmt: skip
    assert watch.returncode == play.returncode == 2, play.stdout[-2000:] + play.stderr[-2000:]
    assert "no monitor 2" in play.stderr and "no monitor 2" in watch.stderr
    assert "(greeting)" not in play.stdout and "session:" not in play.stdout


def test_a_failed_recording_is_not_left_for_replay(tmp_path: Path):
    """`watch --record` of a source that fails left an empty recording replay accepted."""
    empty = tmp_path / "frames"
    empty.mkdir()
    (empty / "0001.png").write_bytes(b"not a png at all")
    rec = tmp_path / "rec"
    r = couchmate("watch", "--source", f"dir:{empty}", "--record", str(rec), "--seconds", "3")
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert not (rec / "meta.json").exists()
    again = couchmate("replay", str(rec))
    assert again.returncode == 2 and "no recording" in again.stderr
