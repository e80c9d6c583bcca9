"""Consolidation on a real PostgreSQL store with real sentence embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from couchmate.memory.consolidate import consolidate, group_duplicates, merge_group
from couchmate.memory.postgres_store import PostgresStore
from couchmate.types import Memory
from tests.memory import embed_fixtures, pg_fixtures

pytestmark = pytest.mark.server
pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url
embed = embed_fixtures.embed


def seed(store, embed, mems):
    return store.add(mems, embed([m.text for m in mems]))


def facts():
    return [
        Memory("ana", "fact", "The user loves dragons.", t=1, importance=0.9,
               provenance={"session": "s1", "turn": 1}),
        Memory("ana", "fact", "the user LOVES dragons!", t=2, importance=0.5,
               provenance={"session": "s2", "turn": 7}),
        Memory("ana", "fact", "The user really loves dragons.", t=3, importance=0.6),
        Memory("ana", "fact", "The user loves Zelda.", t=4),
        # same slot, different words: the newer statement wins
        Memory("ana", "fact", "The user likes open worlds.", t=5, data={"key": "pref:ow"}),
        Memory("ana", "fact", "The user can't stand open worlds.", t=6,
               data={"key": "pref:ow"}),
        # alike, but different slots: never merged
        Memory("ana", "fact", "The user likes Zelda music.", t=7, data={"key": "pref:zm"}),
        Memory("ana", "fact", "The user likes Zelda musics.", t=8, data={"key": "pref:zm2"}),
        # same words, different topics or kind: not duplicates
        Memory("ana", "fact", "The user loves dragons.", t=9, topics=["skyrim"]),
        Memory("ana", "episode", "The user loves dragons.", t=10),
        # another user's copy is theirs
        Memory("bob", "fact", "The user loves dragons.", t=11),
    ]  # fmt: skip


def test_duplicates_merge_into_the_newest_with_everyones_provenance(pg_url, embed):
    with PostgresStore(pg_url) as store:
        ids = seed(store, embed, facts())
        report = consolidate(store, embed, "ana", kinds=("fact", "progress", "episode"))
        assert sorted((m.kept, sorted(m.merged)) for m in report.merges) == sorted(
            [(ids[2], sorted(ids[:2])), (ids[5], [ids[4]])]
        )
        left = {m.id: m for m in store.list("ana", limit=100)}
        assert set(left) == set(ids[2:4] + ids[5:10])
        dragons = left[ids[2]]
        assert dragons.text == "The user really loves dragons."
        assert dragons.importance == pytest.approx(0.9)
        merged = dragons.provenance["merged"]
        assert [e["id"] for e in merged] == ids[:2]
        assert merged[1]["provenance"] == {"session": "s2", "turn": 7}
        assert left[ids[5]].text == "The user can't stand open worlds."
        assert store.count("bob") == 1
        # a second pass finds nothing more: consolidation converges
        assert consolidate(store, embed, "ana").merges == []
        # the merged survivor is still what a search finds
        q = embed(["does the user like dragons"])[0]
        top = [i for i, _ in store.dense_search("ana", q, 2, kinds=["fact"])]
        assert set(top) == {ids[2], ids[8]}  # the survivor and the Skyrim-filed twin


def test_around_new_ids_only_touches_their_neighbourhood(pg_url, embed):
    with PostgresStore(pg_url) as store:
        old = seed(store, embed, [
            Memory("ana", "fact", "The user loves dragons.", t=1),
            Memory("ana", "fact", "The user loves dragons!", t=2),  # old, unrelated pair
            Memory("ana", "fact", "The user's name is Ana.", t=3),
        ])  # fmt: skip
        new = seed(store, embed, [Memory("ana", "fact", "The user's name is Ana!", t=4)])
        report = consolidate(store, embed, "ana", around=new)
        assert [(m.kept, m.merged) for m in report.merges] == [(new[0], [old[2]])]
        assert store.count("ana") == 3  # the old dragon pair waits for a full pass


def test_grouping_is_deterministic_whatever_the_input_order(embed):
    mems = [m for m in facts() if m.user_id == "ana"]
    for i, m in enumerate(mems):
        m.id = f"m{i}"
    vecs = embed([m.text for m in mems])
    want = {tuple(sorted(mems[i].id for i in g)) for g in group_duplicates(mems, vecs)}
    rng = np.random.default_rng(0)
    for _ in range(3):
        perm = rng.permutation(len(mems))
        got = group_duplicates([mems[i] for i in perm], vecs[perm])
        assert {tuple(sorted(mems[perm[i]].id for i in g)) for g in got} == want
        survivors = {merge_group([mems[perm[i]] for i in g]).id for g in got}
        assert survivors == {"m2", "m5"}
