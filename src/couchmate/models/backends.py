"""The model backends a session has: `fast` and `smart`, either of which may be off."""

from __future__ import annotations

from concurrent.futures import Executor
from types import TracebackType
from typing import Literal

from couchmate.config import ModelSettings, Settings
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions, HealthSnapshot
from couchmate.models.retry import RetryPolicy

RoleName = Literal["fast", "smart"]


class Backends:
    def __init__(self, fast: ChatBackend | None = None, smart: ChatBackend | None = None):
        self.fast = fast
        self.smart = smart

    @classmethod
    def from_settings(
        cls,
        settings: Settings | ModelSettings,
        *,
        retry: RetryPolicy | None = None,
        health: HealthOptions | None = None,
        executor: Executor | None = None,
    ) -> Backends:
        """One ChatBackend per enabled role. A missing API key is a ConfigError here, at
        start-up, not at the first call."""
        models = settings.models if isinstance(settings, Settings) else settings
        built: dict[str, ChatBackend | None] = {}
        for name in ("fast", "smart"):
            role = getattr(models, name)
            built[name] = (
                ChatBackend(name, role, retry=retry, health=health, executor=executor)
                if role.enabled
                else None
            )
        return cls(fast=built["fast"], smart=built["smart"])

    def get(self, name: RoleName) -> ChatBackend | None:
        return self.fast if name == "fast" else self.smart

    def all(self) -> list[ChatBackend]:
        return [b for b in (self.fast, self.smart) if b is not None]

    def available(self, name: RoleName) -> bool:
        b = self.get(name)
        return b is not None and b.health.available()

    def snapshot(self) -> dict[str, HealthSnapshot]:
        return {b.name: b.health.snapshot() for b in self.all()}

    async def aclose(self) -> None:
        for b in self.all():
            await b.aclose()

    async def __aenter__(self) -> Backends:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
