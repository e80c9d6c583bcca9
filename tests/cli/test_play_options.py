"""What `play` and `demo` hand the session from their flags (in process, no session run)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from couchmate.cli import app, play_cmd


@pytest.fixture
def played(monkeypatch) -> list[dict]:
    calls: list[dict] = []

    async def fake_play(spec, options, **kw):
        calls.append({"spec": spec, **kw})

    monkeypatch.setattr(play_cmd, "_play", fake_play)
    return calls


@pytest.mark.parametrize("command", ["play", "demo"])
@pytest.mark.parametrize(("flags", "mute"), [([], None), (["--mute"], True), (["--speak"], False)])
def test_no_mute_flag_leaves_voice_mute_from_the_config(played, command, flags, mute):
    result = CliRunner().invoke(app, [command, "--seconds", "1", *flags])
    assert result.exit_code == 0, result.output
    assert played[-1]["mute"] is mute
