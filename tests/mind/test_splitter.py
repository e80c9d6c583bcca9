"""The sentence splitter on tricky streams, fed one character at a time and in chunks."""

from __future__ import annotations

import asyncio

import pytest

from couchmate.mind.splitter import SentenceSplitter, speakable, weight


def split(text: str, step: int = 1, **kw) -> list[tuple[str, int]]:
    """Pieces and how many characters had arrived when each came out."""
    s = SentenceSplitter(**kw)
    out = []
    for i in range(0, len(text), step):
        out += [(p, i + step) for p in s.feed(text[i : i + step])]
    out += [(p, len(text)) for p in s.flush()]
    return out


CASES = [
    (
        "Oh no, that was close. The boss has 3.5k HP, e.g. a lot. Mr. Smith said so! Really?!",
        [
            "Oh no, that was close.",
            "The boss has 3.5k HP, e.g. a lot.",
            "Mr. Smith said so!",
            "Really?!",
        ],
    ),
    (
        "Nice shot, really nice. Keep going!",
        ["Nice shot,", "really nice.", "Keep going!"],
    ),
    ("Score: 1,000 at 3:45. Not bad.", ["Score:", "1,000 at 3:45.", "Not bad."]),
    (
        "Version 2.0 is out. J. R. R. Tolkien wrote it.",
        ["Version 2.0 is out.", "J. R. R. Tolkien wrote it."],
    ),
    ('He said "Wow!" and left. Wait... what?', ['He said "Wow!"', "and left.", "Wait...", "what?"]),
    (
        "哎呀，差一点就赢了！下次小心点。要不要试试“绕后”？",
        ["哎呀，差一点就赢了！", "下次小心点。", "要不要试试“绕后”？"],
    ),
    (
        "あちゃー、惜しかったね。次は右から回ってみて！",
        ["あちゃー、", "惜しかったね。", "次は右から回ってみて！"],
    ),
    ("Oh no. 好的。OK", ["Oh no.", "好的。", "OK"]),
    ("no punctuation at all", ["no punctuation at all"]),
    ("", []),
]


@pytest.mark.parametrize("step", [1, 3, 1000])
@pytest.mark.parametrize(("text", "pieces"), CASES)
def test_pieces(text, pieces, step):
    assert [p for p, _ in split(text, step)] == pieces


def test_first_clause_comes_out_as_soon_as_it_is_complete():
    text = "Careful there, the imp is behind you. Turn around and shoot it, quickly."
    out = split(text)
    first, at = out[0]
    assert first == "Careful there,"
    assert at == len("Careful there, ")  # one character of look-ahead, no more
    # After the first piece, commas no longer split short clauses.
    assert [p for p, _ in out[1:]] == [
        "the imp is behind you.",
        "Turn around and shoot it, quickly.",
    ]
    cjk = split("当心后面，小恶魔来了！")
    assert cjk[0] == ("当心后面，", 5)  # CJK needs no space after the mark


def test_short_first_clause_waits_for_more():
    assert [p for p, _ in split("Oh, wow, that was a great jump.")] == [
        "Oh, wow,",
        "that was a great jump.",
    ]


def test_runaway_text_is_cut_at_a_space():
    text = "word " * 100
    out = [p for p, _ in split(text, hard_max=60)]
    assert len(out) > 3 and all(weight(p) <= 64 for p in out)
    assert " ".join(out).split() == text.split()


def test_speakable_async():
    async def deltas():
        for ch in "Hi there, friend. Bye.":
            await asyncio.sleep(0)
            yield ch

    async def main():
        return [p async for p in speakable(deltas())]

    assert asyncio.run(main()) == ["Hi there,", "friend.", "Bye."]
