"""One user's vectors in memory: exact search while small, an IVF index when large.

Exact: a float32 matrix, one row per document, searched with one matrix-vector product
(20k memories ≈ 31 MB and a millisecond or two). Past `ann_threshold` rows the vectors move to a
faiss IVF index with 8-bit scalar quantization (1M memories ≈ 400 MB instead of 1.5 GB,
and a query scans a few percent of them). Without faiss, search stays exact.
"""

from __future__ import annotations

import numpy as np

try:  # faiss is optional: the exact path covers everyone without it
    import faiss
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None


NLIST = 1024
TRAIN_MAX = 20_000


class VectorIndex:
    def __init__(self, dim: int, *, ann_threshold: int = 20_000, nprobe: int = 32):
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.nprobe = nprobe
        self._mat = np.zeros((0, dim), dtype=np.float32)
        self.n = 0
        self._ivf = None

    @property
    def kind(self) -> str:
        return "ivf-sq8" if self._ivf is not None else "exact"

    def add(self, start: int, vectors: np.ndarray) -> None:
        """Rows `start …` (documents are numbered densely, in order)."""
        v = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        assert start == self.n, "documents must be added in order"
        if self._ivf is not None:
            self._ivf.add_with_ids(v, np.arange(start, start + len(v), dtype=np.int64))
            self.n += len(v)
            return
        need = self.n + len(v)
        if need > len(self._mat):
            grown = np.zeros((max(need, 2 * len(self._mat), 256), self.dim), dtype=np.float32)
            grown[: self.n] = self._mat[: self.n]
            self._mat = grown
        self._mat[self.n : need] = v
        self.n = need
        if faiss is not None and self.n > self.ann_threshold:
            self._to_ivf(self._mat[: self.n])

    def _to_ivf(self, data: np.ndarray) -> None:
        # About 1000 lists (one per 20 memories at the default switch, at most NLIST): a
        # user who grows to a million memories has ~1000 per list and a query scans nprobe
        # of them (~3% of the data). A lower switch threshold gives fewer lists.
        n = len(data)
        nlist = min(NLIST, max(16, n // 20))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(0)
        sample = data if n <= TRAIN_MAX else data[rng.choice(n, TRAIN_MAX, replace=False)]
        ivf.cp.niter = 10
        ivf.cp.min_points_per_centroid = 1  # trained early (20k rows): quiet, and fine
        ivf.train(np.ascontiguousarray(sample))
        ivf.add_with_ids(np.ascontiguousarray(data), np.arange(n, dtype=np.int64))
        ivf.nprobe = self.nprobe
        self._ivf = ivf
        self._mat = np.zeros((0, self.dim), dtype=np.float32)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(documents, cosine scores), best first, among rows where `allowed` is True."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        if self.n == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self._ivf is not None:
            fetch = min(self.n, max(k * 3, k + 32))
            while True:
                sims, docs = self._ivf.search(q, fetch)
                sims, docs = sims[0], docs[0]
                keep = docs >= 0
                if allowed is not None:
                    keep &= allowed[np.maximum(docs, 0)]
                if keep.sum() >= k or fetch >= min(self.n, 4096):
                    docs, sims = docs[keep][:k], sims[keep][:k]
                    return docs.astype(np.int64), sims.astype(np.float32)
                fetch = min(self.n, fetch * 4)
        sims = self._mat[: self.n] @ q[0]
        if allowed is not None:
            sims = np.where(allowed[: self.n], sims, -np.inf)
        k = min(k, self.n)
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        top = top[np.isfinite(sims[top])]
        return top.astype(np.int64), sims[top].astype(np.float32)

    # --- snapshot -----------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        if self._ivf is not None:
            return {"vec_ivf": faiss.serialize_index(self._ivf)}
        return {"vec_exact": self._mat[: self.n]}

    @classmethod
    def from_state(
        cls, st: dict[str, np.ndarray], dim: int, *, ann_threshold: int = 20_000, nprobe: int = 32
    ) -> VectorIndex:
        ix = cls(dim, ann_threshold=ann_threshold, nprobe=nprobe)
        if "vec_ivf" in st:
            if faiss is None:
                raise ValueError("snapshot needs faiss")
            ix._ivf = faiss.deserialize_index(np.asarray(st["vec_ivf"], dtype=np.uint8))
            ix._ivf.nprobe = nprobe
            ix.n = int(ix._ivf.ntotal)
        else:
            ix._mat = np.ascontiguousarray(st["vec_exact"], dtype=np.float32)
            ix.n = len(ix._mat)
        return ix
