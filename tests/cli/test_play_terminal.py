"""`couchmate play` in a real terminal: it ends by itself after --seconds and on Ctrl-C, with
its report, its transcript and the session's memory; typed lines are answered."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.cli.terminal import Terminal
from tests.helpers import run_couchmate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REPORT = r"session: \d+ s"


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def start(*args: str) -> Terminal:
        opened.append(Terminal(*args))
        return opened[-1]

    yield start
    for t in opened:
        t.close()


def test_play_ends_after_its_seconds_without_waiting_for_enter(terminal, tmp_path):
    """It printed its report, then sat until Enter: a pending stdin read held it open."""
    t = terminal(
        "play", "--source", "doom", "--seconds", "3", "--mute", "--no-memory",
        "--out", str(tmp_path / "session"),
    )  # fmt: skip
    t.expect(REPORT, timeout=180)
    shown = time.monotonic()
    code = t.wait(timeout=15)
    assert code == 0, t.text[-2000:]
    assert time.monotonic() - shown < 10, "the report was shown, then the process lingered"


def test_ctrl_c_stops_play_with_its_report_transcript_and_session_memory(terminal, tmp_path):
    """Ctrl-C (as the footer says) left the process alive until Enter, then exit 130 with
    no report and no session summary in memory."""
    folder = tmp_path / "session"
    t = terminal("play", "--source", "doom", "--mute", "--out", str(folder))
    t.expect(r"\[reflex\] \(greeting\)", timeout=240)  # watching, and the greeting spoken
    t.type(b"what should I do?\r")  # Enter in a terminal: the tty turns \r into \n
    t.expect(r"\(player_message\)", timeout=60)
    t.type(b"\x03")  # the terminal's interrupt character: SIGINT to the foreground group
    pressed = time.monotonic()
    code = t.wait(timeout=30)
    assert code == 0, t.text[-3000:]
    took = time.monotonic() - pressed
    assert took < 15, f"Ctrl-C took {took:.1f} s to end play"
    assert re.search(REPORT, t.text) and "reactions:" in t.text
    said = [json.loads(x) for x in (folder / "transcript.jsonl").read_text().splitlines()]
    assert {"greeting", "player_message"} <= {rec["event"] for rec in said}
    listed = run_couchmate("memory", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"Played doom\S* for \d+\.\d min", listed.stdout), listed.stdout
