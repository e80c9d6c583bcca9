"""The mind's window onto long-term memory: a small interface the memory package fills.

The mind asks for what it should remember before it speaks (`recall`, packed into a token
budget as prompt text) and hands over what happened (`record`). `NoMemory` is the default
when no memory is wired in, so the mind never depends on the memory package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(slots=True)
class Recollection:
    """Memory text for the prompt, and where each piece came from."""

    text: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Happening:
    """Something worth remembering: a conversation turn or a notable game moment."""

    kind: Literal["user_turn", "companion_turn", "moment", "summary"]
    text: str
    topics: list[str] = field(default_factory=list)
    importance: float = 0.5
    provenance: dict[str, Any] = field(default_factory=dict)  # session, turn, frame, event


@runtime_checkable
class MemorySlot(Protocol):
    async def recall(
        self, user_id: str, query: str, topics: list[str], budget_tokens: int
    ) -> Recollection: ...

    async def record(self, user_id: str, happening: Happening) -> None: ...


class NoMemory:
    """Remembers nothing; the default when no memory store is configured."""

    async def recall(
        self, user_id: str, query: str, topics: list[str], budget_tokens: int
    ) -> Recollection:
        return Recollection()

    async def record(self, user_id: str, happening: Happening) -> None:
        return None
