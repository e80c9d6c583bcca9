"""MemoryService: the one door to a user's long-term memory.

`remember` bounds the text, embeds, files topics, applies retention and merges repeated
moments; `recall` runs hybrid retrieval; `about` answers "everything about X" from the topic
index; `forget` and `purge_expired` remove. Calls are synchronous and thread-safe (the store
locks); async callers run them in an executor.

Repeated moments: an episode that is not a conversation turn, whose text says what one of
the user's episodes already says (texts.text_key) within `repeat_window_s` of that one's
last time, is merged into it rather than stored again: the memory keeps its first
provenance and gains `data["count"]` (how many times), `data["first_t"]`, and `t` = the
last time. A death that happens 15 times in a session is one memory "×15", not 15 rows.
This sits above the stores, so the embedded store and PostgreSQL behave the same.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from couchmate.config import MemorySettings
from couchmate.errors import UserError
from couchmate.memory.embeddings import Embedder, make_embedder
from couchmate.memory.retrieval import Hit, RetrievalParams, Retriever, pack_hits, turn_key
from couchmate.memory.store import CONTEXT_KEY, STORES, MemoryStore
from couchmate.memory.texts import (
    COUNT_KEY,
    FIRST_KEY,
    MAX_QUERY_CHARS,
    bounded,
    clip,
    repeats,
    text_key,
)
from couchmate.memory.topics import mentioned, normalize, normalize_all, topics_for
from couchmate.types import Memory, MemoryKind

DAY = 86400.0
CONTEXT_TURNS = 2  # turns before a turn that are indexed with it (BM25 only)
RECENT_SESSIONS = 256
REPEAT_WINDOW_S = 3600.0  # a moment this soon after the same one's last time is a repeat
REPEAT_SEED = 200  # the newest episodes a user's repeat lookup starts from
REPEAT_USERS = 256


class MemoryService:
    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder,
        settings: MemorySettings | None = None,
        *,
        params: RetrievalParams | None = None,
        retention_days: Callable[[str], float] | None = None,
        repeat_window_s: float = REPEAT_WINDOW_S,
    ):
        self.store = store
        self.embedder = embedder
        self.settings = settings or MemorySettings()
        self.retriever = Retriever(store, params)
        # The plan's retention window per user; the settings' value unless a server says.
        self._retention_days = retention_days or (lambda _user: self.settings.retention_days)
        self._known: dict[str, dict[str, str]] = {}  # user → {match key: topic name}
        self._known_lock = threading.Lock()
        # The last turns of recent sessions: a new turn is indexed with the ones before it.
        self._recent: OrderedDict[tuple[str, str], dict[int, str]] = OrderedDict()
        # Repeated moments: user → {text key: (memory id, its last time)}.
        self.repeat_window_s = repeat_window_s
        self._repeats: OrderedDict[str, dict[str, tuple[str, float]]] = OrderedDict()
        self._repeat_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: MemorySettings | None = None) -> MemoryService:
        """The store and embedder the settings name (memory.store, memory.embedder)."""
        settings = settings or MemorySettings()
        embedder = make_embedder(settings)
        # A remote model's width is known only from a reply: ask once (this also surfaces a
        # wrong URL or model at start-up rather than at the first memory).
        dim = embedder.dim or embedder.embed(["dimension probe"]).shape[1]
        store = STORES.get(settings.store).from_settings(settings, dim=dim)
        return cls(store, embedder, settings)

    # --- writes -------------------------------------------------------------------------
    def remember(
        self, user_id: str, memories: Memory | Iterable[Memory], *, keep_full: bool = False
    ) -> list[str]:
        """Store memories for this user; returns their ids once they are durable.

        Texts longer than texts.MAX_TEXT_CHARS are cut (`keep_full` keeps the whole text in
        `data["full_text"]`, out of the search indexes). A repeated moment (see the module
        docstring) returns the id of the memory it was merged into.
        """
        if isinstance(memories, Memory):
            memories = [memories]
        batch = [self._prepare(user_id, m, keep_full) for m in memories]
        if not batch:
            return []
        with self._known_lock:
            batch = [self._with_context(user_id, m) for m in batch]
        if not any(repeat_key(m) for m in batch):
            return self._add(user_id, batch)
        with self._repeat_lock:
            return self._remember_repeats(user_id, batch)

    def _add(self, user_id: str, batch: list[Memory]) -> list[str]:
        if not batch:
            return []
        vectors = self.embedder.embed([embed_text(m) for m in batch])
        ids = self.store.add(batch, vectors)
        self._learn_topics(user_id, batch)
        return ids

    def _learn_topics(self, user_id: str, memories: Iterable[Memory]) -> None:
        with self._known_lock:
            known = self._known.get(user_id)
            if known is not None:
                for m in memories:
                    known.update((normalize(t), t) for t in m.topics)

    def _remember_repeats(self, user_id: str, batch: list[Memory]) -> list[str]:
        """`_add`, with each repeated moment merged into the memory it repeats."""
        recent = self._repeats_of(user_id)
        ids: list[str] = []
        new: list[Memory] = []
        pending: dict[str, int] = {}  # id → place in `new` (a repeat inside this batch)
        merged: dict[str, Memory] = {}  # id → the stored memory with its repeats added
        for m in batch:
            key = repeat_key(m)
            seen = recent.get(key) if key else None
            if key and seen and abs(m.t - seen[1]) <= self.repeat_window_s:
                mid = seen[0]
                if mid in pending:
                    new[pending[mid]] = repeated(new[pending[mid]], m)
                else:
                    old = merged.get(mid) or next(iter(self.store.get(user_id, [mid])), None)
                    if old is None or repeat_key(old) != key:
                        mid = ""  # forgotten or changed since: this one is new
                    else:
                        merged[mid] = repeated(old, m)
                if mid:
                    ids.append(mid)
                    recent[key] = (mid, max(m.t, seen[1]))
                    continue
            m = replace(m, id=m.id or uuid.uuid4().hex)
            pending[m.id] = len(new)
            new.append(m)
            ids.append(m.id)
            if key:
                recent[key] = (m.id, m.t)
        self._add(user_id, new)
        for mid, m in merged.items():
            self.store.update(user_id, mid, m)  # same text: the vector stays
        self._learn_topics(user_id, merged.values())
        if len(recent) > 4 * REPEAT_SEED:  # keep the lookup to what can still repeat
            newest = max(t for _, t in recent.values())
            for k in [k for k, (_, t) in recent.items() if t < newest - self.repeat_window_s]:
                del recent[k]
        return ids

    def _repeats_of(self, user_id: str) -> dict[str, tuple[str, float]]:
        """The user's repeat lookup; on first use, from their newest stored episodes."""
        recent = self._repeats.get(user_id)
        if recent is None:
            recent = {}
            for old in reversed(self.store.list(user_id, kind="episode", limit=REPEAT_SEED)):
                key = repeat_key(old)
                if key:
                    recent[key] = (old.id, old.t)
            self._repeats[user_id] = recent
        self._repeats.move_to_end(user_id)
        while len(self._repeats) > REPEAT_USERS:
            self._repeats.popitem(last=False)
        return recent

    def note(
        self,
        user_id: str,
        text: str,
        *,
        kind: MemoryKind = "episode",
        topics: Sequence[str] = (),
        importance: float = 0.5,
        provenance: dict | None = None,
        t: float | None = None,
        keep_full: bool = False,
    ) -> str:
        """Remember one text (a shortcut for `remember` with a single new Memory)."""
        m = Memory(
            user_id=user_id,
            kind=kind,
            text=text,
            topics=list(topics),
            importance=importance,
            provenance=dict(provenance or {}),
            t=time.time() if t is None else t,
        )
        return self.remember(user_id, [m], keep_full=keep_full)[0]

    def _prepare(self, user_id: str, m: Memory, keep_full: bool = False) -> Memory:
        if not user_id:
            raise UserError("a memory call needs a user id", hint="pass the user's id (user.id)")
        if m.user_id and m.user_id != user_id:
            raise UserError(
                "a memory of another user was handed to remember()",
                hint="each memory's user_id must match the user it is remembered for",
            )
        if not m.text or not m.text.strip():
            raise UserError("a memory needs text", hint="skip empty turns before remembering")
        m = bounded(m, keep_full=keep_full)
        topics = topics_for(m.text, m.topics, self._known_topics(user_id))
        m = replace(
            m, user_id=user_id, topics=topics, importance=float(min(1.0, max(0.0, m.importance)))
        )
        days = self._retention_days(user_id)
        if m.retention == "expiring" or (m.kind == "episode" and days > 0):
            expires = (
                m.expires_at
                if m.expires_at is not None
                else (m.t + days * DAY if days > 0 else None)
            )
            m = replace(m, retention="expiring", expires_at=expires)
        return m

    def _with_context(self, user_id: str, m: Memory) -> Memory:
        """A conversation turn carries the turns just before it as search context."""
        key = turn_key(m)
        if key is None:
            return m
        session, turn = key
        recent = self._recent.setdefault((user_id, session), {})
        self._recent.move_to_end((user_id, session))
        while len(self._recent) > RECENT_SESSIONS:
            self._recent.popitem(last=False)
        if CONTEXT_KEY not in m.data:
            before = [recent[t] for t in range(turn - CONTEXT_TURNS, turn) if t in recent]
            if before:
                m = replace(m, data={**m.data, CONTEXT_KEY: "\n".join(before)})
        recent[turn] = m.text
        for t in [t for t in recent if t <= turn - CONTEXT_TURNS]:
            del recent[t]
        return m

    def forget(self, user_id: str, ids: Sequence[str]) -> int:
        """Delete these memories of this user (ids of other users change nothing)."""
        gone = set(ids)
        with self._repeat_lock:
            recent = self._repeats.get(user_id, {})
            for key in [k for k, (mid, _) in recent.items() if mid in gone]:
                del recent[key]
        return self.store.delete(user_id, list(ids))

    def forget_topic(self, user_id: str, topic: str) -> int:
        """Delete everything filed under a topic."""
        ids = [m.id for m in self.about(user_id, topic, limit=1_000_000)]
        return self.forget(user_id, ids)

    def purge_expired(self, now: float | None = None) -> int:
        return self.store.purge_expired(time.time() if now is None else now)

    # --- reads --------------------------------------------------------------------------
    def recall(
        self,
        user_id: str,
        query: str,
        topics: Sequence[str] | None = None,
        kinds: Sequence[MemoryKind] | None = None,
        k: int = 10,
        budget_tokens: int | None = None,
        *,
        now: float | None = None,
    ) -> list[Hit]:
        """The memories that best answer `query`, best first.

        `topics` names what the scene is about (the game's title, the show); topics the
        query itself mentions are added. With `budget_tokens`, only the hits that fit in
        the budget (as `pack` would lay them out) are returned. A query longer than
        texts.MAX_QUERY_CHARS is searched by its start.
        """
        query = clip(query, MAX_QUERY_CHARS)
        vector = self.embedder.embed([query])[0] if query.strip() else None
        return self.recall_vector(
            user_id,
            query,
            vector,
            topics=topics,
            kinds=kinds,
            k=k,
            budget_tokens=budget_tokens,
            now=now,
        )

    def recall_vector(
        self,
        user_id: str,
        query: str,
        vector: np.ndarray | None,
        *,
        topics: Sequence[str] | None = None,
        kinds: Sequence[MemoryKind] | None = None,
        k: int = 10,
        budget_tokens: int | None = None,
        now: float | None = None,
    ) -> list[Hit]:
        """`recall` with the query already embedded (benchmarks time search alone)."""
        if not user_id:
            raise UserError("a memory call needs a user id", hint="pass the user's id (user.id)")
        wanted = normalize_all(topics or [])
        known = self._known_topics(user_id)
        wanted += [known[g] for g in mentioned(query, known.keys()) if known[g] not in wanted]
        hits = self.retriever.search(
            user_id, query, vector, topics=wanted, kinds=kinds, k=k, now=now
        )
        if budget_tokens is not None:
            hits = pack_hits(hits, budget_tokens)[1]
        return hits

    def recall_text(
        self,
        user_id: str,
        query: str,
        topics: Sequence[str] | None = None,
        budget_tokens: int | None = None,
        k: int = 20,
    ) -> tuple[str, list[Hit]]:
        """Prompt text within the budget (settings' token_budget by default) and its hits."""
        budget = budget_tokens or self.settings.token_budget
        return pack_hits(self.recall(user_id, query, topics=topics, k=k), budget)

    def about(self, user_id: str, topic: str, limit: int = 50) -> list[Memory]:
        """Everything filed under a topic, newest first."""
        return self.store.list(user_id, topic=normalize(topic), limit=limit)

    def topics(self, user_id: str) -> dict[str, int]:
        return self.store.topics(user_id)

    def _known_topics(self, user_id: str) -> dict[str, str]:
        with self._known_lock:
            known = self._known.get(user_id)
            if known is None:
                known = {normalize(t): t for t in self.store.topics(user_id)}
                self._known[user_id] = known
            return known

    def close(self) -> None:
        self.store.close()


def embed_text(m: Memory) -> str:
    """What gets embedded for a memory: its own text (context helps BM25, not the vector)."""
    return m.text


def repeat_key(m: Memory) -> str | None:
    """What a repeat of this memory would say (texts.text_key), for a moment that can
    repeat: an episode that is not a conversation turn (a turn said twice is two turns)."""
    if m.kind != "episode" or turn_key(m) is not None:
        return None
    return text_key(m.text) or None


def repeated(old: Memory, again: Memory) -> Memory:
    """`old` after `again` happened once more: counted, at the later time, with the higher
    importance, both's topics, and the latest provenance under `provenance["last"]`."""
    first = old.data.get(FIRST_KEY, old.t) if old.data else old.t
    expires = old.expires_at
    if old.retention == "expiring" and again.retention == "expiring":
        expires = max(x for x in (old.expires_at, again.expires_at, 0.0) if x is not None)
    last = {k: v for k, v in again.provenance.items() if k != "last"}
    return replace(
        old,
        t=max(old.t, again.t),
        importance=max(old.importance, again.importance),
        topics=normalize_all([*old.topics, *again.topics])[:8],
        provenance={**old.provenance, "last": last} if last else dict(old.provenance),
        expires_at=expires,
        data={
            **old.data,
            COUNT_KEY: repeats(old) + repeats(again),
            FIRST_KEY: min(float(first), again.t),
        },
    )
