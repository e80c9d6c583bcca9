"""Embedders: the numpy MiniLM equals sentence-transformers; the OpenAI-compatible one talks
to a real llama.cpp server and maps failures to ModelError."""

from __future__ import annotations

import numpy as np
import pytest

from couchmate.config import MemorySettings
from couchmate.errors import ModelError, UserError
from couchmate.memory.embeddings import EMBEDDERS, OpenAIEmbedder, make_embedder

TEXTS = [
    "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
    "short",
    "A much longer sentence about the boss fight in Elden Ring, " * 12,  # > 128 tokens
    "日本語のテキストも大丈夫",
]


def test_local_embedder_rows_are_unit_length_and_order_independent():
    e = make_embedder()
    v = e.embed(TEXTS)
    assert v.shape == (4, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # batching sorts by length internally; the caller's order must be kept
    w = e.embed(TEXTS[::-1])[::-1]
    assert np.allclose(v, w, atol=1e-5)
    assert e.embed([]).shape == (0, 384)
    assert make_embedder() is e  # weights loaded once per process


@pytest.mark.slow
def test_numpy_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from couchmate.memory.embeddings import model_path

    ours = make_embedder().embed(TEXTS)
    st = SentenceTransformer(model_path(), device="cpu")
    theirs = st.encode(TEXTS, normalize_embeddings=True)
    assert (ours * theirs).sum(axis=1).min() > 0.9999


def test_unknown_embedder_and_missing_endpoint_settings():
    with pytest.raises(UserError):
        EMBEDDERS.get("nope")
    with pytest.raises(UserError):
        make_embedder(MemorySettings(embedder="openai"))


def test_unreachable_endpoint_is_a_retryable_model_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody listens
    e = OpenAIEmbedder(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=2)
    with pytest.raises(ModelError) as info:
        e.embed(["hello"])
    assert info.value.retryable and info.value.hint


@pytest.mark.server
@pytest.mark.slow
def test_openai_embedder_against_a_real_llama_server(tmp_path):
    from couchmate.models.local_server import LlamaServer, write_tiny_gguf

    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    args = ("--embedding", "true", "--kv_overrides", "llama.pooling_type=int:1")
    with LlamaServer(gguf, alias="tiny-embed", extra_args=args) as srv:
        e = OpenAIEmbedder(base_url=srv.base_url, model="tiny-embed", batch_size=2)
        v = e.embed(["one", "two words", "three little words"])  # two requests
        assert v.shape[0] == 3 and e.dim == v.shape[1] > 0
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        assert not np.allclose(v[0], v[2])
        # the same text gives the same vector, whichever batch it travels in
        assert np.allclose(e.embed(["three little words"])[0], v[2], atol=1e-4)
        # the service learns the remote model's width and stores memories with it
        from couchmate.memory.service import MemoryService

        settings = MemorySettings(
            embedder="openai",
            embed_base_url=srv.base_url,
            embed_model="tiny-embed",
            path=str(tmp_path / "mem"),
        )
        svc = MemoryService.from_settings(settings)
        assert svc.store.dim == v.shape[1]
        mid = svc.note("u", "the castle gate is locked")
        assert svc.recall("u", "castle gate")[0].memory.id == mid
        svc.close()
