from __future__ import annotations

import numpy as np

from couchmate.watch.ocr import Ocr, default_threads
from couchmate.watch.profile import load_profile


def _box(frame, profile: str, field: str) -> np.ndarray:
    h, w = frame.image.shape[:2]
    x0, y0, x1, y1 = load_profile(profile).box(field, w, h)
    return frame.image[y0:y1, x0:x1]


def test_recognition_reads_real_hud_boxes_in_one_call(ocr: Ocr, doom_sp):
    frame = doom_sp[10]
    calls = ocr.calls
    (health, hs), (armor, as_) = ocr.recognize(
        [_box(frame, "doom", "health"), _box(frame, "doom", "armor")]
    )
    assert ocr.calls == calls + 1
    assert health == f"{frame.truth['health']}%" and hs > 0.9
    assert armor == f"{frame.truth['armor']}%" and as_ > 0.9


def test_detection_finds_the_status_bar_labels(ocr: Ocr, doom_dm):
    bar = doom_dm[5].image[380:]  # the status bar strip: detection + recognition
    boxes = ocr.read_text(bar)
    words = " ".join(b.text.upper() for b in boxes)
    assert "HEALTH" in words and "FRAGS" in words
    for b in boxes:
        x0, y0, x1, y1 = b.box
        assert 0 <= x0 < x1 <= bar.shape[1] and 0 <= y0 < y1 <= bar.shape[0]
    # sorted top to bottom, then left to right: HEALTH comes before the label right of it
    texts = [b.text.upper() for b in boxes]
    assert texts.index("HEALTH") < next(i for i, t in enumerate(texts) if "FRAGS" in t)


def test_nothing_to_read_gives_nothing(ocr: Ocr):
    assert ocr.read_text(np.full((120, 200, 3), 90, np.uint8)) == []
    assert ocr.recognize([]) == []


def test_thread_count_is_modest_and_settable(monkeypatch):
    assert 1 <= default_threads() <= 2
    monkeypatch.setenv("COUCHMATE_OCR_THREADS", "3")
    assert default_threads() == 3
    assert Ocr(threads=1).threads == 1
