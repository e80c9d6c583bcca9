"""A real llama.cpp server (llama-cpp-python) on a tiny random-weight GGUF, once per session."""

from __future__ import annotations

import pytest

from couchmate.models.local_server import LlamaServer, write_tiny_gguf


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
