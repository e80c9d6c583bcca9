"""OCR with rapidocr's shipped PP-OCR ONNX models: nothing is downloaded.

Two uses: `recognize(crops)` runs the recognition model only, on HUD boxes whose place is
known (~25 ms per box on a laptop core); `read_text(image)` runs detection + recognition
for layouts we do not know (about a second for a full frame on a laptop CPU, so callers
run it rarely). One engine is shared per process: the models load once (lazily), and
onnxruntime is held to a few threads because the game runs beside us.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def default_threads() -> int:
    env = os.environ.get("COUCHMATE_OCR_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True, slots=True)
class TextBox:
    text: str
    score: float
    # corners in the image's pixels: x0, y0, x1, y1 (the axis-aligned hull of the quad)
    box: tuple[int, int, int, int]


class Ocr:
    """A lazily loaded rapidocr engine. Thread-safe; callers may share one."""

    def __init__(self, threads: int | None = None):
        self.threads = threads or default_threads()
        self._engine = None
        self._lock = threading.Lock()
        self.calls = 0  # recognition or detection calls made (for benchmarks)
        self.boxes = 0  # crops recognised

    def _get(self):
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._load()
        return self._engine

    def _load(self):
        from rapidocr import RapidOCR
        from rapidocr.utils.log import logger as rlog

        # rapidocr logs every model load (INFO) and every empty detection (WARNING)
        rlog.setLevel(logging.ERROR)
        t = self.threads
        return RapidOCR(
            params={
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": t,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )

    def warm(self) -> None:
        """Load the recognition model now (first use otherwise pays ~0.3 s)."""
        self.recognize([np.zeros((32, 64, 3), np.uint8)])
        self.calls -= 1
        self.boxes -= 1

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Text and score for each RGB crop (recognition model only, no detection)."""
        if not crops:
            return []
        from rapidocr.ch_ppocr_rec import TextRecInput

        rec = self._get()._load_rec_model()
        # PP-OCR was trained on BGR (cv2) images
        imgs = [np.ascontiguousarray(c[..., ::-1]) for c in crops]
        out = rec(TextRecInput(img=imgs))
        self.calls += 1
        self.boxes += len(crops)
        return [(str(t), float(s)) for t, s in zip(out.txts, out.scores, strict=True)]

    def read_text(self, image: np.ndarray, min_score: float = 0.5) -> list[TextBox]:
        """Detect and recognise every text line in an RGB image, top to bottom."""
        eng = self._get()
        bgr = np.ascontiguousarray(image[..., ::-1])
        with self._lock:  # rapidocr keeps per-call flags on the engine object
            res = eng(bgr, use_det=True, use_cls=False, use_rec=True, text_score=min_score)
        self.calls += 1
        if getattr(res, "txts", None) is None or res.boxes is None:
            return []
        out = []
        for quad, text, score in zip(res.boxes, res.txts, res.scores, strict=True):
            q = np.asarray(quad)
            x0, y0 = q.min(axis=0)
            x1, y1 = q.max(axis=0)
            out.append(TextBox(str(text), float(score), (int(x0), int(y0), int(x1), int(y1))))
        out.sort(key=lambda b: (b.box[1] // 8, b.box[0]))
        return out


_shared: Ocr | None = None
_shared_lock = threading.Lock()


def shared_ocr() -> Ocr:
    """The process-wide engine (models are ~15 MB; one copy is enough)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Ocr()
    return _shared
