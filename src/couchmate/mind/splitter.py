"""Streamed text → speakable pieces: the first clause as soon as it is complete, then sentences.

The voice can start on "Oh no," while the model is still writing the rest. Rules:

- Sentence ends: . ! ? … and the CJK 。！？ (CJK marks need no space after them). A Latin
  mark counts only when followed by a space, a CJK character or the end of the stream, so
  "3.5", "e.g.", "Mr. Smith", "J. R." and "...x" do not split (". " after dots does).
- Clause marks: , ; : — and the CJK ，、；：. They split the first piece (when it has at least
  `min_clause` weight) and later only a piece that has grown past `long_clause`.
  "1,000" and "3:45" do not split.
- Closing quotes and brackets stay with the piece they close.
- Weight: a CJK character counts 2, any other non-space character 1.

One character of look-ahead is needed to decide most marks, so a piece is emitted when the
character after it arrives (or at `flush()`); CJK commas are decided at once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

SENTENCE_END = frozenset(".!?…。！？")
CJK_SENTENCE_END = frozenset("。！？")
CLAUSE = frozenset(",;:—，、；：")
CJK_CLAUSE = frozenset("，、；：—")
CLOSERS = frozenset("\"')]}”’」』）】》〉")
_MARKS = SENTENCE_END | CLAUSE
# A CJK comma is never followed by a closer or part of a number: decide without look-ahead.
_NO_LOOKAHEAD = frozenset("，、；：")

ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "a.m", "p.m"}
    | {"vol", "fig", "approx", "u.s", "u.k", "prof", "inc", "ltd"}
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff66-\uff9f]")


def _is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


def weight(text: str) -> int:
    return sum(2 if _is_cjk(c) else 1 for c in text if not c.isspace())


class SentenceSplitter:
    """Feed deltas, get pieces. Not thread-safe; one per reply."""

    def __init__(
        self,
        *,
        min_clause: int = 6,
        min_sentence: int = 2,
        long_clause: int = 60,
        hard_max: int = 240,
    ):
        self.min_clause = min_clause
        self.min_sentence = min_sentence
        self.long_clause = long_clause
        self.hard_max = hard_max
        self._buf = ""
        self._start = 0  # where the current piece begins in _buf
        self._scan = 0  # where scanning resumes
        self.pieces = 0

    def feed(self, delta: str) -> list[str]:
        self._buf += delta
        return self._split(final=False)

    def flush(self) -> list[str]:
        """The end of the stream: whatever is left is the last piece."""
        out = self._split(final=True)
        rest = self._buf[self._start :].strip()
        self._buf, self._start, self._scan = "", 0, 0
        if rest:
            out.append(rest)
            self.pieces += 1
        return out

    @property
    def pending(self) -> str:
        return self._buf[self._start :]

    def _split(self, *, final: bool) -> list[str]:
        out: list[str] = []
        buf = self._buf
        n = len(buf)
        j = max(self._scan, self._start)
        while j < n:
            if buf[j] not in _MARKS:
                j += 1
                continue
            k = j
            while k + 1 < n and (buf[k + 1] in _MARKS or buf[k + 1] in CLOSERS):
                k += 1
            if k + 1 >= n and not final and buf[k] not in _NO_LOOKAHEAD:
                break  # need the next character to decide
            nxt = buf[k + 1] if k + 1 < n else ""
            kind = self._boundary(buf, j, k, nxt)
            if kind and self._take(kind, buf[self._start : k + 1]):
                piece = buf[self._start : k + 1].strip()
                if piece:
                    out.append(piece)
                    self.pieces += 1
                self._start = k + 1
            j = k + 1
        self._scan = j
        # A runaway piece with no marks at all: cut at the last space.
        # (weight ≤ 2 × characters: most calls skip the count)
        if 2 * (n - self._start) > self.hard_max and weight(buf[self._start : n]) > self.hard_max:
            cut = buf.rfind(" ", self._start, n)
            if cut > self._start:
                out.append(buf[self._start : cut].strip())
                self.pieces += 1
                self._start = cut + 1
                self._scan = max(self._scan, self._start)
        # Keep the buffer short: drop what has been emitted.
        if self._start > 4096:
            self._buf = buf[self._start :]
            self._scan -= self._start
            self._start = 0
        return out

    def _boundary(self, buf: str, j: int, k: int, nxt: str) -> str:
        run = buf[j : k + 1]
        free = not nxt or nxt.isspace() or _is_cjk(nxt)
        if any(c in CJK_SENTENCE_END for c in run):
            return "sentence"
        if any(c in SENTENCE_END for c in run):
            if not free:
                return ""  # "3.5", "a.b", "?!x"
            if run[0] == "." and len(run.rstrip("".join(CLOSERS))) == 1:
                word = _word_before(buf, j)
                if word.lower() in ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                    return ""
            return "sentence"
        if any(c in CJK_CLAUSE for c in run):
            return "clause"
        if free:
            return "clause"
        return ""  # "1,000", "3:45"

    def _take(self, kind: str, piece: str) -> bool:
        w = weight(piece)
        if kind == "sentence":
            return w >= self.min_sentence
        limit = self.min_clause if self.pieces == 0 else self.long_clause
        return w >= limit


def _word_before(buf: str, j: int) -> str:
    i = j
    while i > 0 and (buf[i - 1].isalpha() or buf[i - 1] == "."):
        i -= 1
    return buf[i:j]


async def speakable(
    deltas: AsyncIterable[str], splitter: SentenceSplitter | None = None
) -> AsyncIterator[str]:
    """Pieces of a streamed reply, each as soon as it is complete."""
    splitter = splitter or SentenceSplitter()
    async for delta in deltas:
        for piece in splitter.feed(delta):
            yield piece
    for piece in splitter.flush():
        yield piece
