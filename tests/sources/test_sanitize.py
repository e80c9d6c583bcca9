"""sanitize_frame and load_image: every pixel layout becomes RGB uint8, huge inputs shrink."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from couchmate.errors import BadFrameError
from couchmate.sources.sanitize import (
    DEFAULT_MAX_PIXELS,
    fit_size,
    load_image,
    sanitize_frame,
)

pytestmark = pytest.mark.timeout(60)


def test_rgb_uint8_passes_through_without_a_copy():
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = sanitize_frame(img, 10_000)
    assert out is img


def test_grayscale_rgba_bgra_become_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = sanitize_frame(gray, 10_000)
    assert out.shape == (3, 4, 3) and (out[..., 0] == gray).all() and (out[..., 2] == gray).all()
    assert sanitize_frame(gray[..., None], 10_000).shape == (3, 4, 3)

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 77
    assert sanitize_frame(rgba, 100)[0, 0].tolist() == [10, 20, 30]
    assert sanitize_frame(rgba, 100, order="BGR")[0, 0].tolist() == [30, 20, 10]
    assert sanitize_frame(rgba[..., :3].copy(), 100, order="BGR")[0, 0].tolist() == [30, 20, 10]


def test_deep_and_float_pixels_scale_to_uint8():
    deep = np.full((2, 3, 3), 65535, np.uint16)
    deep[0, 0] = [0, 257 * 128, 65535]
    out = sanitize_frame(deep, 100)
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [0, 128, 255]

    unit = np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32)
    assert sanitize_frame(unit, 100)[0, :, 0].tolist() == [0, 128, 255, 0]
    wide = np.array([[-5.0, 100.0, 300.0]], dtype=np.float64)
    assert sanitize_frame(wide, 100)[0, :, 0].tolist() == [0, 100, 255]
    assert sanitize_frame(np.array([[True, False]]), 100)[0, :, 0].tolist() == [255, 0]


@pytest.mark.parametrize("shape", [(0, 10), (10, 0, 3), (0, 0, 4)])
def test_zero_size_is_a_bad_frame(shape):
    with pytest.raises(BadFrameError, match="empty"):
        sanitize_frame(np.zeros(shape, np.uint8), 100)


@pytest.mark.parametrize("shape", [(4, 4, 2), (4, 4, 5), (2, 2, 2, 3), (7,)])
def test_wrong_shape_is_a_bad_frame(shape):
    with pytest.raises(BadFrameError):
        sanitize_frame(np.zeros(shape, np.uint8), 100)


def test_oversized_keeps_aspect_and_content():
    img = np.zeros((1000, 3000, 3), np.uint8)
    img[:, :1500] = 200  # left half bright
    out = sanitize_frame(img, 30_000)
    assert out.shape == (100, 300, 3)
    assert out[:, :140].min() == 200 and out[:, 160:].max() == 0
    assert fit_size(3000, 1000, 30_000) == (300, 100)
    w, h = fit_size(1919, 1079, 100_003)
    assert w * h <= 100_003 and abs(w / h - 1919 / 1079) < 0.01


def test_gigantic_frame_is_shrunk_without_a_full_size_copy():
    side = 12_000
    # 576 MB of RGBA; zeros() leaves untouched pages to the kernel, so only a marked corner
    # is ever written (the test stays quick) while the resize still reads every pixel.
    img = np.zeros((side, side, 4), np.uint8)
    img[:1000, :1000] = (255, 0, 0, 255)
    img[-1000:, -1000:] = (0, 0, 255, 255)
    tracemalloc.start()
    try:
        out = sanitize_frame(img, DEFAULT_MAX_PIXELS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    h, w = out.shape[:2]
    assert out.dtype == np.uint8 and out.shape[2] == 3
    assert h * w <= DEFAULT_MAX_PIXELS and abs(w - h) <= 1
    assert out[0, 0].tolist() == [255, 0, 0] and out[-1, -1].tolist() == [0, 0, 255]
    assert peak < img.nbytes / 5  # only the small output (and its RGBA step) was allocated


def test_gigantic_odd_dtype_is_strided_first():
    img = np.zeros((6000, 4000), np.int32)  # not a dtype OpenCV resizes
    img[:, 2000:] = 1000
    tracemalloc.start()
    try:
        out = sanitize_frame(img, 60_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape[0] * out.shape[1] <= 60_000 and out.shape[:2] == (300, 200)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert peak < img.nbytes / 10


def test_load_image_shrinks_a_big_jpeg_and_reads_16_bit_png(tmp_path):
    big = np.zeros((2000, 4000, 3), np.uint8)
    big[:, 2000:] = (0, 200, 0)
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    out = load_image(tmp_path / "big.jpg", 100_000)
    h, w = out.shape[:2]
    assert h * w <= 100_000 and abs(w / h - 2.0) < 0.02
    assert out[h // 2, w // 4].max() < 20 and out[h // 2, 3 * w // 4, 1] > 180

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = load_image(tmp_path / "deep.png", 10_000)
    assert out.shape == (8, 8, 3) and out[7, 7, 0] == 63_000 // 257


def test_load_image_errors_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadFrameError, match=r"empty\.png: empty file"):
        load_image(tmp_path / "empty.png")
    Image.fromarray(np.full((300, 300, 3), 90, np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadFrameError, match=r"cut\.png"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(BadFrameError, match="too large"):
        Image.fromarray(np.zeros((400, 500), np.uint8)).save(tmp_path / "wide.png")
        load_image(tmp_path / "wide.png", max_decode_pixels=100_000)
