"""The model backends a session has: `fast` and `smart`, either of which may be off.

backends = Backends.from_settings(settings)
backends.subscribe(lambda event: notify(event.line))   # failing / stalled / recovered
for result in await backends.probe():                  # ≈ 3 s, never raises
    notify(result.line)
backends.status_lines()                                # one live line each, for a panel
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from couchmate.config import ModelSettings, Settings
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions, HealthSnapshot
from couchmate.models.retry import RetryPolicy
from couchmate.models.watch import Subscriber

if TYPE_CHECKING:
    from couchmate.models.probe import ProbeResult

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

    async def probe(self, *, budget_s: float | None = None) -> list[ProbeResult]:
        """Probe every backend at once (couchmate.models.probe): reachable, the model there,
        images taken. Turns images off for a backend that refuses them. Never raises."""
        from couchmate.models.probe import PROBE_BUDGET_S, probe_all

        return await probe_all(self, budget_s=PROBE_BUDGET_S if budget_s is None else budget_s)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """`callback(BackendEvent)` once when a backend starts failing (or stalls) and once
        when it answers again; returns a function that unsubscribes."""
        undo = [b.watch.subscribe(callback) for b in self.all()]

        def unsubscribe() -> None:
            for u in undo:
                u()

        return unsubscribe

    def status_lines(self) -> list[str]:
        """One live line per backend ("fast smollm2: ok · ttft 0.6 s · text only")."""
        from couchmate.models.status import status_line

        return [status_line(b) for b in self.all()]

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
