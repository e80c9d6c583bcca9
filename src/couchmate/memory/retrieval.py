"""Hybrid retrieval on the MemoryStore primitives, so every store ranks the same way.

Candidates come from dense search, BM25 and the topic index. Dense and BM25 scores are
normalized within their candidate pools and summed; a conversation turn then takes a share
of its neighbours' and its session's scores; topic match, importance and recency nudge the
result, which is packed into a token budget with its provenance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from couchmate.memory.store import MemoryStore
from couchmate.memory.texts import repeats
from couchmate.types import Memory, MemoryKind


@dataclass(slots=True)
class Hit:
    """One recalled memory, its final score and the parts the score was made of."""

    memory: Memory
    score: float
    why: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class RetrievalParams:
    """Ranking settings. Chosen on three LoCoMo conversations, confirmed on two others."""

    pool: int = 100  # candidates taken from each of dense search and BM25
    w_dense: float = 1.0
    w_lexical: float = 1.0
    # A conversation turn takes a share of its neighbours' scores: a reply is relevant
    # when the question before it is, and the other way round.
    prev_share: float = 0.1  # of the turn before it
    next_share: float = 0.3  # of the turn after it
    session_share: float = 0.2  # of the best score in its session
    w_topic: float = 0.1  # per query/scene topic the memory is filed under
    topic_pool: int = 50
    w_importance: float = 0.2  # times (importance - 0.5)
    w_recency: float = 0.1  # times 2^(-age / half-life)
    recency_half_life_days: float = 30.0


def _pool_normalized(
    ranked: list[tuple[str, float]], floor: float | None = None
) -> dict[str, float]:
    """Scores mapped to [0, 1] within the candidate pool: best 1, the pool's floor 0.

    Dense cosines and BM25 scores live on different scales; this puts them on one
    without needing statistics the store does not return.
    """
    if not ranked:
        return {}
    hi, lo = ranked[0][1], ranked[-1][1] if floor is None else floor
    span = hi - lo
    if span <= 1e-9:
        return {mid: 1.0 for mid, _ in ranked}
    return {mid: (score - lo) / span for mid, score in ranked}


def turn_key(m: Memory) -> tuple[str, int] | None:
    """(session, turn) of a conversation turn; None for anything else.

    A fact extracted from a turn carries that turn's provenance, but it is not the turn: it
    must neither replace the turn's text as context nor take its place among neighbours.
    """
    if m.kind != "episode":
        return None
    prov = m.provenance or {}
    session, turn = prov.get("session"), prov.get("turn")
    if session is None or session == "" or not isinstance(turn, int | float):
        return None
    return (str(session), int(turn))


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
        dense: dict[str, float] = {}
        lexical: dict[str, float] = {}
        raw: dict[str, dict[str, float]] = {}
        if query_vector is not None:
            found = self.store.dense_search(user_id, query_vector, p.pool, kinds=kinds)
            dense = _pool_normalized(found)
            for mid, sc in found:
                raw.setdefault(mid, {})["dense"] = float(sc)
        if query.strip():
            found = self.store.lexical_search(user_id, query, p.pool, kinds=kinds)
            # fewer matches than the pool: the natural floor of BM25 (no match) is 0
            lexical = _pool_normalized(found, 0.0 if len(found) < p.pool else None)
            for mid, sc in found:
                raw.setdefault(mid, {})["bm25"] = float(sc)
        topic_hits: dict[str, float] = {}
        if topics:
            topic_hits = dict(self.store.topic_members(user_id, list(topics), p.topic_pool))
        ids = list(dict.fromkeys([*dense, *lexical, *topic_hits]))
        if not ids:
            return []
        memories = {m.id: m for m in self.store.get(user_id, ids)}
        ids = [i for i in ids if i in memories and (not kinds or memories[i].kind in kinds)]

        base = {i: p.w_dense * dense.get(i, 0.0) + p.w_lexical * lexical.get(i, 0.0) for i in ids}
        # Conversation structure: neighbours and sessions, from each memory's provenance.
        at: dict[tuple[str, int], str] = {}
        for i in ids:
            key = turn_key(memories[i])
            if key is not None:
                at[key] = i
        score = dict(base)
        for (session, turn), i in at.items():
            before, after = at.get((session, turn - 1)), at.get((session, turn + 1))
            if before is not None:
                score[i] += p.prev_share * base[before]
            if after is not None:
                score[i] += p.next_share * base[after]
        best_in_session: dict[str, float] = {}
        for (session, _), i in at.items():
            best_in_session[session] = max(best_in_session.get(session, 0.0), score[i])

        hits: list[Hit] = []
        for i in ids:
            m = memories[i]
            why = raw.get(i, {})
            why["dense_n"], why["bm25_n"] = dense.get(i, 0.0), lexical.get(i, 0.0)
            s = score[i]
            why["neighbours"] = s - base[i]
            key = turn_key(m)
            if key is not None and p.session_share:
                bonus = p.session_share * best_in_session[key[0]]
                why["session"] = bonus
                s += bonus
            if i in topic_hits:
                why["topic"] = p.w_topic * topic_hits[i]
                s += why["topic"]
            s += p.w_importance * (m.importance - 0.5)
            if p.w_recency and p.recency_half_life_days > 0:
                age_days = max(0.0, now - m.t) / 86400.0
                rec = p.w_recency * math.exp(-math.log(2) * age_days / p.recency_half_life_days)
                why["recency"] = rec
                s += rec
            hits.append(Hit(m, s, why))
        hits.sort(key=lambda h: -h.score)
        return hits[:k]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters a token for English; CJK one per character)."""
    cjk = sum(1 for c in text if "\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af")
    return cjk + math.ceil((len(text) - cjk) / 4)


def _provenance_tag(m: Memory) -> str:
    prov = m.provenance or {}
    parts = [m.kind, time.strftime("%Y-%m-%d", time.gmtime(m.t))]
    if repeats(m) > 1:
        parts.append(f"{repeats(m)} times")  # a merged repeated moment (service docstring)
    for key in ("session", "turn", "frame"):
        if key in prov and prov[key] not in (None, ""):
            parts.append(f"{key} {prov[key]}")
    return "[" + ", ".join(str(x) for x in parts) + "]"


def pack_hits(hits: Sequence[Hit], budget_tokens: int) -> tuple[str, list[Hit]]:
    """The best hits as prompt lines within `budget_tokens`, and the hits that made it.

    Hits are taken best first; one that does not fit is skipped so a shorter one after it
    can still use the room. Lines are `- [kind, date, N times, session …] text` ("N
    times" only for a repeated moment).
    """
    lines: list[str] = []
    used_hits: list[Hit] = []
    used = 0
    for h in hits:
        line = f"- {_provenance_tag(h.memory)} {h.memory.text.strip()}"
        cost = estimate_tokens(line) + 1
        if used + cost > budget_tokens:
            continue
        lines.append(line)
        used_hits.append(h)
        used += cost
    return "\n".join(lines), used_hits
