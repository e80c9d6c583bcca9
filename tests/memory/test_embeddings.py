"""Embedders: the numpy MiniLM equals sentence-transformers, the int8 ONNX one stays close to
it and caches its built model; the OpenAI-compatible one talks to a real llama.cpp server
and maps failures to ModelError."""

from __future__ import annotations

import numpy as np
import pytest

from couchmate.config import MemorySettings
from couchmate.errors import ModelError, UserError
from couchmate.memory.embeddings import OpenAIEmbedder, make_embedder

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

    ours = make_embedder(MemorySettings(embedder="local-exact")).embed(TEXTS)
    st = SentenceTransformer(model_path(), device="cpu")
    theirs = st.encode(TEXTS, normalize_embeddings=True)
    assert (ours * theirs).sum(axis=1).min() > 0.9999


def test_int8_embedder_stays_close_to_the_exact_one_and_ranks_alike():
    exact = make_embedder(MemorySettings(embedder="local-exact"))
    int8 = make_embedder()
    assert (int8.name, exact.name) == ("local", "local-exact")
    a, b = int8.embed(TEXTS), exact.embed(TEXTS)
    assert (a * b).sum(axis=1).min() > 0.97
    # Nearest neighbours survive quantization: same best match for each query.
    docs = [
        "I beat the fire boss in chapter three.",
        "My sister Mia loves horror games.",
        "We hiked in Yosemite last summer.",
        "Please never spoil the ending for me.",
    ]
    queries = ["which boss did I beat?", "who is Mia?", "where did we hike?", "spoilers?"]
    for e in (int8, exact):
        best = (e.embed(queries) @ e.embed(docs).T).argmax(axis=1)
        assert best.tolist() == [0, 1, 2, 3]


def test_int8_model_is_cached_rebuilt_when_torn_and_works_without_a_cache(
    tmp_path, monkeypatch, caplog
):
    import onnx

    from couchmate.memory import minilm_onnx
    from couchmate.memory.embeddings import model_path

    cache = tmp_path / "cache"
    first = minilm_onnx.OnnxMiniLM(model_path(), cache=cache)
    files = list(cache.glob("minilm-int8-*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 10_000_000
    ops = {n.op_type for n in onnx.load(str(files[0])).graph.node}
    assert "MatMulInteger" in ops and "drift" not in caplog.text  # really int8
    want = first.embed(TEXTS)

    def no_build(self, root, max_tokens):
        raise AssertionError("rebuilt although a cached model exists")

    with monkeypatch.context() as m:
        m.setattr(minilm_onnx.OnnxMiniLM, "_build", no_build)
        again = minilm_onnx.OnnxMiniLM(model_path(), cache=cache)
    assert np.allclose(again.embed(TEXTS), want, atol=1e-6)

    files[0].write_bytes(files[0].read_bytes()[:1000])  # a torn write
    torn = minilm_onnx.OnnxMiniLM(model_path(), cache=cache)
    assert "rebuilding" in caplog.text
    assert np.allclose(torn.embed(TEXTS), want, atol=1e-6)
    assert files[0].stat().st_size > 10_000_000

    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    nowhere = minilm_onnx.OnnxMiniLM(model_path(), cache=blocked)  # cannot cache: still works
    assert np.allclose(nowhere.embed(TEXTS), want, atol=1e-6)


def test_unknown_embedder_and_missing_endpoint_settings():
    with pytest.raises(UserError, match="nope"):
        make_embedder(MemorySettings(embedder="nope"))  # settings accept plugin names
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


def test_int8_model_that_drifts_falls_back_to_exact_float32(tmp_path, monkeypatch, caplog):
    from couchmate.memory import minilm_onnx
    from couchmate.memory.embeddings import model_path

    monkeypatch.setattr(minilm_onnx, "MIN_PROBE_COSINE", 1.01)  # no int8 model can pass
    model = minilm_onnx.OnnxMiniLM(model_path(), cache=tmp_path)
    assert "using float32" in caplog.text
    exact = make_embedder(MemorySettings(embedder="local-exact")).embed(TEXTS)
    assert (model.embed(TEXTS) * exact).sum(axis=1).min() > 0.99999
