"""What the mind asks a model, and how it becomes an OpenAI chat request.

The dialogue layer fills a `Prompt` (system text, context, the user's turn, a few keyframes);
`prepare()` turns it into wire messages: images downscaled to ≤ 1 megapixel, encoded as
base64 JPEG data URLs off the event loop, at most `max_images` of them (evenly spaced
through a clip when there are more). Context (which holds screen text, and screen text is
untrusted) always goes into the user message, never into the system message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from couchmate.errors import BadFrameError

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 1_000_000
JPEG_QUALITY = 80


@dataclass(slots=True)
class Turn:
    role: Literal["user", "assistant"]
    text: str


@dataclass(slots=True)
class Prompt:
    """One request to a model. `images` are RGB uint8 arrays (H×W×3), oldest first."""

    system: str = ""
    context: str = ""
    user: str = ""
    history: list[Turn] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    # OpenAI's image detail hint; None leaves it out (not every server knows it).
    image_detail: Literal["auto", "low", "high"] | None = None


@dataclass(slots=True)
class EncodedImage:
    data_url: str
    width: int
    height: int
    n_bytes: int
    encode_ms: float


@dataclass(slots=True)
class PreparedRequest:
    messages: list[dict[str, Any]]
    images: list[EncodedImage]
    dropped_images: int  # over the role's budget, or undecodable
    prepare_ms: float  # wall time of prepare(), image encoding included


def pick_evenly(n: int, k: int) -> list[int]:
    """Indices of `k` items spread evenly over `n` (first and last kept when k ≥ 2)."""
    if k <= 0 or n <= 0:
        return []
    if k >= n:
        return list(range(n))
    if k == 1:
        return [n - 1]  # the newest frame says most about "now"
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


def fit_size(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """The largest size with the same aspect ratio and at most `max_pixels` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    while w * h > max_pixels:  # float rounding can leave us a row over
        w, h = (w - 1, h) if w >= h else (w, h - 1)
    return w, h


def encode_image(
    image: np.ndarray, *, max_pixels: int = MAX_IMAGE_PIXELS, quality: int = JPEG_QUALITY
) -> EncodedImage:
    """RGB array → base64 JPEG data URL, downscaled to ≤ max_pixels. CPU work: run it in an
    executor (cv2 releases the GIL)."""
    t0 = time.perf_counter()
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise BadFrameError(f"expected an H×W×3 RGB image, got {shape}")
    if image.dtype != np.uint8:
        raise BadFrameError(f"expected a uint8 image, got {image.dtype}")
    h, w = image.shape[:2]
    if w == 0 or h == 0:
        raise BadFrameError("empty image")
    tw, th = fit_size(w, h, max_pixels)
    if (tw, th) != (w, h):
        image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise BadFrameError(f"could not JPEG-encode a {w}x{h} image")
    data = buf.tobytes()
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return EncodedImage(url, tw, th, len(data), (time.perf_counter() - t0) * 1000.0)


def build_messages(prompt: Prompt, images: list[EncodedImage]) -> list[dict[str, Any]]:
    """Wire-format chat messages. Text-only requests use plain string content, which every
    OpenAI-compatible server accepts; image parts only when there are images."""
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.extend({"role": t.role, "content": t.text} for t in prompt.history)
    text = "\n\n".join(p for p in (prompt.context, prompt.user) if p)
    if not images:
        messages.append({"role": "user", "content": text})
        return messages
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for img in images:
        url: dict[str, Any] = {"url": img.data_url}
        if prompt.image_detail:
            url["detail"] = prompt.image_detail
        parts.append({"type": "image_url", "image_url": url})
    messages.append({"role": "user", "content": parts})
    return messages


async def prepare(
    prompt: Prompt,
    *,
    max_images: int,
    max_pixels: int = MAX_IMAGE_PIXELS,
    executor: Executor | None = None,
) -> PreparedRequest:
    """Pick, encode (in parallel, off the loop) and assemble. A bad image is logged and left
    out; the request goes on without it."""
    t0 = time.perf_counter()
    chosen = [prompt.images[i] for i in pick_evenly(len(prompt.images), max_images)]
    encoded: list[EncodedImage] = []
    if chosen:
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(executor, _encode_or_none, img, max_pixels) for img in chosen)
        )
        encoded = [r for r in results if r is not None]
    return PreparedRequest(
        messages=build_messages(prompt, encoded),
        images=encoded,
        dropped_images=len(prompt.images) - len(encoded),
        prepare_ms=(time.perf_counter() - t0) * 1000.0,
    )


def _encode_or_none(image: np.ndarray, max_pixels: int) -> EncodedImage | None:
    try:
        return encode_image(image, max_pixels=max_pixels)
    except BadFrameError as e:
        log.warning("dropping an image from the prompt: %s", e)
        return None
