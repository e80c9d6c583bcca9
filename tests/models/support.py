"""Helpers shared by the model tests."""

from __future__ import annotations

from couchmate.config import ModelRole
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions
from couchmate.models.retry import RetryPolicy


def make_backend(
    base_url: str,
    *,
    name: str = "fast",
    retry: RetryPolicy | None = None,
    health: HealthOptions | None = None,
    **role: object,
) -> ChatBackend:
    settings = {"model": "tiny", "max_tokens": 16, "timeout_s": 10.0, **role}
    return ChatBackend(name, ModelRole(base_url=base_url, **settings), retry=retry, health=health)
