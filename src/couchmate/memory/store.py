"""The memory store interface: one user's memories in, ranked candidates out.

Every call takes the user id and never returns another user's data. Stores keep records,
vectors and a lexical index; fusion and ranking live above them (retrieval), so the
embedded store and PostgreSQL rank the same way. Topics are stored, and looked up, in
`topics.normalize` form whatever the caller passes, so "doom-deathmatch" and
"Doom Deathmatch" are one topic in every store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from couchmate.registry import Registry
from couchmate.types import Memory, MemoryKind

if TYPE_CHECKING:
    from couchmate.config import MemorySettings

Scored = list[tuple[str, float]]  # (memory id, score), best first

#: Memory.data key holding text around a memory (e.g. the turns a reply answers). It is
#: indexed for lexical search with the memory's text but is not part of what is recalled.
CONTEXT_KEY = "context"


def search_text(m: Memory) -> str:
    """What a store indexes for lexical (BM25 / full-text) search: text, then its context."""
    return join_context(m.text, m.data.get(CONTEXT_KEY) if m.data else None)


def join_context(text: str, ctx: object) -> str:
    """search_text from the stored parts (a store rebuilding its index from rows uses this)."""
    return f"{text}\n{ctx}" if isinstance(ctx, str) and ctx else text


class MemoryStore(ABC):
    """Storage for memories. Implementations must be safe to call from worker threads."""

    # --- writes -------------------------------------------------------------------------
    @abstractmethod
    def add(self, memories: Sequence[Memory], vectors: np.ndarray) -> list[str]:
        """Store memories (with one embedding row each); returns their ids.

        Returns only after the write is durable: an acknowledged memory survives kill -9.
        """

    @abstractmethod
    def update(
        self,
        user_id: str,
        memory_id: str,
        memory: Memory,
        vector: np.ndarray | None = None,
    ) -> None:
        """Replace one memory's content (and its vector when the text changed)."""

    @abstractmethod
    def delete(self, user_id: str, ids: Sequence[str]) -> int:
        """Delete memories of this user; returns how many were deleted."""

    # --- reads --------------------------------------------------------------------------
    @abstractmethod
    def get(self, user_id: str, ids: Sequence[str]) -> list[Memory]:
        """The memories with these ids that belong to this user, in the order asked."""

    @abstractmethod
    def list(
        self,
        user_id: str,
        *,
        kind: MemoryKind | None = None,
        topic: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Memory]:
        """Newest first."""

    @abstractmethod
    def count(self, user_id: str) -> int: ...

    @abstractmethod
    def topics(self, user_id: str) -> dict[str, int]:
        """Topic → number of memories filed under it."""

    # --- retrieval primitives (ranking happens in retrieval) ------------------------------
    @abstractmethod
    def dense_search(
        self,
        user_id: str,
        vector: np.ndarray,
        k: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> Scored:
        """Nearest memories by cosine similarity of normalized embeddings."""

    @abstractmethod
    def lexical_search(
        self,
        user_id: str,
        text: str,
        k: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> Scored:
        """Best memories by BM25 over their text."""

    @abstractmethod
    def topic_members(self, user_id: str, topics: Sequence[str], limit: int) -> Scored:
        """Memories filed under any of these topics (score: how many matched), newest first."""

    @abstractmethod
    def purge_expired(self, now: float) -> int:
        """Delete memories whose retention window has passed; returns how many."""

    @abstractmethod
    def users(self) -> list[str]: ...

    @classmethod
    def from_settings(cls, settings: MemorySettings, *, dim: int) -> MemoryStore:
        """Open the store memory settings describe. Default: a server store at memory.url."""
        return cls(settings.url, dim=dim)  # type: ignore[call-arg]

    def close(self) -> None:  # noqa: B027 — optional hook
        """Release files and connections."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: name → store class; plugins register under the "couchmate.memory_stores" group.
STORES: Registry[type[MemoryStore]] = Registry("memory store", "couchmate.memory_stores")
STORES.register("embedded", "couchmate.memory.embedded_store:EmbeddedStore")
STORES.register("postgres", "couchmate.memory.postgres_store:PostgresStore")
