"""Prompt → wire messages: downscaling, JPEG data URLs, image budget, where text goes."""

from __future__ import annotations

import asyncio
import base64

import cv2
import numpy as np
import pytest

from couchmate.errors import BadFrameError
from couchmate.models.prompt import (
    MAX_IMAGE_PIXELS,
    Prompt,
    Turn,
    encode_image,
    fit_size,
    pick_evenly,
    prepare,
)


def _decode(data_url: str) -> np.ndarray:
    head, b64 = data_url.split(",", 1)
    assert head == "data:image/jpeg;base64"
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize(
    ("w", "h"), [(1920, 1080), (3840, 2160), (4000, 100), (1001, 1000), (640, 480), (1280, 720)]
)
def test_fit_size_keeps_aspect_and_pixel_cap(w, h):
    tw, th = fit_size(w, h)
    assert tw * th <= MAX_IMAGE_PIXELS
    if w * h <= MAX_IMAGE_PIXELS:
        assert (tw, th) == (w, h)
    else:
        assert abs(tw / th - w / h) / (w / h) < 0.02
        assert tw * th > 0.98 * MAX_IMAGE_PIXELS  # no needless shrinking


def test_encode_downscales_big_frame_and_keeps_content():
    img = np.zeros((1080, 1920, 3), np.uint8)
    img[:, :960] = (200, 30, 30)  # red left half, blue right half
    img[:, 960:] = (30, 30, 200)
    enc = encode_image(img)
    assert (enc.width, enc.height) == fit_size(1920, 1080)
    back = _decode(enc.data_url)
    assert back.shape == (enc.height, enc.width, 3)
    left, right = back[:, : enc.width // 4].mean((0, 1)), back[:, -enc.width // 4 :].mean((0, 1))
    assert left[0] > 150 and left[2] < 80, "RGB order must survive (red stays red)"
    assert right[2] > 150 and right[0] < 80
    assert enc.n_bytes == len(base64.b64decode(enc.data_url.split(",", 1)[1]))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((0, 5, 3), np.uint8),
    ],
)
def test_encode_rejects_bad_images_clearly(bad):
    with pytest.raises(BadFrameError):
        encode_image(bad)


def test_pick_evenly():
    assert pick_evenly(10, 4) == [0, 3, 6, 9]
    assert pick_evenly(3, 4) == [0, 1, 2]
    assert pick_evenly(5, 1) == [4]  # the newest frame
    assert pick_evenly(5, 0) == []
    assert pick_evenly(0, 3) == []


def test_prepare_picks_evenly_spaced_keyframes_within_budget():
    # Ten frames, each a distinct grey level: decoding tells which ones were sent, in order.
    frames = [np.full((90, 160, 3), 20 * i, np.uint8) for i in range(10)]
    prompt = Prompt(
        system="You are Sunny.",
        context="HUD: health 12",
        user="what just happened?",
        history=[Turn("user", "hi"), Turn("assistant", "hey!")],
        images=frames,
    )
    prepared = asyncio.run(prepare(prompt, max_images=4))
    assert prepared.dropped_images == 6
    msgs = prepared.messages
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0]["content"] == "You are Sunny."
    # Screen text (context) is untrusted: it goes to the user turn, never the system message.
    assert "HUD" not in msgs[0]["content"]
    parts = msgs[-1]["content"]
    assert parts[0] == {"type": "text", "text": "HUD: health 12\n\nwhat just happened?"}
    levels = [round(_decode(p["image_url"]["url"]).mean() / 20) for p in parts[1:]]
    assert levels == [0, 3, 6, 9]
    assert "detail" not in parts[1]["image_url"]


def test_prepare_text_only_role_and_bad_image_dropped():
    prompt = Prompt(user="hi", images=[np.zeros((8, 8, 3), np.uint8)])
    text_only = asyncio.run(prepare(prompt, max_images=0))
    assert text_only.messages == [{"role": "user", "content": "hi"}]
    assert text_only.dropped_images == 1

    mixed = Prompt(user="hi", images=[np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8)])
    prepared = asyncio.run(prepare(mixed, max_images=4))
    assert len(prepared.images) == 1 and prepared.dropped_images == 1
    assert len(prepared.messages[-1]["content"]) == 2  # text + the one good image
