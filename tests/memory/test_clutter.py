"""What keeps memory from filling with clutter, on the real embedder and both real stores:
repeated moments merge, one topic per game (old stores brought to it when they open), and
long texts are bounded."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from couchmate.config import MemorySettings
from couchmate.memory.embedded_store import EmbeddedStore
from couchmate.memory.postgres_store import PostgresStore
from couchmate.memory.service import MemoryService
from couchmate.memory.slot import StoreMemorySlot
from couchmate.memory.texts import CHARS_KEY, FULL_TEXT_KEY, MAX_TEXT_CHARS
from couchmate.mind.memory_slot import Happening
from couchmate.mind.moments import Moment, moment_happening
from couchmate.types import GameState, Memory
from tests.memory import embed_fixtures, pg_fixtures

pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url
embedder = embed_fixtures.embedder
T0 = 1_790_000_000.0
MINUTE = 60.0


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.server)])
def store_kind(request):
    return request.param


@pytest.fixture
def open_service(request, tmp_path, embedder, store_kind):
    """open_service(): a service on a store of the parametrized kind, reopenable on the same
    data (a fresh service and store each call)."""
    kind = store_kind
    url = request.getfixturevalue("pg_url") if kind == "postgres" else None
    opened: list[MemoryService] = []

    def make() -> MemoryService:
        store = PostgresStore(url) if url else EmbeddedStore(tmp_path / "m")
        svc = MemoryService(store, embedder, MemorySettings())
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        svc.close()


def death(t: float) -> Moment:
    return Moment("death", t, salience=0.9, state=GameState("doom-deathmatch", t))


def test_a_sessions_repeated_deaths_are_one_memory_with_a_count(tmp_path, embedder):
    """The user's session: 15 deaths in doom-deathmatch, and two identical turns."""
    svc = MemoryService(EmbeddedStore(tmp_path / "m"), embedder, MemorySettings())
    slot = StoreMemorySlot(svc, consolidate_after=False)

    async def session() -> None:
        for i in range(15):
            await slot.record("sam", moment_happening(death(T0 + 40 * i)))
            if i in (3, 9):
                await slot.record("sam", Happening("user_turn", "ugh, again"))

    asyncio.run(session())
    episodes = svc.store.list("sam", kind="episode")
    deaths = [m for m in episodes if "death" in m.text]
    assert len(deaths) == 1, [m.text for m in episodes]
    assert deaths[0].data["count"] == 15 and deaths[0].data["first_t"] <= deaths[0].t
    assert deaths[0].provenance["last"]["t"] == T0 + 40 * 14  # the moment's own clock
    assert len([m for m in episodes if "ugh" in m.text]) == 2  # turns are never merged
    text, _ = svc.recall_text("sam", "how often did I die in doom deathmatch?")
    assert "15 times" in text and text.count("death in doom-deathmatch") == 1
    svc.close()


def test_repeats_merge_within_the_window_on_both_stores(open_service):
    svc = open_service()
    ids = {svc.note("sam", "Death in doom-deathmatch", t=T0 + i * MINUTE) for i in range(10)}
    ids |= {svc.note("ana", "death in doom-deathmatch", t=T0)}  # another user: her own
    assert len(ids) == 2 and svc.store.count("sam") == 1 and svc.store.count("ana") == 1
    (m,) = svc.store.list("sam")
    assert (m.data["count"], m.data["first_t"], m.t) == (10, T0, T0 + 9 * MINUTE)
    # the store, reopened by a new process, still knows what it is repeating
    svc.close()
    svc = open_service()
    assert svc.note("sam", "death in DOOM deathmatch!", t=T0 + 20 * MINUTE) == m.id
    assert svc.store.get("sam", [m.id])[0].data["count"] == 11
    later = svc.note("sam", "death in doom-deathmatch", t=T0 + 20 * MINUTE + 2 * 3600)
    assert later != m.id and svc.store.count("sam") == 2  # hours later: a new memory
    # forgotten means forgotten: the next repeat is a new memory, not a lost one
    svc.forget("sam", [later])
    again = svc.note("sam", "death in doom-deathmatch", t=T0 + 20 * MINUTE + 2 * 3600 + 5)
    assert again not in (later, m.id) and svc.store.count("sam") == 2
    # a batch holding the same moment several times is one memory too
    batch = [Memory("sam", "episode", "kill in doom-deathmatch", t=T0 + i) for i in range(5)]
    assert len(set(svc.remember("sam", batch))) == 1
    assert svc.store.count("sam") == 3


def test_one_topic_per_game_whatever_the_spelling(open_service):
    svc = open_service()
    for text, topic in [
        ("death in doom-deathmatch", "doom-deathmatch"),
        ("The user said: this map is brutal", "Doom Deathmatch"),
        ("We got the railgun", "doom_deathmatch"),
    ]:
        svc.note("sam", text, topics=[topic])
    assert svc.topics("sam") == {"doom deathmatch": 3}
    for asked in ("doom deathmatch", "Doom-Deathmatch", "doom_deathmatch"):
        assert len(svc.about("sam", asked)) == 3
        assert len(svc.store.list("sam", topic=asked)) == 3
        assert len(svc.store.topic_members("sam", [asked], 10)) == 3
    hits = svc.recall("sam", "the railgun", topics=["Doom-Deathmatch"], k=3)
    assert all(h.why.get("topic") for h in hits)


def test_an_embedded_store_of_the_old_rules_is_brought_to_one_topic(tmp_path, embedder):
    store = EmbeddedStore(tmp_path / "m")
    mems = [Memory("sam", "episode", f"moment {i}", topics=["x"]) for i in range(3)]
    ids = store.add(mems, embedder.embed([m.text for m in mems]))
    store.close()
    # as an older couchmate left it: two spellings of one game, and no topic_form mark
    db = sqlite3.connect(tmp_path / "m" / "memories.sqlite3")
    spellings = ["doom-deathmatch", "doom deathmatch", "Doom_Deathmatch"]
    for mid, old in zip(ids, spellings, strict=True):
        (seq,) = db.execute("SELECT seq FROM memories WHERE id = ?", (mid,)).fetchone()
        db.execute("UPDATE memories SET topics = ? WHERE seq = ?", (json.dumps([old]), seq))
        db.execute("UPDATE memory_topics SET topic = ? WHERE seq = ?", (old, seq))
    db.execute("DELETE FROM meta WHERE key = 'topic_form'")
    db.commit()
    db.close()
    with EmbeddedStore(tmp_path / "m") as store:
        assert store.topics("sam") == {"doom deathmatch": 3}
        assert {m.id for m in store.list("sam", topic="doom-deathmatch")} == set(ids)
        assert all(m.topics == ["doom deathmatch"] for m in store.get("sam", ids))
        assert store.lexical_search("sam", "moment", 5)  # the search index still lines up


@pytest.mark.server
def test_a_postgres_database_of_the_old_rules_is_brought_to_one_topic(pg_url, embedder):
    with PostgresStore(pg_url) as store:
        mems = [Memory("sam", "episode", f"moment {i}") for i in range(3)]
        ids = store.add(mems, embedder.embed([m.text for m in mems]))
        with store._conn() as conn:  # as schema version 1 left it
            for mid, old in zip(ids, ["doom-deathmatch", "doom deathmatch", "x"], strict=True):
                conn.execute(
                    "UPDATE couchmate_memories SET topics = %s WHERE id = %s", ([old], mid)
                )
            conn.execute("DELETE FROM couchmate_schema WHERE version > 1")
        assert len(store.topics("sam")) == 3
    with PostgresStore(pg_url) as store:
        assert store.schema_version() == 2
        assert store.topics("sam") == {"doom deathmatch": 2, "x": 1}
        assert len(store.list("sam", topic="Doom_Deathmatch")) == 2


def test_a_pasted_megabyte_is_a_bounded_memory(open_service):
    svc = open_service()
    pasted = "Remember my build: " + "strength and faith " * 55_000  # ~1 MB, one line
    slot = StoreMemorySlot(svc, consolidate_after=False)
    asyncio.run(slot.record("sam", Happening("user_turn", pasted)))
    (m,) = svc.store.list("sam", kind="episode")
    assert len(m.text) <= MAX_TEXT_CHARS and m.text.endswith("…")
    assert m.data[CHARS_KEY] > 1_000_000 and FULL_TEXT_KEY not in m.data
    assert svc.recall("sam", "which build do I play?", k=1)[0].memory.id == m.id
    # asked for (memory add --full): the whole text is kept, out of the search indexes
    kept = svc.note("sam", pasted, kind="fact", keep_full=True)
    (full,) = svc.store.get("sam", [kept])
    assert len(full.text) <= MAX_TEXT_CHARS and full.data[FULL_TEXT_KEY] == pasted


def test_old_repeated_rows_consolidate_into_one_counted_memory(tmp_path, embedder):
    """An older couchmate's 15 rows: `memory consolidate --episodes` makes them one."""
    from couchmate.memory.consolidate import consolidate

    with EmbeddedStore(tmp_path / "m") as store:
        rows = [
            Memory("sam", "episode", "death in doom-deathmatch", topics=["doom deathmatch"],
                   t=T0 + 40 * i)
            for i in range(15)
        ]  # fmt: skip
        store.add(rows, embedder.embed([m.text for m in rows]))
        report = consolidate(store, embedder.embed, "sam", kinds=("episode",))
        assert report.removed == 14
        (m,) = store.list("sam")
        assert (m.data["count"], m.data["first_t"], m.t) == (15, T0, T0 + 40 * 14)
