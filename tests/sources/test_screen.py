"""screen: capture a real X server (Xvfb) with a known window drawn on it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from couchmate.errors import UserError
from couchmate.sources.base import open_source
from couchmate.sources.screen import ScreenSource

pytestmark = pytest.mark.timeout(60)

W, H = 1280, 720
# A red window at a known place, drawn by Tk in its own process (no window manager, so
# the geometry is exact).
RED_BOX = (100, 50, 200, 100)  # x, y, w, h
_TK_SCRIPT = """
import sys, tkinter as tk
root = tk.Tk()
root.overrideredirect(True)
root.geometry("{w}x{h}+{x}+{y}")
root.configure(bg="#ff0000")
root.update()
print("ready", flush=True)
sys.stdin.read()
"""


def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture(scope="module")
def xvfb():
    if not shutil.which("Xvfb"):
        pytest.fail("Xvfb is not installed (`make system-deps` installs it)")
    n = _free_display()
    proc = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", f"{W}x{H}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    display = f":{n}"
    try:
        deadline = time.monotonic() + 15
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Xvfb {display} did not start")
            time.sleep(0.05)
        x, y, w, h = RED_BOX
        env = {**os.environ, "DISPLAY": display}
        tk = subprocess.Popen(
            [sys.executable, "-c", _TK_SCRIPT.format(x=x, y=y, w=w, h=h)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert tk.stdout.readline().strip() == "ready"
            yield display
        finally:
            tk.kill()
            tk.wait()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def grab(src: ScreenSource, n: int) -> list:
    async def go():
        out = []
        async for f in src.frames():
            out.append(f)
            if len(out) >= n:
                break
        return out

    try:
        return asyncio.run(go())
    finally:
        src.close()


@pytest.mark.x11
def test_full_screen_capture_sees_the_window(xvfb, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb)
    src = open_source("screen", fps=20)
    frames = grab(src, 6)
    img = frames[-1].image
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    x, y, w, h = RED_BOX
    assert (img[y + 2 : y + h - 2, x + 2 : x + w - 2] == [255, 0, 0]).all()
    assert (img[y + h + 5 :, :] != [255, 0, 0]).any(axis=-1).all()  # nothing red below it
    assert [f.index for f in frames] == list(range(6))
    assert frames[0].source == "screen:1" and frames[0].timing.get("captured") == frames[0].t
    # 20 fps target: frames are spaced by at least ~50 ms, never bursted.
    assert np.diff([f.t for f in frames]).min() >= 0.045


@pytest.mark.x11
def test_region_crops_and_one_past_the_monitor_is_refused(xvfb, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb)
    x, y, w, h = RED_BOX
    img = grab(ScreenSource(region=f"{x},{y},{w},{h}", fps=30), 1)[0].image
    assert img.shape == (h, w, 3) and (img == [255, 0, 0]).all()
    corner = grab(ScreenSource(region=f"{W - 80},{H - 20},80,20"), 1)[0].image
    assert corner.shape == (20, 80, 3)
    # It used to be clipped to 20x80 without a word: the profile got another shape.
    with pytest.raises(
        UserError, match=f"runs past monitor 1 .*inside it: {W - 80},{H - 20},80,20"
    ):
        grab(ScreenSource(region=f"{W - 80},{H - 20},200,200"), 1)
    with pytest.raises(UserError, match="runs past monitor"):
        grab(ScreenSource(region=f"{W + 10},0,10,10"), 1)
    with pytest.raises(UserError, match="no monitor 5"):
        grab(ScreenSource(monitor=5), 1)


def test_bad_region_text_is_a_user_error(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    for bad in ("1,2,3", "a,b,c,d", "0,0,0,10", "-1,0,10,10"):
        with pytest.raises(UserError, match="bad region"):
            ScreenSource(region=bad)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is an X11 notion")
def test_no_display_is_a_clear_user_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(UserError, match="DISPLAY is not set") as e:
        open_source("screen")
    assert "Xvfb" in e.value.hint and "couchmate watch --source screen" in e.value.hint
    # A DISPLAY that names no running server fails on the first grab, just as clearly.
    monkeypatch.setenv("DISPLAY", f":{_free_display()}")
    with pytest.raises(UserError, match="cannot open the display") as e:
        grab(ScreenSource(), 1)
    assert "Xvfb" in e.value.hint
