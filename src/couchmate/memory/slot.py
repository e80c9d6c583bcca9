"""The mind's memory slot, filled by a MemoryService and an extractor.

`record` stores every happening as an episode (with its provenance; a moment that repeats
one of the last hour is counted on that one instead, see MemoryService), and for the user's
own turns runs fact extraction, applies the screened decisions (add / update / delete) and
consolidates around what it wrote. `recall` returns the packed memory text for the prompt and
where each line came from. Blocking work (embedding, database calls) runs in an executor;
records of one user are applied one at a time, so two quick turns cannot both add the same
fact.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from couchmate.errors import ConfigError
from couchmate.memory.consolidate import consolidate
from couchmate.memory.extraction import (
    Decision,
    Extractor,
    Limits,
    Speaker,
    Utterance,
    screen,
    to_memory,
)
from couchmate.memory.extraction_model import ChatModel, ModelExtractor
from couchmate.memory.extraction_rules import RuleExtractor
from couchmate.memory.service import MemoryService
from couchmate.memory.texts import MAX_TEXT_CHARS, clip
from couchmate.memory.topics import topics_for
from couchmate.mind.memory_slot import Happening, Recollection
from couchmate.types import Memory

if TYPE_CHECKING:
    from couchmate.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_SPEAKERS: dict[str, Speaker] = {
    "user_turn": "user",
    "companion_turn": "companion",
    "moment": "screen",  # what the game showed: untrusted, never a source of facts
    "summary": "companion",
}
_PREFIX = {"user_turn": "The user said: ", "companion_turn": "The companion said: "}
MAX_HISTORY = 5  # earlier versions of a fact kept in its provenance


class StoreMemorySlot:
    """couchmate.mind.memory_slot.MemorySlot over a MemoryService.

    `extractor` defaults to the rule extractor; pass a ModelExtractor to use a model.
    """

    def __init__(
        self,
        service: MemoryService,
        extractor: Extractor | None = None,
        *,
        executor: Executor | None = None,
        limits: Limits = Limits(),
        consolidate_after: bool = True,
        existing_limit: int = 60,
        session: str | None = None,
    ):
        self.service = service
        # Turns carry (session, turn) so retrieval can use conversation structure; the
        # mind does not number them, so the slot does, unless the happening already did.
        self.session = session or uuid.uuid4().hex[:12]
        self._turns: dict[str, int] = {}
        self.extractor: Extractor = extractor or RuleExtractor()
        self.executor = executor
        self.limits = limits
        self.consolidate_after = consolidate_after
        self.existing_limit = existing_limit
        self._topics: dict[str, list[str]] = {}  # user → what the scene was last about
        self._locks: dict[str, asyncio.Lock] = {}

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args, **kwargs))

    # --- MemorySlot -----------------------------------------------------------------------
    async def recall(
        self, user_id: str, query: str, topics: list[str], budget_tokens: int
    ) -> Recollection:
        if topics:
            self._topics[user_id] = list(topics)
        text, hits = await self._run(
            self.service.recall_text, user_id, query, topics, budget_tokens
        )
        sources = [
            {
                "id": h.memory.id,
                "kind": h.memory.kind,
                "text": h.memory.text,
                "t": h.memory.t,
                "score": round(h.score, 6),
                # raw cosine of query and memory: comparable across queries, unlike score
                "similarity": round(float(h.why.get("dense", 0.0)), 4),
                "provenance": h.memory.provenance,
            }
            for h in hits
        ]
        return Recollection(text=text, sources=sources)

    async def record(self, user_id: str, happening: Happening) -> None:
        text = happening.text.strip()
        if not text:
            return
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            await self._record(user_id, happening, text)

    # --- internals ------------------------------------------------------------------------
    async def _record(self, user_id: str, happening: Happening, text: str) -> None:
        topics = list(happening.topics) or self._topics.get(user_id, [])
        provenance = {"session": self.session, **happening.provenance, "happening": happening.kind}
        if happening.kind in _PREFIX and "turn" not in provenance:
            provenance["turn"] = self._turns.get(user_id, 0)
            self._turns[user_id] = provenance["turn"] + 1
        episode = Memory(
            user_id=user_id,
            kind="episode",
            text=_PREFIX.get(happening.kind, "") + text,
            topics=topics,
            importance=happening.importance,
            provenance=provenance,
        )
        await self._run(self.service.remember, user_id, [episode])
        speaker = _SPEAKERS.get(happening.kind, "screen")
        if speaker != "user":
            return
        turn = Utterance(
            user_id=user_id,
            text=clip(text, MAX_TEXT_CHARS),  # the episode holds no more than this either
            speaker=speaker,
            topic=topics[0] if topics else "",
            session=str(provenance.get("session", "")),
            turn=provenance.get("turn"),
        )
        existing = await self._run(self._existing, user_id)
        try:
            decisions = await self.extractor.extract(turn, existing)
        except Exception:
            log.exception("fact extraction failed; the turn is kept as an episode")
            return
        kept = screen(turn, decisions, existing, self.limits)
        if not kept:
            return
        written = await self._run(self._apply, turn, kept, existing)
        if written and self.consolidate_after:
            await self._run(
                consolidate,
                self.service.store,
                self.service.embedder.embed,
                user_id,
                around=written,
            )

    def _existing(self, user_id: str) -> list[Memory]:
        store = self.service.store
        n = self.existing_limit
        return store.list(user_id, kind="fact", limit=n) + store.list(
            user_id, kind="progress", limit=n
        )

    def _apply(
        self, turn: Utterance, decisions: Sequence[Decision], existing: Sequence[Memory]
    ) -> list[str]:
        """Write screened decisions; returns the ids added or updated."""
        svc, user_id = self.service, turn.user_id
        known = {m.id: m for m in existing}
        written: list[str] = []
        for d in decisions:
            if d.op == "add":
                written += svc.remember(user_id, [replace(to_memory(d, turn), id="")])
            elif d.op == "update":
                new = revised(known[d.target], to_memory(d, turn))
                vector = svc.embedder.embed([new.text])[0]
                svc.store.update(user_id, d.target, new, vector)
                written.append(d.target)
            elif d.op == "delete":
                svc.forget(user_id, [d.target])
        return written


def revised(old: Memory, new: Memory) -> Memory:
    """`new` as the next version of `old`: same slot data and topics unless new says
    otherwise, the higher importance, and the old text kept in provenance."""
    history = list(old.provenance.get("previous", []))
    history.append({"text": old.text, "t": old.t, "source": old.provenance.get("source", "")})
    return replace(
        new,
        id=old.id,
        topics=topics_for(new.text, new.topics or old.topics),
        importance=max(old.importance, new.importance),
        data={**old.data, **new.data},
        provenance={**new.provenance, "previous": history[-MAX_HISTORY:]},
    )


def make_extractor(mode: str, model: ChatModel | None) -> Extractor:
    """memory.extractor: "rules", "model" (needs `model`) or "auto" (model when given)."""
    if mode == "model" and model is None:
        raise ConfigError(
            "memory.extractor is 'model' but no model role is configured",
            hint="set models.smart (or models.fast), or memory.extractor = 'rules'",
        )
    if mode == "rules" or model is None:
        return RuleExtractor()
    return ModelExtractor(model)


def build_slot(
    settings: Settings,
    *,
    model: ChatModel | None = None,
    executor: Executor | None = None,
) -> StoreMemorySlot:
    """The slot a session uses: the configured store and embedder, and the extractor
    memory.extractor names (`model`: e.g. the session's smart backend, else its fast one)."""
    service = MemoryService.from_settings(settings.memory)
    extractor = make_extractor(settings.memory.extractor, model)
    return StoreMemorySlot(service, extractor, executor=executor)
