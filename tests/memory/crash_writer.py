"""Child process for test_crash_safety: writes memories forever, printing each acknowledged id.

Usage: python crash_writer.py STORE_DIR. Vectors come from the memory's number (seeded), so
the test can search for any acknowledged memory by its own vector.
"""

from __future__ import annotations

import sys

import numpy as np

from couchmate.memory.embedded_store import EmbeddedStore
from couchmate.types import Memory

DIM = 16


def vector(i: int) -> np.ndarray:
    v = np.random.default_rng(i).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def main(path: str) -> None:
    store = EmbeddedStore(path, dim=DIM, snapshot_min=1)
    i = store.open_user("crash")  # numbers continue after an earlier crash
    while True:
        batch = [
            Memory("crash", "episode", f"memory {j} about item{j % 7}", provenance={"n": j})
            for j in range(i, i + 1 + i % 3)
        ]
        ids = store.add(batch, np.stack([vector(m.provenance["n"]) for m in batch]))
        for m, mid in zip(batch, ids, strict=True):
            print(f"{m.provenance['n']} {mid}", flush=True)
        i += len(batch)
        if i % 40 < 3:
            store.save_indexes()  # a kill may also land in the middle of a snapshot


if __name__ == "__main__":
    main(sys.argv[1])
