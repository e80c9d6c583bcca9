"""Merge a user's near-duplicate memories, keeping the newest and the provenance of all.

Two memories are duplicates when they are of the same kind, filed under the same topics, and
either fill the same fact slot (`data["key"]`), or say the same thing (equal normalized text,
or embedding cosine similarity at or above `threshold`). Memories filling *different* slots
are never merged, however alike they read ("likes Zelda" / "likes Zelda music").

In each group the newest memory survives (the latest statement is the truest); it takes the
highest importance of the group and records every merged memory (id, time, text,
provenance) under `provenance["merged"]`. Groups are built with a union-find over pairs in a
fixed order, so the same memories always merge the same way.

Episodes are a log of what happened and are left alone unless asked for; merged episodes
count as a repeated moment does (`data["count"]` the sum, `data["first_t"]` the earliest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from couchmate.memory.extraction import normalize
from couchmate.memory.store import MemoryStore
from couchmate.memory.texts import COUNT_KEY, FIRST_KEY, repeats
from couchmate.types import Memory, MemoryKind

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]
DEFAULT_THRESHOLD = 0.92
_PAGE = 500


@dataclass(slots=True)
class Merge:
    kept: str
    merged: list[str]


@dataclass(slots=True)
class Report:
    user_id: str
    examined: int = 0
    merges: list[Merge] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return sum(len(m.merged) for m in self.merges)


def _signature(m: Memory) -> tuple[str, tuple[str, ...]]:
    return m.kind, tuple(sorted(set(m.topics)))


def _duplicates(a: Memory, b: Memory, sim: float, threshold: float) -> bool:
    if _signature(a) != _signature(b):
        return False
    ka, kb = a.data.get("key"), b.data.get("key")
    if ka and kb:
        return ka == kb
    return normalize(a.text) == normalize(b.text) or sim >= threshold


def group_duplicates(
    memories: Sequence[Memory], vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> list[list[int]]:
    """Indices of duplicate groups (size ≥ 2), each oldest first. `vectors` are unit rows."""
    n = len(memories)
    order = sorted(range(n), key=lambda i: (memories[i].t, memories[i].id))
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sims = vectors @ vectors.T if n else np.zeros((0, 0))
    for x, i in enumerate(order):
        for j in order[x + 1 :]:
            if _duplicates(memories[i], memories[j], float(sims[i, j]), threshold):
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def merge_group(group: Sequence[Memory]) -> Memory:
    """The survivor of a duplicate group: the newest, with everyone's provenance."""
    ranked = sorted(group, key=lambda m: (m.t, m.importance, m.id))
    keep = ranked[-1]
    merged = list(keep.provenance.get("merged", []))
    for m in ranked[:-1]:
        prov = {k: v for k, v in m.provenance.items() if k != "merged"}
        merged.append({"id": m.id, "t": m.t, "text": m.text, "provenance": prov})
        merged.extend(m.provenance.get("merged", []))
    merged.sort(key=lambda e: (e.get("t", 0.0), e.get("id", "")))
    provenance = {**keep.provenance, "merged": merged}
    data = dict(keep.data)
    if keep.kind == "episode":  # the same moment, several times
        data[COUNT_KEY] = sum(repeats(m) for m in group)
        data[FIRST_KEY] = min(float(m.data.get(FIRST_KEY, m.t)) for m in group)
    return replace(
        keep,
        importance=max(m.importance for m in group),
        provenance=provenance,
        topics=list(keep.topics),
        data=data,
    )


def _all(store: MemoryStore, user_id: str, kinds: Sequence[MemoryKind]) -> list[Memory]:
    out: list[Memory] = []
    for kind in kinds:
        offset = 0
        while True:
            page = store.list(user_id, kind=kind, limit=_PAGE, offset=offset)
            out.extend(page)
            if len(page) < _PAGE:
                break
            offset += _PAGE
    return out


def consolidate(
    store: MemoryStore,
    embed: Embed,
    user_id: str,
    *,
    kinds: Sequence[MemoryKind] = ("fact", "progress"),
    around: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    neighbours: int = 8,
    dry_run: bool = False,
) -> Report:
    """Merge duplicates among this user's memories of `kinds`.

    Similarity uses the vectors the store keeps (`store.vectors`, which both built-in
    stores have); `embed` re-embeds the texts for a store without them.

    With `around` (ids just written, e.g. by extraction) only those memories and their
    nearest neighbours are examined, which keeps the after-extraction pass cheap; without
    it, all of the user's memories of those kinds are.
    """

    def vectors_of(mems: list[Memory]) -> np.ndarray:
        if not mems:
            return np.zeros((0, 1), dtype=np.float32)
        stored = getattr(store, "vectors", None)  # both built-in stores keep them
        if callable(stored):
            return _unit(stored(user_id, [m.id for m in mems]))
        return _unit(embed([m.text for m in mems]))

    if around is None:
        pool = _all(store, user_id, kinds)
    else:
        seeds = [m for m in store.get(user_id, list(around)) if m.kind in kinds]
        ids = {m.id for m in seeds}
        for m, v in zip(seeds, vectors_of(seeds), strict=True):
            ids.update(i for i, _ in store.dense_search(user_id, v, neighbours, kinds=[m.kind]))
            ids.update(i for i, _ in store.topic_members(user_id, m.topics, neighbours))
        pool = [m for m in store.get(user_id, sorted(ids)) if m.kind in kinds]
    vectors = vectors_of(pool)
    report = Report(user_id, examined=len(pool))
    seeds_only = set(around) if around is not None else None
    for group in group_duplicates(pool, vectors, threshold):
        members = [pool[i] for i in group]
        if seeds_only is not None and not seeds_only & {m.id for m in members}:
            continue  # an old pair met on the way: the next full pass merges it
        keep = merge_group(members)
        gone = [m.id for m in members if m.id != keep.id]
        report.merges.append(Merge(keep.id, gone))
        if dry_run:
            continue
        store.update(user_id, keep.id, keep)
        store.delete(user_id, gone)
    if report.merges:
        log.info(
            "consolidated %d memories of %s into %d", report.removed, user_id, len(report.merges)
        )
    return report


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1.0, norms)
