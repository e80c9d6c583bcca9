"""Make any image a pipeline frame: RGB, uint8, H×W×3, C-contiguous, no bigger than a cap.

Every source (files, screen, engines, plugins) funnels its pixels through `sanitize_frame`,
so later stages can assume one layout. `load_image` opens an image file without letting a
decompression bomb or a truncated file take the process down.

Memory matters here: a 20000×20000 screenshot is 1.6 GB as RGBA. Nothing below makes a
full-size copy of a big input: channels are dropped and dtypes converted only after the
image has been shrunk, and dtypes OpenCV cannot resize are strided down first.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from couchmate.config import WatchSettings
from couchmate.errors import BadFrameError

ChannelOrder = Literal["RGB", "BGR"]

#: The pipeline-wide cap on frame size (pixels), shared with the `watch.max_pixels` setting.
DEFAULT_MAX_PIXELS: int = WatchSettings.model_fields["max_pixels"].default

#: Refuse to decode image files above this many pixels (a JPEG is first shrunk by its
#: decoder, so this applies after that). 120 M pixels is ~360 MB of RGB: big, not fatal.
DEFAULT_MAX_DECODE_PIXELS = 120_000_000

# cv2.resize handles these dtypes directly; anything else is strided and converted first.
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def fit_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest (w, h) with the same aspect ratio and at most `max_pixels` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    w = max(1, int(width * scale))
    h = max(1, int(height * scale))
    while w * h > max_pixels:  # int rounding can leave us one row or column over
        if w >= h:
            w -= 1
        else:
            h -= 1
    return w, h


def sanitize_frame(
    image: np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    order: ChannelOrder = "RGB",
) -> np.ndarray:
    """Return `image` as RGB uint8 H×W×3, downscaled (aspect kept) to at most `max_pixels`.

    Accepts H×W or H×W×1 grayscale, H×W×3 and H×W×4 (alpha is dropped), any integer dtype
    (16-bit is scaled down by 257, wider types are clipped), bool, and floats (values in
    [0, 1] are scaled by 255, NaN becomes 0). `order="BGR"` says the input is BGR/BGRA
    (OpenCV, mss). An input that already fits is returned as is, without a copy.

    Raises BadFrameError for an empty image or one that is not an image at all.
    """
    if not isinstance(image, np.ndarray):
        raise BadFrameError(f"frame is a {type(image).__name__}, not a numpy array")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise BadFrameError(
            f"frame has shape {image.shape}; expected H×W, H×W×3 or H×W×4",
            hint="sources must hand over grayscale, RGB or RGBA pixels",
        )
    if image.size == 0:
        raise BadFrameError(f"frame is empty (shape {image.shape})")
    h, w = image.shape[:2]
    is_rgb8 = image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    if is_rgb8 and order == "RGB" and h * w <= max_pixels:
        return np.ascontiguousarray(image)

    image = _shrink(image, max_pixels)
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB if order == "BGR" else cv2.COLOR_RGBA2RGB
        return cv2.cvtColor(np.ascontiguousarray(image), code)
    if order == "BGR":
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def _shrink(image: np.ndarray, max_pixels: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image
    tw, th = fit_size(w, h, max_pixels)
    # A strided view costs nothing; copying it costs only the kept pixels. Stride to about
    # twice the target when the input is far too big or OpenCV cannot read it in place,
    # then let INTER_AREA average the rest.
    direct = image.dtype in _CV2_DTYPES and image.flags.c_contiguous
    step = max(1, min(w // (2 * tw), h // (2 * th)))
    if step > 1 and (not direct or step >= 4):
        image = image[::step, ::step]
    if image.dtype not in _CV2_DTYPES:
        image = _to_uint8(image)
    image = np.ascontiguousarray(image)
    return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    dt = image.dtype
    if dt == np.uint8:
        return image
    if dt == np.bool_:
        return image.astype(np.uint8) * 255
    if dt == np.uint16:
        return (image // 257).astype(np.uint8)
    if np.issubdtype(dt, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    if np.issubdtype(dt, np.floating):
        f = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
        if f.size and float(f.max()) <= 1.0:
            f = f * 255.0
        return np.clip(f + 0.5, 0, 255).astype(np.uint8)
    raise BadFrameError(f"frame has unsupported pixel type {dt}")


def load_image(
    path: str | Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS,
) -> np.ndarray:
    """Read an image file as a sanitized RGB frame of at most `max_pixels`.

    A JPEG larger than the cap is decoded at 1/2, 1/4 or 1/8 scale (PIL `draft`), so a
    huge photo never exists at full size in memory. Any other format above
    `max_decode_pixels`, and anything PIL calls a decompression bomb, is refused.
    Zero-byte, truncated, corrupt or unknown files raise BadFrameError naming the file.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # We apply our own, lower limits below; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format == "JPEG" and img.width * img.height > max_pixels:
                    img.draft("RGB", fit_size(img.width, img.height, max_pixels))
                if img.width * img.height > max_decode_pixels:
                    raise BadFrameError(
                        f"{path}: image is {img.width}×{img.height}, too large to decode",
                        hint=f"images above {max_decode_pixels:,} pixels are skipped; "
                        "scale it down first",
                    )
                img.load()
                pixels = _pil_to_array(img)
    except BadFrameError:
        raise
    except Image.DecompressionBombError as e:
        raise BadFrameError(
            f"{path}: image is too large to decode safely ({e})",
            hint="scale the image down first",
        ) from e
    except UnidentifiedImageError as e:
        what = "empty file" if _size(path) == 0 else "not an image PIL can read"
        raise BadFrameError(f"{path}: {what}") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        # Truncated or corrupt data: PIL raises OSError ("image file is truncated"),
        # SyntaxError (bad PNG chunks) or ValueError depending on the decoder.
        raise BadFrameError(f"{path}: cannot decode image ({e})") from e
    return sanitize_frame(pixels, max_pixels)


def _pil_to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("RGB", "RGBA", "L"):
        return np.asarray(img)
    if img.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img).astype(np.uint16, copy=False)
    if img.mode in ("I", "F"):
        a = np.asarray(img)
        return a if img.mode == "F" else a.astype(np.int64, copy=False)
    if img.mode in ("LA", "PA", "P", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        has_alpha = img.mode in ("LA", "PA") or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    return np.asarray(img.convert("RGB"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
