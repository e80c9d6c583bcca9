"""Topic names and entity rules; the BM25 index (incremental == rebuilt, per-term maths)."""

from __future__ import annotations

import math

import numpy as np

from couchmate.memory.lexical import LexicalIndex, stem, tokens
from couchmate.memory.topics import entities, mentioned, normalize, topics_for


def test_topic_names_normalize():
    assert normalize("  Elden   Ring!! ") == "elden ring"
    assert normalize("ＥＬＤＥＮ ring") == "elden ring"  # NFKC folds full-width letters
    assert normalize("Half-Life: Alyx") == "half life alyx"  # the form queries match


def test_entities_from_text():
    text = (
        'Yesterday I finally beat Malenia in Elden Ring! Then we watched "The Last of Us" '
        "with Sarah in New York. Lord of the Rings is next."
    )
    found = entities(text)
    for e in ("elden ring", "the last of us", "malenia", "sarah", "new york", "lord of the rings"):
        assert e in found, found
    assert "yesterday" not in found and "then" not in found and "i" not in found
    # a title the user already has is found even in lower case
    assert "hollow knight" in entities("back to hollow knight tonight", known=["Hollow Knight"])
    assert topics_for("I love zelda", explicit=["Mario Kart"], known=["zelda"]) == [
        "mario kart",
        "zelda",
    ]


def test_mentioned_matches_known_topics_by_words():
    known = {"elden ring", "dark souls", "it"}
    assert mentioned("What about Elden Ring and DARK SOULS?", known) == ["elden ring", "dark souls"]
    assert mentioned("golden rings", known) == []  # whole words only; "it" is too short


def test_tokens_stem_and_stop():
    assert tokens("The players were running to the Castles!") == ["player", "run", "castl"]
    assert stem("stories") == "story" and stem("stopped") == "stop"
    assert tokens("我喜欢游戏") == ["我喜", "喜欢", "欢游", "游戏"]


def test_bm25_incremental_equals_rebuilt_and_matches_the_formula():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    docs = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(300)]
    inc = LexicalIndex()
    for i, d in enumerate(docs):
        inc.add(i, d)
        if i == 150:
            inc.merge()  # half in CSR, half in the tail
    fresh = LexicalIndex()
    for i, d in enumerate(docs):
        fresh.add(i, d)
    fresh.merge()
    q = "w1 w2 w2 w39"
    assert np.allclose(inc.scores(q), fresh.scores(q))
    # one document by hand
    n, doc = len(docs), 7
    lens = [len(tokens(d)) for d in docs]
    avg = sum(lens) / n
    expect = 0.0
    for term, qtf in (("w1", 1), ("w2", 2), ("w39", 1)):
        df = sum(term in tokens(d) for d in docs)
        tf = tokens(docs[doc]).count(term)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        expect += qtf * idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * lens[doc] / avg))
    assert abs(inc.scores(q)[doc] - expect) < 1e-4


def test_known_topics_as_an_index_match_like_names():
    names = ["Hollow Knight", "Mario Kart 8", "The Bear"]
    index = {normalize(n): n for n in names}
    text = "Watched The Bear, then back to hollow knight"
    assert entities(text, known=index) == entities(text, known=names)
    assert "hollow knight" in entities(text, known=index)
