"""Hybrid retrieval on the MemoryStore primitives, so every store ranks the same way.

Candidates come from dense search, BM25 and the topic index; they are fused by weighted
reciprocal rank, then nudged by topic match, importance and recency, and finally packed
into a token budget with their provenance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from couchmate.memory.store import MemoryStore
from couchmate.types import Memory, MemoryKind


@dataclass(slots=True)
class Hit:
    """One recalled memory, its final score and the parts the score was made of."""

    memory: Memory
    score: float
    why: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class RetrievalParams:
    pool: int = 100  # candidates taken from each of dense and BM25
    rrf_k: float = 60.0
    w_dense: float = 1.0
    w_lexical: float = 1.0
    w_topic: float = 0.3  # a candidate filed under a topic the query or scene is about
    topic_pool: int = 50
    w_importance: float = 0.1  # (importance - 0.5) times this, in units of the best RRF score
    w_recency: float = 0.1
    recency_half_life_days: float = 30.0


class Retriever:
    def __init__(self, store: MemoryStore, params: RetrievalParams | None = None):
        self.store = store
        self.params = params or RetrievalParams()

    def search(
        self,
        user_id: str,
        query: str,
        query_vector: np.ndarray | None,
        *,
        topics: Sequence[str] = (),
        kinds: Sequence[MemoryKind] | None = None,
        k: int = 10,
        now: float | None = None,
    ) -> list[Hit]:
        p = self.params
        now = time.time() if now is None else now
        fused: dict[str, float] = {}
        why: dict[str, dict[str, float]] = {}

        def add(ranked: list[tuple[str, float]], weight: float, name: str) -> None:
            for rank, (mid, score) in enumerate(ranked):
                fused[mid] = fused.get(mid, 0.0) + weight / (p.rrf_k + rank + 1)
                why.setdefault(mid, {})[name] = float(score)

        if query_vector is not None:
            add(
                self.store.dense_search(user_id, query_vector, p.pool, kinds=kinds),
                p.w_dense,
                "dense",
            )
        if query.strip():
            add(self.store.lexical_search(user_id, query, p.pool, kinds=kinds), p.w_lexical, "bm25")
        on_topic: set[str] = set()
        if topics:
            members = self.store.topic_members(user_id, list(topics), p.topic_pool)
            on_topic = {mid for mid, _ in members}
        if not fused and not on_topic:
            return []
        top_rrf = max(fused.values(), default=1.0 / (p.rrf_k + 1))
        ids = list(fused) + [m for m in on_topic if m not in fused]
        memories = {m.id: m for m in self.store.get(user_id, ids)}
        hits: list[Hit] = []
        for mid in ids:
            m = memories.get(mid)
            if m is None or (kinds and m.kind not in kinds):
                continue
            w = why.setdefault(mid, {})
            score = fused.get(mid, 0.0)
            if mid in on_topic:
                w["topic"] = 1.0
                score += p.w_topic * top_rrf
            score += p.w_importance * (m.importance - 0.5) * top_rrf
            if p.w_recency and p.recency_half_life_days > 0:
                age_days = max(0.0, now - m.t) / 86400.0
                rec = math.exp(-math.log(2) * age_days / p.recency_half_life_days)
                w["recency"] = rec
                score += p.w_recency * rec * top_rrf
            w["rrf"] = fused.get(mid, 0.0)
            hits.append(Hit(m, score, w))
        hits.sort(key=lambda h: -h.score)
        return hits[:k]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters a token for English; CJK one per character)."""
    cjk = sum(1 for c in text if "\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af")
    return cjk + math.ceil((len(text) - cjk) / 4)


def _provenance_tag(m: Memory) -> str:
    prov = m.provenance or {}
    parts = [m.kind, time.strftime("%Y-%m-%d", time.gmtime(m.t))]
    for key in ("session", "turn", "frame"):
        if key in prov and prov[key] not in (None, ""):
            parts.append(f"{key} {prov[key]}")
    return "[" + ", ".join(str(x) for x in parts) + "]"


def pack(hits: Sequence[Hit], budget_tokens: int) -> str:
    """The best hits as prompt lines, each with its provenance, within `budget_tokens`.

    Hits are taken best first; one that does not fit is skipped so a shorter one after it
    can still use the room. Lines are `- [kind, date, session …] text`.
    """
    lines: list[str] = []
    used = 0
    for h in hits:
        line = f"- {_provenance_tag(h.memory)} {h.memory.text.strip()}"
        cost = estimate_tokens(line) + 1
        if used + cost > budget_tokens:
            continue
        lines.append(line)
        used += cost
    return "\n".join(lines)
