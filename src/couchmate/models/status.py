"""One short live line per backend for a status panel, from what is known now: the
start-up probe, the failure watch and the health figures.

    fast smollm2: ok · ttft 0.6 s · text only
    fast smollm2: slow (no reply in 3.0 s) · ≤4 images
    smart qwen2.5-vl-7b-instruct: down (connection refused)

Cheap enough to call on every panel refresh: attribute reads and one health snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from couchmate.models.probe import ProbeState
from couchmate.models.watch import BackendEventKind

if TYPE_CHECKING:
    from couchmate.models.backend import ChatBackend

_MODEL_CHARS = 24


def short_model(model: str) -> str:
    """The model's own name: no provider path, no .gguf, at most 24 characters."""
    name = model.rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf") or model
    return name if len(name) <= _MODEL_CHARS else name[: _MODEL_CHARS - 1] + "…"


def status_line(backend: ChatBackend) -> str:
    who = f"{backend.name} {short_model(backend.model)}"
    probe = backend.last_probe
    watch = backend.watch
    snap = backend.health.snapshot()
    if watch.failing and watch.state is not BackendEventKind.STALLED:
        if probe is not None and probe.state is ProbeState.NO_MODEL and snap.calls == 0:
            return f"{who}: no such model on the server"
        return f"{who}: down ({watch.reason})" if watch.reason else f"{who}: down"
    if watch.state is BackendEventKind.STALLED:
        state = f"slow ({watch.reason})"
    elif probe is None and snap.calls == 0:
        state = "not checked yet"
    elif probe is not None and probe.state is ProbeState.SLOW and snap.calls == 0:
        state = f"slow (no reply in {probe.detail})"
    else:
        state = "ok"
    parts = [state]
    ttft = snap.ttft_ewma_s
    if ttft is None and probe is not None:
        ttft = probe.ttft_s
    if ttft is not None:
        parts.append(f"ttft {ttft:.1f} s")
    n = backend.role.max_images
    parts.append("text only" if n == 0 else f"≤{n} images")
    return f"{who}: " + " · ".join(parts)
