"""The systems `bench memory` compares on LoCoMo, each answering "which turns?" for a query.

- couchmate: MemoryService on an EmbeddedStore in a temporary folder (the product path).
- bm25: plain BM25 (the bm25s package, English stopwords, no stemming) over the turn text.
- dense: cosine similarity of all-MiniLM-L6-v2 embeddings of the turn text.
- fusion: reciprocal-rank fusion (k=60) of bm25 and dense.
- mem0: the mem0ai package run locally, infer=False (no LLM), its huggingface embedder on
  the same model files, faiss vector store in a temporary folder.

All systems see the same memory text per turn. couchmate embeds with the product's default
(the int8 model); dense and fusion with the exact float32 model, as the baselines are
published. Query embeddings are computed once per model and shared (search_ms excludes them)
except for mem0, whose search embeds the query itself.
"""

from __future__ import annotations

import logging
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from couchmate.bench.memory_locomo import Conversation
from couchmate.memory.embeddings import Embedder

log = logging.getLogger(__name__)


class CachingEmbedder(Embedder):
    """Embeds each distinct text once per run, so systems share the work (and the numbers)."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            for t, v in zip(todo, self.inner.embed(todo), strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


class System(ABC):
    name = ""
    #: True when search_ms includes embedding the query (mem0 embeds inside search).
    search_includes_embedding = False

    @abstractmethod
    def ingest(self, conv: Conversation) -> None: ...

    @abstractmethod
    def search(self, conv: Conversation, query: str, k: int) -> list[int]:
        """Indexes of the best turns of `conv`, best first."""

    def prepare_query(self, conv: Conversation, query: str) -> None:  # noqa: B027
        """Work done before the timed search (e.g. embedding the query)."""

    def close(self) -> None:  # noqa: B027
        """Free what the system holds."""


class CouchmateSystem(System):
    name = "couchmate"

    def __init__(self, embedder: CachingEmbedder, folder: Path):
        from couchmate.memory.embedded_store import EmbeddedStore
        from couchmate.memory.service import MemoryService

        self.embedder = embedder
        self.service = MemoryService(EmbeddedStore(folder / "couchmate"), embedder)
        self._turn_of: dict[str, dict[str, int]] = {}
        self._qvec: np.ndarray | None = None

    def ingest(self, conv: Conversation) -> None:
        from couchmate.types import Memory

        memories = [
            Memory(
                user_id=conv.sample_id,
                kind="episode",
                text=t.memory_text,
                topics=[t.speaker],
                t=t.t,
                provenance={
                    "session": f"{conv.sample_id}/{t.session}",
                    "turn": t.index,
                    "dia_id": t.dia_id,
                    "speaker": t.speaker,
                },
            )
            for t in conv.turns
        ]
        ids = self.service.remember(conv.sample_id, memories)
        self._turn_of[conv.sample_id] = {mid: i for i, mid in enumerate(ids)}

    def prepare_query(self, conv: Conversation, query: str) -> None:
        self._qvec = self.embedder.embed([query])[0]

    def search(self, conv: Conversation, query: str, k: int) -> list[int]:
        hits = self.service.recall_vector(conv.sample_id, query, self._qvec, k=k)
        where = self._turn_of[conv.sample_id]
        return [where[h.memory.id] for h in hits]

    def close(self) -> None:
        self.service.close()


class Bm25System(System):
    name = "bm25"

    def __init__(self) -> None:
        import bm25s  # noqa: F401 — first, so that its own logging set-up comes before ours

        self._index: dict[str, object] = {}
        logging.getLogger("bm25s").setLevel(logging.WARNING)

    def ingest(self, conv: Conversation) -> None:
        import bm25s

        ix = bm25s.BM25()
        ix.index(
            bm25s.tokenize(
                [t.memory_text for t in conv.turns], stopwords="en", show_progress=False
            ),
            show_progress=False,
        )
        self._index[conv.sample_id] = ix

    def search(self, conv: Conversation, query: str, k: int) -> list[int]:
        import bm25s

        ix = self._index[conv.sample_id]
        q = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not q.vocab:
            return []
        docs, scores = ix.retrieve(q, k=min(k, len(conv.turns)), show_progress=False)
        return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def scores(self, conv: Conversation, query: str) -> np.ndarray:
        import bm25s

        ix = self._index[conv.sample_id]
        q = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
        return np.asarray(ix.get_scores(q), dtype=np.float32)


class DenseSystem(System):
    name = "dense"

    def __init__(self, embedder: CachingEmbedder):
        self.embedder = embedder
        self._mat: dict[str, np.ndarray] = {}
        self._qvec: np.ndarray | None = None

    def ingest(self, conv: Conversation) -> None:
        self._mat[conv.sample_id] = self.embedder.embed([t.memory_text for t in conv.turns])

    def prepare_query(self, conv: Conversation, query: str) -> None:
        self._qvec = self.embedder.embed([query])[0]

    def scores(self, conv: Conversation) -> np.ndarray:
        return self._mat[conv.sample_id] @ self._qvec

    def search(self, conv: Conversation, query: str, k: int) -> list[int]:
        s = self.scores(conv)
        return [int(i) for i in np.argsort(-s, kind="stable")[:k]]


class FusionSystem(System):
    """Reciprocal-rank fusion of the bm25 and dense baselines (k = 60)."""

    name = "fusion"

    def __init__(self, embedder: CachingEmbedder):
        self.bm25 = Bm25System()
        self.dense = DenseSystem(embedder)

    def ingest(self, conv: Conversation) -> None:
        self.bm25.ingest(conv)
        self.dense.ingest(conv)

    def prepare_query(self, conv: Conversation, query: str) -> None:
        self.dense.prepare_query(conv, query)

    def search(self, conv: Conversation, query: str, k: int) -> list[int]:
        n = len(conv.turns)
        fused = np.zeros(n)
        for s in (self.bm25.scores(conv, query), self.dense.scores(conv)):
            rank = np.empty(n)
            rank[np.argsort(-s, kind="stable")] = np.arange(n)
            fused += 1.0 / (60.0 + rank + 1.0)
        return [int(i) for i in np.argsort(-fused, kind="stable")[:k]]


class Mem0System(System):
    """mem0 (mem0ai) locally: infer=False, huggingface embedder on the packaged model, faiss.

    mem0 builds an LLM client at start-up even when infer=False; it is pointed at a closed
    local port and never called (any call would fail the run loudly, not silently).
    """

    name = "mem0"
    search_includes_embedding = True

    def __init__(self, folder: Path):
        os.environ.setdefault("MEM0_TELEMETRY", "False")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from mem0 import Memory as Mem0Memory

        from couchmate.memory.embeddings import model_path

        for noisy in ("mem0", "sentence_transformers", "transformers", "faiss"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        config = {
            "embedder": {
                "provider": "huggingface",
                "config": {"model": model_path(), "embedding_dims": 384},
            },
            "vector_store": {
                "provider": "faiss",
                "config": {
                    "collection_name": "locomo",
                    "path": str(folder / "mem0-faiss"),
                    "embedding_model_dims": 384,
                },
            },
            "llm": {
                "provider": "openai",
                "config": {
                    "api_key": "not-used",
                    "openai_base_url": "http://127.0.0.1:9/v1",
                    "model": "never-called",
                },
            },
            "history_db_path": str(folder / "mem0-history.db"),
        }
        self.mem = Mem0Memory.from_config(config)
        self._turn_of: dict[str, dict[str, int]] = {}

    def ingest(self, conv: Conversation) -> None:
        where: dict[str, int] = {}
        for i, t in enumerate(conv.turns):
            out = self.mem.add(
                [{"role": "user", "content": t.memory_text}],
                user_id=conv.sample_id,
                infer=False,
                metadata={"dia_id": t.dia_id, "session_date": t.date},
            )
            for r in out.get("results", []):
                where[r["id"]] = i
        self._turn_of[conv.sample_id] = where

    def search(self, conv: Conversation, query: str, k: int) -> list[int]:
        out = self.mem.search(query, filters={"user_id": conv.sample_id}, top_k=k, threshold=0.0)
        where = self._turn_of[conv.sample_id]
        return [where[r["id"]] for r in out.get("results", []) if r["id"] in where]


def make_systems(
    names: Sequence[str],
    embedder: CachingEmbedder,
    folder: Path,
    *,
    baseline_embedder: CachingEmbedder | None = None,
) -> list[System]:
    """couchmate uses `embedder`; dense and fusion `baseline_embedder` (default: the same)."""
    base = baseline_embedder or embedder
    makers = {
        "couchmate": lambda: CouchmateSystem(embedder, folder),
        "bm25": Bm25System,
        "dense": lambda: DenseSystem(base),
        "fusion": lambda: FusionSystem(base),
        "mem0": lambda: Mem0System(folder),
    }
    out = []
    for n in names:
        if n not in makers:
            from couchmate.errors import UserError

            raise UserError(f"unknown system {n!r}", hint=f"known: {', '.join(makers)}")
        out.append(makers[n]())
    return out


def temp_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="couchmate-bench-memory-")
