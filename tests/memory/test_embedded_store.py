"""EmbeddedStore: CRUD, per-user isolation (adversarial), expiry, topics, snapshots, IVF."""

from __future__ import annotations

import numpy as np
import pytest

from couchmate.errors import MemoryStoreError, UserError
from couchmate.memory.embedded_store import EmbeddedStore
from couchmate.memory.store import CONTEXT_KEY
from couchmate.types import Memory

DIM = 16


def vecs(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def mem(user: str, text: str, **kw) -> Memory:
    return Memory(user_id=user, kind=kw.pop("kind", "episode"), text=text, **kw)


@pytest.fixture
def store(tmp_path):
    s = EmbeddedStore(tmp_path / "mem", dim=DIM)
    yield s
    s.close()


def test_add_get_update_delete_list_count(store):
    v = vecs(3)
    ids = store.add(
        [
            mem("alice", "likes Elden Ring", kind="fact", topics=["elden ring"], t=10.0),
            mem("alice", "beat the tree sentinel", topics=["elden ring"], t=20.0),
            mem("alice", "watched a movie", t=30.0, provenance={"session": "s1", "turn": 3}),
        ],
        v,
    )
    assert len(set(ids)) == 3
    got = store.get("alice", [ids[2], ids[0]])
    assert [m.text for m in got] == ["watched a movie", "likes Elden Ring"]
    assert got[0].provenance == {"session": "s1", "turn": 3}
    assert [m.text for m in store.list("alice")] == [
        "watched a movie",
        "beat the tree sentinel",
        "likes Elden Ring",
    ]
    assert [m.text for m in store.list("alice", kind="fact")] == ["likes Elden Ring"]
    assert store.count("alice") == 3

    store.update("alice", ids[0], mem("alice", "loves Elden Ring", kind="fact", t=11.0))
    assert store.get("alice", [ids[0]])[0].text == "loves Elden Ring"
    assert store.lexical_search("alice", "loves", 5)[0][0] == ids[0]
    assert store.lexical_search("alice", "likes", 5) == []
    # the vector was kept: searching with it finds the memory first
    assert store.dense_search("alice", v[0], 1)[0][0] == ids[0]

    assert store.delete("alice", [ids[1], "no-such-id"]) == 1
    assert store.count("alice") == 2
    assert store.dense_search("alice", v[1], 3)[0][0] != ids[1]
    assert all(i != ids[1] for i, _ in store.lexical_search("alice", "sentinel tree", 5))


def test_no_call_reaches_another_users_memories(store):
    v = vecs(4)
    a = store.add([mem("alice", "alice secret password swordfish", topics=["secrets"])], v[:1])[0]
    b_ids = store.add(
        [mem("bob", f"bob note {i} about swordfish", topics=["secrets"]) for i in range(3)],
        v[1:],
    )
    # bob asks for alice's id through every door
    assert store.get("bob", [a]) == []
    assert store.delete("bob", [a]) == 0
    store.update("bob", a, mem("bob", "hijacked"))
    assert store.get("alice", [a])[0].text == "alice secret password swordfish"
    with pytest.raises(MemoryStoreError):
        store.vectors("bob", [a])
    # search by alice's exact vector and words, as bob: only bob's rows come back
    assert {i for i, _ in store.dense_search("bob", v[0], 10)} == set(b_ids)
    assert {i for i, _ in store.lexical_search("bob", "alice secret password", 10)} <= set(b_ids)
    assert {i for i, _ in store.topic_members("bob", ["secrets"], 10)} == set(b_ids)
    assert store.topics("bob") == {"secrets": 3}
    assert all(m.user_id == "bob" for m in store.list("bob", topic="secrets"))
    # the same id may exist for two users without either seeing the other's
    store.add([mem("carol", "carol's own", id=a)], v[:1])
    assert store.get("carol", [a])[0].text == "carol's own"
    assert store.get("alice", [a])[0].text.startswith("alice")
    with pytest.raises(UserError):
        store.get("", [a])


def test_lexical_statistics_are_per_user(store):
    # Bob's many "dragon" memories must not change how alice's memories score.
    v = vecs(3)
    store.add([mem("alice", "the dragon boss"), mem("alice", "a quiet village")], v[:2])
    before = store.lexical_search("alice", "dragon village", 5)
    store.add([mem("bob", "dragon " * (i % 3 + 1)) for i in range(50)], vecs(50, 1))
    after = store.lexical_search("alice", "dragon village", 5)
    assert before == after


def test_purge_expired_and_kinds_filter(store):
    ids = store.add(
        [
            mem("alice", "old episode", retention="expiring", expires_at=100.0),
            mem("alice", "fresh episode", retention="expiring", expires_at=10_000.0),
            mem("alice", "a fact forever", kind="fact"),
            mem("bob", "bob old", retention="expiring", expires_at=50.0),
        ],
        vecs(4),
    )
    store.dense_search("alice", vecs(1)[0], 1)  # load alice's index before the purge
    assert store.purge_expired(now=1000.0) == 2
    assert store.get("alice", ids) == store.get("alice", [ids[1], ids[2]])
    assert store.count("bob") == 0
    assert ids[0] not in {i for i, _ in store.dense_search("alice", vecs(4)[0], 10)}
    facts = store.dense_search("alice", vecs(1)[0], 10, kinds=["fact"])
    assert [i for i, _ in facts] == [ids[2]]
    assert store.lexical_search("alice", "episode", 10, kinds=["fact"]) == []


def test_snapshot_reopen_sees_deletes_and_new_rows(tmp_path):
    path = tmp_path / "mem"
    s = EmbeddedStore(path, dim=DIM, snapshot_min=1)
    v = vecs(30)
    ids = s.add([mem("u", f"memory number {i} about topic{i % 5}") for i in range(30)], v)
    assert s.open_user("u") == 30
    s.close()  # writes the snapshot of the loaded index
    assert list((path / "index").glob("*.npz"))

    # Change the database behind the snapshot's back: one store deletes and adds rows
    # without the index loaded, so the snapshot is now stale.
    s2 = EmbeddedStore(path, dim=DIM, snapshot_min=10**9)
    assert s2.delete("u", ids[:5]) == 5
    new = s2.add([mem("u", "a brand new memory about dragons")], vecs(1, 7))[0]
    reply = mem("u", "Sam: yes, twice!", data={CONTEXT_KEY: "Companion: did you beat the hydra?"})
    replied = s2.add([reply], vecs(1, 8))[0]
    s2._db.close()
    s2._closed = True

    s3 = EmbeddedStore(path, dim=DIM)
    found = {i for i, _ in s3.dense_search("u", v[0], 30)}
    ix = s3._indexes["u"]
    assert (ix.n, ix.n_dead) == (32, 5)  # 30 from the snapshot (5 now dead) + 2 replayed
    assert not found & set(ids[:5])
    assert new in found
    assert s3.lexical_search("u", "dragons", 3)[0][0] == new
    # a replayed row is indexed with its context, as a live add is
    assert s3.lexical_search("u", "hydra", 3)[0][0] == replied
    assert s3.dense_search("u", v[10], 1)[0][0] == ids[10]
    s3.close()


def test_large_user_moves_to_ivf_and_still_finds_exact_matches(tmp_path):
    pytest.importorskip("faiss")
    s = EmbeddedStore(tmp_path / "mem", dim=DIM, ann_threshold=400)
    v = vecs(1000, 3)
    ids = s.add([mem("big", f"note {i}") for i in range(1000)], v)
    s.open_user("big")
    assert s._indexes["big"].vectors.kind == "ivf-sq8"
    hits = sum(s.dense_search("big", v[i], 1)[0][0] == ids[i] for i in range(0, 1000, 50))
    assert hits >= 18  # 8-bit quantization and probing may lose a rare one
    s.close()
    s2 = EmbeddedStore(tmp_path / "mem", dim=DIM, ann_threshold=400)
    assert s2.dense_search("big", v[5], 1)[0][0] == ids[5]  # from the IVF snapshot
    s2.close()


def test_bad_input_is_a_clear_error(store):
    with pytest.raises(UserError):
        store.add([Memory(user_id="u", kind="rumour", text="x")], vecs(1))  # type: ignore[arg-type]
    with pytest.raises(UserError):
        store.add([mem("u", "x")], np.zeros((1, DIM + 1), np.float32))
    store.add([mem("u", "x", id="fixed")], vecs(1))
    with pytest.raises(UserError):
        store.add([mem("u", "y", id="fixed")], vecs(1))
    assert store.count("u") == 1
