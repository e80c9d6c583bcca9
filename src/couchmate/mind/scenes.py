"""Scene novelty: has the player been here before?

A caller that knows the scene (a level name, a menu id) passes it as a fingerprint string
and the match is exact. Otherwise the mind hashes the newest keyframe (a 64-bit difference
hash of a 9×8 grey thumbnail, ~50 µs) and calls a scene seen before when a remembered hash is
within `max_distance` bits (14 of 64: a few steps in a ViZDoom room differ by 5–16 bits,
two different maps by 23+) — robust to small movement and HUD changes, not to a new room.
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np


def scene_hash(image: np.ndarray) -> int:
    """64-bit dHash of an RGB (or grey) image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


class SceneMemory:
    """The scenes seen so far (bounded, least recently seen forgotten first)."""

    def __init__(self, max_scenes: int = 512, max_distance: int = 14):
        self.max_scenes = max_scenes
        self.max_distance = max_distance
        self._names: OrderedDict[str, None] = OrderedDict()
        self._hashes: OrderedDict[int, None] = OrderedDict()

    def novel_name(self, fingerprint: str) -> bool:
        if fingerprint in self._names:
            self._names.move_to_end(fingerprint)
            return False
        self._names[fingerprint] = None
        if len(self._names) > self.max_scenes:
            self._names.popitem(last=False)
        return True

    def novel_hash(self, h: int) -> bool:
        for seen in self._hashes:
            if (seen ^ h).bit_count() <= self.max_distance:
                self._hashes.move_to_end(seen)
                return False
        self._hashes[h] = None
        if len(self._hashes) > self.max_scenes:
            self._hashes.popitem(last=False)
        return True
