"""The model backends as the mind sees them: what it calls, and what the router reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from couchmate.mind.dialogue import StreamingBackend
from couchmate.mind.router import BackendView
from couchmate.models.ttft import IMAGE_TOKENS
from couchmate.types import Frame


class ModelBackend(StreamingBackend, Protocol):
    """A model role as the mind needs it; couchmate.models.backend.ChatBackend fits.

    `role.max_images` > 0 means the role may get keyframes; `health.snapshot()` and
    `health.expected_ttft_s()` feed the router."""

    role: Any
    health: Any


class ClipLike(Protocol):
    """The keyframes of the last seconds (couchmate.watch.clip.ClipBuffer fits)."""

    def clip(self, seconds: float | None = None, max_frames: int | None = None) -> list[Frame]: ...


def backend_map(backends: Any) -> dict[str, ModelBackend]:
    """{"fast": ..., "smart": ...} from a mapping or an object with .fast/.smart
    (couchmate.models.backends.Backends); missing or None roles are left out."""
    if backends is None:
        return {}
    if isinstance(backends, Mapping):
        return {k: v for k, v in backends.items() if v is not None and k in ("fast", "smart")}
    out: dict[str, ModelBackend] = {}
    for name in ("fast", "smart"):
        b = getattr(backends, name, None)
        if b is not None:
            out[name] = b
    return out


def backend_views(backends: Mapping[str, ModelBackend]) -> dict[str, BackendView]:
    """Each backend's health now, as the router reads it."""
    views: dict[str, BackendView] = {}
    for path, b in backends.items():
        health = b.health
        views[path] = BackendView.from_health(
            path,  # type: ignore[arg-type]
            health.snapshot(),
            prior_s=health.expected_ttft_s(),
            vision=getattr(b.role, "max_images", 0) > 0,
            image_tokens=getattr(b.role, "max_images", 0) * IMAGE_TOKENS,
        )
    return views
