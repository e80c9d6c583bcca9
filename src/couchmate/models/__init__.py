"""Model backends: one OpenAI-compatible client per role (fast, smart), with health.

Names are imported lazily: config imports `couchmate.models.presets`, and that must not pull
in the openai client (nor import config back).

    from couchmate.models import Backends, Prompt
    backends = Backends.from_settings(settings)
    async with backends.fast.stream(Prompt(user="hi"), budget_s=0.8) as reply:
        async for delta in reply: ...
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Backends": "couchmate.models.backends",
    "ChatBackend": "couchmate.models.backend",
    "ChatStream": "couchmate.models.stream",
    "Completion": "couchmate.models.call",
    "EmbeddingBackend": "couchmate.models.embeddings",
    "BackendEvent": "couchmate.models.watch",
    "BackendEventKind": "couchmate.models.watch",
    "BackendHealth": "couchmate.models.health",
    "BreakerState": "couchmate.models.health",
    "HealthOptions": "couchmate.models.health",
    "HealthSnapshot": "couchmate.models.health",
    "ProbeResult": "couchmate.models.probe",
    "ProbeState": "couchmate.models.probe",
    "Prompt": "couchmate.models.prompt",
    "Turn": "couchmate.models.prompt",
    "RetryPolicy": "couchmate.models.retry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'couchmate.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
