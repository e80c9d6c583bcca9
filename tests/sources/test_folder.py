"""dir: real Atari screenshots in mixed formats, natural order, and broken files among them."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from couchmate.errors import UserError
from couchmate.sources.base import open_source
from couchmate.sources.folder import FolderSource, natural_key
from tests.sources.test_video import atari_frames, source_index

pytestmark = pytest.mark.timeout(60)


def run(src: FolderSource, limit: int | None = None) -> list:
    async def go():
        out = []
        async for f in src.frames():
            out.append(f)
            if limit and len(out) >= limit:
                break
        src.close()
        return out

    return asyncio.run(go())


def huge_png_header(path: Path, width: int, height: int) -> None:
    """A tiny PNG file whose header claims a gigantic image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def shots():
    return atari_frames(8)


def test_natural_key_orders_numbers_by_value():
    names = ["frame10.png", "Frame11.png", "frame2.png", "frame1.png", "frame02b.png"]
    assert sorted(names, key=natural_key) == [
        "frame1.png",
        "frame2.png",
        "frame02b.png",
        "frame10.png",
        "Frame11.png",
    ]


def test_mixed_formats_play_in_natural_order(tmp_path, shots):
    layout = {
        "frame1.png": 0,
        "frame2.jpg": 1,
        "frame3.webp": 2,
        "frame4.bmp": 3,
        "frame10.png": 4,
        "Frame11.JPEG": 5,
    }
    for name, i in layout.items():
        Image.fromarray(shots[i]).save(tmp_path / name, quality=95, lossless=True)
    (tmp_path / "notes.txt").write_text("not an image")
    Image.fromarray(shots[7]).save(tmp_path / ".hidden.png")

    src = open_source(f"dir:{tmp_path}", realtime=False)
    assert isinstance(src, FolderSource)
    frames = run(src)
    assert [source_index(f.image, shots[:6]) for f in frames] == [0, 1, 2, 3, 4, 5]
    assert np.array_equal(frames[0].image, shots[0])  # png is lossless
    for i, f in enumerate(frames):
        assert f.index == i and f.image.dtype == np.uint8 and f.image.shape == (210, 160, 3)
        assert f.source == f"dir:{tmp_path}" and f.timing.get("captured") >= frames[0].t
        # Flat out, frames are spaced on their own clock (the same every run), not by decode.
        assert f.t - frames[0].t == pytest.approx(i / src.fps)
    assert src.skipped == 0


def test_broken_images_are_skipped_counted_and_logged(tmp_path, shots, caplog):
    for i in range(4):
        Image.fromarray(shots[i]).save(tmp_path / f"shot{i * 2}.png")
    (tmp_path / "shot1.png").write_bytes(b"")  # zero bytes
    good = (tmp_path / "shot2.png").read_bytes()
    (tmp_path / "shot3.png").write_bytes(good[: len(good) // 2])  # truncated
    Image.fromarray(shots[5]).save(tmp_path / "shot5.jpg")
    jpg = bytearray((tmp_path / "shot5.jpg").read_bytes())
    (tmp_path / "shot5.jpg").write_bytes(bytes(jpg[:20]) + b"\xff\x00garbage" * 200)  # corrupt
    (tmp_path / "shot7.png").write_text("plain text with an image name")
    huge_png_header(tmp_path / "shot9.png", 100_000, 100_000)  # decompression bomb

    src = FolderSource(str(tmp_path), realtime=False)
    with caplog.at_level(logging.WARNING, logger="couchmate.sources.folder"):
        t0 = time.monotonic()
        frames = run(src)
        assert time.monotonic() - t0 < 10
    assert [source_index(f.image, shots[:4]) for f in frames] == [0, 1, 2, 3]
    assert src.skipped == 5
    logged = caplog.text
    for name in ("shot1.png", "shot3.png", "shot5.jpg", "shot7.png", "shot9.png"):
        assert name in logged
    assert "empty file" in logged and "too large" in logged


def test_realtime_paces_at_fps(tmp_path, shots):
    for i in range(5):
        Image.fromarray(shots[i]).save(tmp_path / f"{i}.png")
    frames = run(FolderSource(str(tmp_path), fps=20, realtime=True))
    gaps = np.diff([f.t for f in frames])
    assert len(frames) == 5 and gaps.min() >= 0.045  # 20 fps: one frame per 50 ms
    looped = run(FolderSource(str(tmp_path), realtime=False, loop=True), limit=12)
    assert [source_index(f.image, shots[:5]) for f in looped] == [0, 1, 2, 3, 4] * 2 + [0, 1]


def test_unusable_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        FolderSource(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="no images") as e:
        FolderSource(str(tmp_path))
    assert e.value.hint
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(UserError, match="no images"):
        FolderSource(str(tmp_path))
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"\x00" * 100)
    src = FolderSource(str(tmp_path), realtime=False)
    with pytest.raises(UserError, match="none of the 2 images"):
        run(src)
    assert src.skipped == 2
