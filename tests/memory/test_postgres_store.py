"""The MemoryStore behaviour suite, run against both stores: PostgreSQL + pgvector (a real
server) and the embedded store. A few PostgreSQL-only tests close the file.

Vectors here are random unit vectors: the store's job is to return the true nearest
neighbours of whatever it was given, which numpy's brute force checks exactly.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from couchmate.errors import CouchmateError, MemoryStoreError, UserError
from couchmate.memory.postgres_store import PostgresStore, lexical_terms, redact_url
from couchmate.memory.store import CONTEXT_KEY, STORES
from couchmate.types import Memory
from tests.memory import pg_fixtures

pg_server, pg_url = pg_fixtures.pg_server, pg_fixtures.pg_url  # the test server's fixtures
DIM = 384


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.server)])
def store(request, tmp_path):
    if request.param == "postgres":
        s = PostgresStore(request.getfixturevalue("pg_url"), dim=DIM)
    else:
        s = STORES.get("embedded")(tmp_path / "memory", dim=DIM)
    yield s
    s.close()


def test_round_trip_of_every_field_and_order(store):
    rng = np.random.default_rng(0)
    m = Memory(
        user_id="ana",
        kind="progress",
        text="Beat Margit in Elden Ring — 第三章",
        topics=["elden ring", "boss margit"],
        t=1000.5,
        importance=0.9,
        provenance={"session": "s1", "turn": 4, "source": "user"},
        retention="expiring",
        expires_at=5000.0,
        data={"chapter": 3, "nested": {"ok": True}},
        id="given-id",
    )
    other = Memory("ana", "fact", "likes tea", t=2000.0)
    ids = store.add([m, other], unit(rng, 2))
    assert ids[0] == "given-id" and ids[1] and ids[1] != ids[0]
    got = store.get("ana", [ids[1], "missing", ids[0]])
    assert [g.id for g in got] == [ids[1], ids[0]]
    back = got[1]
    for name in Memory.__slots__:
        assert getattr(back, name) == getattr(m, name), name
    assert [x.id for x in store.list("ana")] == [ids[1], ids[0]]  # newest first
    assert [x.id for x in store.list("ana", kind="progress")] == [ids[0]]
    assert [x.id for x in store.list("ana", topic="boss:margit")] == [ids[0]]  # one form
    assert [x.id for x in store.list("ana", topic="Boss-Margit")] == [ids[0]]
    assert [x.id for x in store.list("ana", limit=1, offset=1)] == [ids[0]]
    assert store.count("ana") == 2
    assert store.topics("ana") == {"elden ring": 1, "boss margit": 1}


def test_update_reindexes_text_and_vector_and_delete_counts(store):
    rng = np.random.default_rng(1)
    v = unit(rng, 3)
    ids = store.add([Memory("ana", "progress", f"on chapter {i}") for i in range(2)], v[:2])
    new = Memory("ana", "progress", "finished the lighthouse level", topics=["game"])
    store.update("ana", ids[0], new, v[2])
    assert store.get("ana", [ids[0]])[0].text == "finished the lighthouse level"
    assert [i for i, _ in store.lexical_search("ana", "lighthouse", 5)] == [ids[0]]
    assert store.dense_search("ana", v[2], 1)[0][0] == ids[0]
    assert store.dense_search("ana", v[2], 1)[0][1] == pytest.approx(1.0, abs=2e-3)
    # text-only update keeps the old vector
    store.update("ana", ids[0], Memory("ana", "progress", "lighthouse done twice"))
    assert store.dense_search("ana", v[2], 1)[0][0] == ids[0]
    assert [i for i, _ in store.lexical_search("ana", "twice", 5)] == [ids[0]]
    unchanged(store, "ana", "no-such-id", new)
    with pytest.raises(UserError):  # an id is added once; update() changes it
        store.add([Memory("ana", "fact", "again", id=ids[1])], v[:1])
    assert store.get("ana", [ids[1]])[0].text == "on chapter 1"
    assert store.delete("ana", [ids[0], ids[0], "nope"]) == 1
    assert store.count("ana") == 1
    assert store.delete("ana", []) == 0


def test_dense_search_finds_the_true_neighbours_with_kind_filter(store):
    rng = np.random.default_rng(2)
    n = 400
    vecs = unit(rng, n)
    kinds = ["episode", "fact", "progress"]
    mems = [Memory("ana", kinds[i % 3], f"memory {i}") for i in range(n)]
    ids = store.add(mems, vecs)
    # another user's rows crowd the same region of the index
    store.add([Memory("bob", "fact", f"bob {i}") for i in range(n)], vecs + 1e-3)
    queries = unit(rng, 10)
    hits = 0
    for q in queries:
        sims = vecs @ q
        facts = [i for i in np.argsort(-sims) if mems[i].kind == "fact"][:10]
        got = store.dense_search("ana", q, 10, kinds=["fact"])
        assert len(got) == 10
        assert all(store.get("ana", [i])[0].kind == "fact" for i, _ in got)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        by_id = dict(zip(ids, sims, strict=True))
        # the score is the cosine similarity (the embedded store keeps float16 vectors)
        assert all(abs(s - by_id[i]) < 2e-3 for i, s in got)
        hits += len({ids[i] for i in facts} & {i for i, _ in got})
    assert hits / 100 >= 0.9  # HNSW is approximate; recall@10 against brute force


def test_lexical_search_ranks_matches_and_handles_stopwords_and_cjk(store):
    rng = np.random.default_rng(3)
    texts = [
        "I love the dragon boss fights",
        "dragons, dragons everywhere: the dragon nest",
        "the weather is nice today",
        "我喜欢玩塞尔达传说",
    ]
    ids = store.add([Memory("ana", "fact", t) for t in texts], unit(rng, 4))
    got = store.lexical_search("ana", "dragon nest", 10)
    assert [i for i, _ in got][:2] == [ids[1], ids[0]]
    assert ids[2] not in {i for i, _ in got}
    assert store.lexical_search("ana", "the is a", 10) == []  # only stop words
    assert store.lexical_search("ana", "", 10) == []
    assert [i for i, _ in store.lexical_search("ana", "塞尔达", 10)] == [ids[3]]
    assert store.lexical_search("ana", "dragon", 10, kinds=["episode"]) == []
    assert lexical_terms("Zelda塞尔达!") == ["zelda", "塞尔", "尔达"]
    # context (the turns a reply answers) is searchable, and is not part of the text
    reply = Memory("ana", "episode", "yes, twice!", data={CONTEXT_KEY: "did you beat the hydra"})
    (rid,) = store.add([reply], unit(rng, 1))
    assert [i for i, _ in store.lexical_search("ana", "hydra", 10)] == [rid]
    assert store.get("ana", [rid])[0].text == "yes, twice!"


def test_topic_members_score_by_overlap_then_newest(store):
    rng = np.random.default_rng(4)
    mems = [
        Memory("ana", "fact", "a", topics=["doom"], t=1),
        Memory("ana", "fact", "b", topics=["doom", "e1m1"], t=2),
        Memory("ana", "fact", "c", topics=["doom"], t=3),
        Memory("ana", "fact", "d", topics=["zelda"], t=4),
    ]
    ids = store.add(mems, unit(rng, 4))
    got = store.topic_members("ana", ["doom", "e1m1"], 10)
    assert got == [(ids[1], 2.0), (ids[2], 1.0), (ids[0], 1.0)]
    assert store.topic_members("ana", ["doom"], 1) == [(ids[2], 1.0)]
    assert store.topic_members("ana", [], 5) == []


def test_purge_expired_removes_only_passed_windows(store):
    rng = np.random.default_rng(5)
    mems = [
        Memory("ana", "episode", "old", retention="expiring", expires_at=100.0),
        Memory("bob", "episode", "old too", retention="expiring", expires_at=150.0),
        Memory("ana", "episode", "fresh", retention="expiring", expires_at=300.0),
        Memory("ana", "fact", "forever"),
    ]
    store.add(mems, unit(rng, 4))
    assert store.purge_expired(200.0) == 2
    assert sorted(m.text for m in store.list("ana")) == ["forever", "fresh"]
    assert store.users() == ["ana"]


HOSTILE_IDS = ["mallory", "ana' OR '1'='1", "%", "ana%", " ana", "ANA", "ana\x00", "*"]


def unchanged(store, user_id, memory_id, memory):
    """update() of an id this user does not have changes nothing (it may also say so)."""
    before = {m.id: m.text for u in store.users() for m in store.list(u, limit=1000)}
    try:
        store.update(user_id, memory_id, memory)
    except CouchmateError:
        pass
    after = {m.id: m.text for u in store.users() for m in store.list(u, limit=1000)}
    assert after == before


def test_no_call_returns_or_touches_another_users_data(store):
    rng = np.random.default_rng(6)
    vecs = unit(rng, 6)
    secret = [
        Memory("ana", "fact", "my bank pin is 4242", topics=["secret"], id="shared-id"),
        Memory("ana", "fact", "I live at 12 Elm street", topics=["secret", "home"]),
    ]
    ana_ids = store.add(secret, vecs[:2])
    # mallory has a memory with the *same id* as one of ana's
    store.add([Memory("mallory", "fact", "mallory's note", id="shared-id")], vecs[2:3])
    for uid in HOSTILE_IDS:
        try:
            store.count(uid)
        except CouchmateError:  # PostgreSQL refuses NUL bytes in text: a clear error is fine
            assert "\x00" in uid
            continue
        own = {"shared-id"} if uid == "mallory" else set()
        assert {m.id for m in store.get(uid, ana_ids)} <= own
        for m in store.get(uid, ana_ids) + store.list(uid, limit=100):
            assert m.user_id == uid and "4242" not in m.text
        assert "secret" not in store.topics(uid)
        assert set(dict(store.dense_search(uid, vecs[0], 10))) <= own
        assert set(dict(store.lexical_search(uid, "bank pin Elm street", 10))) <= own
        assert set(dict(store.topic_members(uid, ["secret", "home"], 10))) <= own
        assert store.delete(uid, [ana_ids[1]]) == 0
        unchanged(store, uid, ana_ids[1], Memory(uid, "fact", "overwritten"))
    try:  # a memory claiming to be ana's, written through mallory's account
        store.update("mallory", "shared-id", Memory("ana", "fact", "moved"))
    except CouchmateError:
        pass
    assert store.get("ana", ["shared-id"])[0].text == secret[0].text
    assert store.delete("mallory", ["shared-id"]) == 1
    left = store.get("ana", ana_ids)
    assert [m.text for m in left] == [m.text for m in secret]
    assert store.count("ana") == 2
    for call in (lambda: store.count(""), lambda: store.list(""), lambda: store.get("", ana_ids)):
        with pytest.raises(UserError):  # no user id is never "every user"
            call()
    with pytest.raises(UserError):
        store.add([Memory("", "fact", "nobody's")], vecs[3:4])


def test_concurrent_writers_from_threads(store):
    rng = np.random.default_rng(7)
    vecs = unit(rng, 80)
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for j in range(10):
                i = w * 10 + j
                store.add([Memory(f"u{w % 2}", "episode", f"turn {i}")], vecs[i : i + 1])
                store.dense_search(f"u{w % 2}", vecs[i], 3)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count("u0") == 40 and store.count("u1") == 40


def test_schema_persists_is_versioned_and_guards_the_dimension(pg_url):
    rng = np.random.default_rng(8)
    with PostgresStore(pg_url, dim=DIM) as s:
        assert s.schema_version() == 2
        (mid,) = s.add([Memory("ana", "fact", "remember me")], unit(rng, 1))
    with PostgresStore(pg_url, dim=DIM) as s:  # second connect: no migration, data kept
        assert s.get("ana", [mid])[0].text == "remember me"
        assert s.vectors("ana", [mid]).shape == (1, DIM)
        with pytest.raises(MemoryStoreError):
            s.add([Memory("ana", "fact", "x")], np.zeros((1, 12), dtype=np.float32))
    with pytest.raises(MemoryStoreError) as e:
        PostgresStore(pg_url, dim=768)
    assert "384" in e.value.message and e.value.hint


def test_unreachable_server_is_one_clear_error():
    url = "postgresql://me:hunter2@127.0.0.1:9/couchmate"
    with pytest.raises(MemoryStoreError) as e:
        PostgresStore(url, connect_timeout=2)
    assert "hunter2" not in e.value.message and "127.0.0.1" in e.value.message
    assert "memory.url" in e.value.hint and e.value.retryable
    assert redact_url(url) == "postgresql://me:***@127.0.0.1:9/couchmate"
    with pytest.raises(MemoryStoreError) as e:
        PostgresStore("")
    assert "memory.url" in e.value.hint
