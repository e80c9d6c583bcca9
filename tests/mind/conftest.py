"""A real llama.cpp server (the models helper's tiny random GGUF) for the mind tests.

Our prompts (persona + rules + context) run to ~1000 tokens in the tiny model's byte-level
vocabulary, over the 512 the models tests use, so this server gets a 2048 context."""

from __future__ import annotations

import pytest

from couchmate.models.local_server import LlamaServer, write_tiny_gguf


@pytest.fixture(scope="session")
def mind_llama_server(tmp_path_factory):
    gguf = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    with LlamaServer(gguf, n_ctx=2048, alias="tiny") as srv:
        yield srv
