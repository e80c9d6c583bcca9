"""MemoryService with the real local embedder on an EmbeddedStore: recall, topics, retention,
conversation context and token-budget packing."""

from __future__ import annotations

import time

import pytest

from couchmate.config import MemorySettings
from couchmate.errors import UserError
from couchmate.memory.embedded_store import EmbeddedStore
from couchmate.memory.embeddings import make_embedder
from couchmate.memory.retrieval import estimate_tokens, pack_hits
from couchmate.memory.service import MemoryService
from couchmate.memory.store import CONTEXT_KEY
from couchmate.types import Memory

FACTS = [
    "The player's name is Sam and they live in Lisbon.",
    "Sam hates spoilers about story twists.",
    "Sam's favourite food is grilled sardines.",
    "Sam plays the guitar on weekends.",
    "Sam got stuck on the Margit boss fight in Elden Ring for two hours.",
    "Sam finished Hollow Knight last spring.",
    "Sam watches Breaking Bad with a friend on Fridays.",
    "Sam wants to buy a new mechanical keyboard.",
]


@pytest.fixture
def svc(tmp_path):
    s = MemoryService(EmbeddedStore(tmp_path / "m"), make_embedder(), MemorySettings())
    yield s
    s.close()


def test_recall_ranks_the_obviously_relevant_memory_first(svc):
    svc.remember("sam", [Memory("sam", "fact", t) for t in FACTS])
    for query, expected in [
        ("which boss was I stuck on?", FACTS[4]),
        ("what do I like to eat", FACTS[2]),
        ("does Sam play an instrument?", FACTS[3]),
    ]:
        hits = svc.recall("sam", query, k=3)
        assert hits[0].memory.text == expected, (query, [h.memory.text for h in hits])
        assert hits[0].why["dense"] > 0 and hits[0].score >= hits[-1].score
    assert svc.recall("nobody", "which boss was I stuck on?") == []


def test_topics_are_filed_and_answer_everything_about_x(svc):
    svc.remember("sam", [Memory("sam", "fact", t) for t in FACTS])
    svc.remember(
        "sam",
        Memory("sam", "progress", "Reached Stormveil Castle.", topics=["  ELDEN   Ring "]),
    )
    topics = svc.topics("sam")
    assert topics["elden ring"] == 2  # named in a fact's text and given explicitly
    assert "hollow knight" in topics and "breaking bad" in topics
    about = [m.text for m in svc.about("sam", "Elden Ring")]
    assert about == ["Reached Stormveil Castle.", FACTS[4]]
    # the scene's topic boosts what is filed under it
    plain = svc.recall("sam", "what happened last time?", k=8)
    boosted = svc.recall("sam", "what happened last time?", topics=["Elden Ring"], k=8)
    rank = lambda hits, text: [h.memory.text for h in hits].index(text)  # noqa: E731
    assert rank(boosted, "Reached Stormveil Castle.") <= rank(plain, "Reached Stormveil Castle.")
    assert "topic" in boosted[rank(boosted, "Reached Stormveil Castle.")].why


def test_retention_window_applies_to_episodes_and_purges(tmp_path):
    settings = MemorySettings(retention_days=30)
    svc = MemoryService(EmbeddedStore(tmp_path / "m"), make_embedder(), settings)
    now = time.time()
    old, new, fact = svc.remember(
        "sam",
        [
            Memory("sam", "episode", "We talked about the weather.", t=now - 40 * 86400),
            Memory("sam", "episode", "We talked about dinner.", t=now - 5 * 86400),
            Memory("sam", "fact", "Sam is left-handed.", t=now - 400 * 86400),
        ],
    )
    got = {m.id: m for m in svc.store.get("sam", [old, new, fact])}
    assert got[old].retention == "expiring" and got[old].expires_at == pytest.approx(
        now - 10 * 86400, abs=1
    )
    assert got[fact].retention == "permanent" and got[fact].expires_at is None
    assert svc.purge_expired() == 1
    assert {m.id for m in svc.store.get("sam", [old, new, fact])} == {new, fact}
    assert all(h.memory.id != old for h in svc.recall("sam", "weather talk"))
    svc.close()


def test_per_user_plan_decides_the_window(tmp_path):
    plans = {"free": 7.0, "plus": 0.0}
    svc = MemoryService(
        EmbeddedStore(tmp_path / "m"), make_embedder(), retention_days=lambda u: plans[u]
    )
    a = svc.note("free", "a turn", t=1000.0)
    b = svc.note("plus", "a turn", t=1000.0)
    assert svc.store.get("free", [a])[0].expires_at == 1000.0 + 7 * 86400
    assert svc.store.get("plus", [b])[0].expires_at is None
    svc.close()


def test_turns_carry_the_turns_before_them_as_search_context(svc):
    turns = [
        "Companion: what did you research this week?",
        "Sam: adoption agencies, mostly.",
        "Companion: that is a big step!",
    ]
    ids = svc.remember(
        "sam",
        [
            Memory("sam", "episode", t, provenance={"session": "s1", "turn": i})
            for i, t in enumerate(turns)
        ],
    )
    stored = svc.store.get("sam", ids)
    assert CONTEXT_KEY not in stored[0].data
    assert stored[1].data[CONTEXT_KEY] == turns[0]
    assert stored[2].data[CONTEXT_KEY] == "\n".join(turns[:2])
    # the answer is found by the question's words, which only its context holds
    lex = svc.store.lexical_search("sam", "research week", 3)
    assert ids[1] in {i for i, _ in lex}
    # a later call continues the same session
    later = svc.remember(
        "sam", Memory("sam", "episode", "Sam: thanks!", provenance={"session": "s1", "turn": 3})
    )
    assert svc.store.get("sam", later)[0].data[CONTEXT_KEY] == "\n".join(turns[1:])


def test_pack_fits_the_budget_and_keeps_provenance(svc):
    svc.remember(
        "sam",
        [
            Memory(
                "sam",
                "episode",
                f"Sam said something long and detailed number {i} " * 3,
                provenance={"session": "s9", "turn": i},
            )
            for i in range(30)
        ],
    )
    hits = svc.recall("sam", "something detailed", k=30)
    text, _ = pack_hits(hits, 120)
    assert estimate_tokens(text) <= 120 and text
    for line in text.splitlines():
        assert line.startswith("- [episode, ") and "session s9" in line
    fitted = svc.recall("sam", "something detailed", k=30, budget_tokens=120)
    assert 0 < len(fitted) < len(hits)
    prompt, used = svc.recall_text("sam", "something detailed", budget_tokens=60)
    assert estimate_tokens(prompt) <= 60 and len(used) == len(prompt.splitlines())


def test_memories_of_another_user_are_refused(svc):
    with pytest.raises(UserError):
        svc.remember("sam", [Memory("eve", "fact", "eve sneaks in")])
    with pytest.raises(UserError):
        svc.remember("", [Memory("", "fact", "nobody")])
    with pytest.raises(UserError):
        svc.remember("sam", [Memory("sam", "fact", "   ")])
    assert svc.store.count("sam") == 0 and svc.store.count("eve") == 0


def test_from_settings_opens_the_configured_store(tmp_path):
    svc = MemoryService.from_settings(MemorySettings(path=str(tmp_path / "here")))
    assert isinstance(svc.store, EmbeddedStore) and svc.store.folder == tmp_path / "here"
    svc.note("sam", "remember this")
    svc.close()
    again = MemoryService.from_settings(MemorySettings(path=str(tmp_path / "here")))
    assert [m.text for m in again.store.list("sam")] == ["remember this"]
    again.close()
    default = MemoryService.from_settings()  # the isolated data dir of the test
    assert default.store.folder.name == "memory" and default.store.folder.exists()
    default.close()


def test_a_fact_from_a_turn_is_neither_context_nor_a_neighbour(svc):
    prov = {"session": "s1"}
    first = Memory("ana", "episode", "User: beat the hydra?", provenance={**prov, "turn": 0})
    said = Memory("ana", "episode", "User: My name is Ana.", provenance={**prov, "turn": 1})
    fact = Memory("ana", "fact", "The user's name is Ana.", provenance={**prov, "turn": 1})
    after = Memory("ana", "episode", "Companion: nice to meet you!", provenance={**prov, "turn": 2})
    ids = svc.remember("ana", [first, said, fact, after])
    stored = {m.id: m for m in svc.store.get("ana", ids)}
    assert CONTEXT_KEY not in stored[ids[2]].data  # the fact stands alone
    # The turn after sees the turns, not the fact that took the same turn number.
    assert stored[ids[3]].data[CONTEXT_KEY] == f"{first.text}\n{said.text}"


def test_a_reply_is_recalled_through_the_question_before_it(svc):
    turns = [
        "Companion: which boss gave you the most trouble this week?",
        "Sam: oh, definitely that one with the three heads.",
        "Companion: want to watch a movie later?",
        "Sam: sure, something funny.",
    ]
    ids = svc.remember(
        "sam",
        [
            Memory("sam", "episode", t, provenance={"session": "s1", "turn": i})
            for i, t in enumerate(turns)
        ],
    )
    hits = svc.recall("sam", "which boss was the most trouble?", k=4)
    reply = next(h for h in hits if h.memory.id == ids[1])
    assert reply.why["neighbours"] > 0
    assert hits.index(reply) < next(i for i, h in enumerate(hits) if h.memory.id == ids[3])
