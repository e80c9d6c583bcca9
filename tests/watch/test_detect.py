from __future__ import annotations

import cv2
import numpy as np
import pytest

from couchmate.types import Frame
from couchmate.watch.detect import detect_profile, word_matches
from couchmate.watch.profile import load_profile
from couchmate.watch.testing import ATARI_PROFILES, doom_frames


@pytest.mark.parametrize("resolution", ["320X240", "640X480", "1280X960"])
@pytest.mark.parametrize("hud", ["doom", "doom-deathmatch"])
def test_doom_frames_are_recognised_with_their_hud(hud, resolution, ocr):
    frame = next(iter(doom_frames(1, hud=hud, resolution=resolution, seed=2)))
    assert detect_profile(frame, ocr=ocr).name == hud


def test_atari_frames_are_recognised(atari, ocr):
    for game, frames in atari.items():
        for f in (frames[10], frames[-1]):
            assert detect_profile(f, ocr=ocr).name == ATARI_PROFILES[game], game


def _photo_like(seed: int) -> np.ndarray:
    """Smooth colour fields and edges: neither a HUD nor noise."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (640, 480))
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        p = rng.integers(0, 640, 2)
        cv2.circle(img, (int(p[0]), int(p[1]) % 480), int(rng.integers(10, 80)), c, -1)
    return cv2.GaussianBlur(img, (0, 0), 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_an_unknown_picture_is_generic(seed, ocr):
    assert detect_profile(_photo_like(seed), ocr=ocr).name == "generic"


def test_candidates_limit_the_choice(doom_dm, atari, ocr):
    frame = doom_dm[0]
    assert detect_profile(frame, ["atari-pong", "doom"], ocr=ocr).name == "generic"
    pong = atari["pong"][5]
    assert detect_profile(pong, [load_profile("atari-pong")], ocr=ocr).name == "atari-pong"


def test_cheap_checks_come_before_ocr(atari, ocr):
    calls = ocr.calls
    detect_profile(Frame(image=atari["breakout"][3].image, t=0.0, source="x"), ocr=ocr)
    assert ocr.calls == calls  # an Atari frame fails Doom's aspect: no OCR at all


def test_anchor_words_match_loosely():
    assert word_matches("ARHS", ["ARMS"])
    assert word_matches(" health ", ["HEALTH"])
    assert not word_matches("FRAGS", ["ARMS"])
    assert not word_matches("", ["ARMS"])
