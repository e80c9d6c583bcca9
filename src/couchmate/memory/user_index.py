"""One user's in-memory search index: documents, their vectors and their BM25 postings.

Documents are numbered densely in the order they were stored (SQLite row order), so a row
id maps to a document number by binary search and nothing else needs a dictionary. The
index is a cache of the database: it can be saved as a snapshot (one .npz file) and
rebuilt or brought up to date from the database at any time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from couchmate.memory.lexical import LexicalIndex
from couchmate.memory.vectors import VectorIndex

KIND_CODES = {"episode": 0, "fact": 1, "progress": 2}
SNAPSHOT_VERSION = 1


def _grow(a: np.ndarray, need: int) -> np.ndarray:
    if need <= len(a):
        return a
    out = np.zeros(max(need, 2 * len(a), 256), dtype=a.dtype)
    out[: len(a)] = a
    return out


class UserIndex:
    def __init__(self, dim: int, *, ann_threshold: int = 20_000):
        self.dim = dim
        self.rowids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.kinds = np.zeros(0, dtype=np.int8)
        self.n = 0
        self.n_dead = 0
        self.dirty = False  # changed since the snapshot it was loaded from
        self.vectors = VectorIndex(dim, ann_threshold=ann_threshold)
        self.lexical = LexicalIndex()

    @property
    def max_rowid(self) -> int:
        return int(self.rowids[self.n - 1]) if self.n else 0

    @property
    def live(self) -> int:
        return self.n - self.n_dead

    def add(self, rowids: list[int], kinds: list[str], texts: list[str], vecs: np.ndarray) -> None:
        if not rowids:
            return
        if self.n and rowids[0] <= self.max_rowid:
            raise ValueError("rows must arrive in increasing row id order")
        start, m = self.n, len(rowids)
        self.rowids = _grow(self.rowids, start + m)
        self.alive = _grow(self.alive, start + m)
        self.kinds = _grow(self.kinds, start + m)
        self.rowids[start : start + m] = rowids
        self.alive[start : start + m] = True
        self.kinds[start : start + m] = [KIND_CODES[k] for k in kinds]
        self.vectors.add(start, vecs)
        for i, text in enumerate(texts):
            self.lexical.add(start + i, text)
        self.n += m
        self.dirty = True

    def docs_of(self, rowids: list[int] | np.ndarray) -> np.ndarray:
        """Document numbers of these row ids (those present)."""
        r = np.asarray(rowids, dtype=np.int64)
        pos = np.searchsorted(self.rowids[: self.n], r)
        pos = np.minimum(pos, max(self.n - 1, 0))
        ok = (self.n > 0) & (self.rowids[pos] == r) if self.n else np.zeros(len(r), bool)
        return pos[ok]

    def remove(self, rowids: list[int] | np.ndarray) -> None:
        for d in self.docs_of(rowids):
            if self.alive[d]:
                self.alive[d] = False
                self.n_dead += 1
                self.dirty = True
                self.lexical.remove(int(d))

    def allowed(self, kind_codes: list[int] | None) -> np.ndarray:
        a = self.alive[: self.n]
        if kind_codes:
            a = a & np.isin(self.kinds[: self.n], kind_codes)
        return a

    def dense(
        self, vector: np.ndarray, k: int, kind_codes: list[int] | None
    ) -> list[tuple[int, float]]:
        allowed = self.allowed(kind_codes)
        docs, sims = self.vectors.search(vector, k, allowed)
        return [(int(self.rowids[d]), float(s)) for d, s in zip(docs, sims, strict=True)]

    def lexical_top(
        self, text: str, k: int, kind_codes: list[int] | None
    ) -> list[tuple[int, float]]:
        scores = self.lexical.scores(text, self.allowed(kind_codes))
        nz = np.flatnonzero(scores > 0)
        if not len(nz):
            return []
        if len(nz) > k:
            nz = nz[np.argpartition(-scores[nz], k - 1)[:k]]
        nz = nz[np.argsort(-scores[nz], kind="stable")]
        return [(int(self.rowids[d]), float(scores[d])) for d in nz]

    # --- snapshot -----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old snapshot or the new one, never half."""
        arrays = {
            "version": np.array([SNAPSHOT_VERSION]),
            "dim": np.array([self.dim]),
            "rowids": self.rowids[: self.n],
            "alive": self.alive[: self.n],
            "kinds": self.kinds[: self.n],
            **self.vectors.state(),
            **self.lexical.state(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.dirty = False

    @classmethod
    def load(cls, path: Path, dim: int, *, ann_threshold: int = 20_000) -> UserIndex:
        with np.load(path, allow_pickle=False) as z:
            st = {k: z[k] for k in z.files}
        if int(st["version"][0]) != SNAPSHOT_VERSION or int(st["dim"][0]) != dim:
            raise ValueError("snapshot of another version or dimension")
        ix = cls(dim, ann_threshold=ann_threshold)
        ix.rowids = st["rowids"].astype(np.int64)
        ix.alive = st["alive"].astype(bool)
        ix.kinds = st["kinds"].astype(np.int8)
        ix.n = len(ix.rowids)
        ix.n_dead = int((~ix.alive).sum())
        ix.vectors = VectorIndex.from_state(st, dim, ann_threshold=ann_threshold)
        ix.lexical = LexicalIndex.from_state(st)
        if ix.vectors.n != ix.n or ix.lexical.n_docs > ix.n:
            raise ValueError("snapshot arrays disagree")
        return ix
