"""`couchmate watch` and `couchmate replay` as a user runs them (a real subprocess)."""

from __future__ import annotations

import pytest

from tests.helpers import run_couchmate


@pytest.mark.slow
def test_watch_doom_for_three_seconds_records_and_replays(tmp_path):
    rec = tmp_path / "session"
    r = run_couchmate("watch", "--seconds", "3", "--record", str(rec))
    assert r.returncode == 0, r.stderr
    assert "doom:arena (profile doom-deathmatch)" in r.stdout
    state_line = next(line for line in r.stdout.splitlines() if line.startswith("state:"))
    assert "health=" in state_line and "armor=" in state_line
    assert "capture " in r.stdout and "fps" in r.stdout
    assert (rec / "meta.json").is_file() and (rec / "states.jsonl").stat().st_size > 0

    r = run_couchmate("replay", str(rec), "--fast")
    assert r.returncode == 0, r.stderr
    assert "replayed" in r.stdout and "0 damaged lines" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "--source", "nope"], "error: unknown source 'nope'"),
        (["watch", "--source", "video:/no/such/file.mp4", "--seconds", "1"], "error:"),
        (["watch", "--profile", "no-such-game", "--seconds", "1"], "no-such-game"),
        (["watch", "--monitor", "2", "--seconds", "1"], "--monitor does not apply"),
        (["watch", "--region", "0,0,64,64"], "--region does not apply to the doom source"),
        (["replay", "/no/such/folder"], "error: no recording at /no/such/folder"),
    ],
)
def test_user_mistakes_get_one_clear_line_and_no_traceback(args, message):
    r = run_couchmate(*args, timeout=60)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("error:") and message in r.stderr
