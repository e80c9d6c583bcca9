"""Benchmarks' model servers: the user's configured ones, or a tiny local llama.cpp server.

The tiny server is llama-cpp-python's real OpenAI-compatible server on a random-weight
GGUF written in seconds: real HTTP and streaming, small model time, nothing downloaded.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from couchmate.config import Settings
from couchmate.errors import UserError

CHOICES = ("auto", "none")


@contextlib.contextmanager
def models_for_bench(settings: Settings, choice: str) -> Iterator[str]:
    """Point `settings.models` at what the benchmark should use; yields a description.

    auto: the configured models, else the tiny local server for both roles; none: no
    models (reflex only)."""
    if choice not in CHOICES:
        raise UserError(f"--model-server {choice!r}", hint="use auto or none")
    roles = (settings.models.fast, settings.models.smart)
    if choice == "none":
        for role in roles:
            role.base_url, role.preset = "", ""
        yield "none"
        return
    if any(role.enabled for role in roles):
        yield "configured: " + ", ".join(
            f"{n}={r.resolved().model}"
            for n, r in zip(("fast", "smart"), roles, strict=True)
            if r.enabled
        )
        return
    from couchmate.models.local_server import LlamaServer, write_tiny_gguf

    with tempfile.TemporaryDirectory(prefix="couchmate-bench-") as tmp:
        model = write_tiny_gguf(Path(tmp) / "tiny.gguf")
        with LlamaServer(model, n_ctx=4096) as server:
            for role in roles:
                role.base_url, role.model, role.preset = server.base_url, "tiny", ""
                role.max_images = 0  # a text-only model: images would be dropped anyway
            yield "tiny llama.cpp (local)"
