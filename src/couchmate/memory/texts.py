"""Bounds on memory text, and the key that tells a repeated moment from a new one.

A memory's `text` is what is embedded, indexed for search, recalled into prompts and shown,
so it is bounded: a 1 MB pasted line must not become a 1 MB memory that every later search
prints. A longer text is cut (at a word where one is near) and marked with "…";
`data["chars"]` records how long it was, and `data["full_text"]` keeps the whole text only
where the user asked for it (`couchmate memory add --full`). Tables show at most
SHOWN_CHARS of a text, with a marker saying how long it is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from couchmate.types import Memory

MAX_TEXT_CHARS = 2000  # a memory's text: far past what the embedder reads (256 tokens)
MAX_QUERY_CHARS = 2000  # what a search looks at of its query
SHOWN_CHARS = 300  # what a table cell shows of one text
CHARS_KEY = "chars"  # Memory.data: the length of the text before it was bounded
FULL_TEXT_KEY = "full_text"  # Memory.data: the whole text, only where the user asked
COUNT_KEY = "count"  # Memory.data: how many times a repeated moment happened
FIRST_KEY = "first_t"  # Memory.data: when a repeated moment first happened
ELLIPSIS = "…"

_WORD = re.compile(r"[^\W_]+")


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start, cut at a space when one
    is in the last fifth, ending in "…" (the result is at most `limit` characters)."""
    if len(text) <= limit:
        return text
    head = text[: max(1, limit - 1)]
    space = head.rfind(" ")
    if space >= int(len(head) * 0.8):
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def bounded(m: Memory, *, keep_full: bool = False) -> Memory:
    """The memory with its text within MAX_TEXT_CHARS (the whole text in data when
    `keep_full`)."""
    if len(m.text) <= MAX_TEXT_CHARS:
        return m
    data = {**m.data, CHARS_KEY: len(m.text)}
    if keep_full:
        data[FULL_TEXT_KEY] = m.text
    return replace(m, text=clip(m.text, MAX_TEXT_CHARS), data=data)


def full_length(m: Memory) -> int:
    n = m.data.get(CHARS_KEY) if m.data else None
    return n if isinstance(n, int) and n > len(m.text) else len(m.text)


def shown(m: Memory, limit: int = SHOWN_CHARS) -> str:
    """A memory's text for a table: at most about `limit` characters, and when anything is
    left out, a marker saying how long the text is."""
    total = full_length(m)
    if total <= limit:
        return m.text
    kept = m.data.get(FULL_TEXT_KEY) if m.data else None
    where = ", all kept: `couchmate memory show ID`" if isinstance(kept, str) else ""
    return f"{clip(m.text, limit)} [{total:,} chars{where}]"


def repeats(m: Memory) -> int:
    n = m.data.get(COUNT_KEY) if m.data else None
    return n if isinstance(n, int) and n > 1 else 1


def text_key(text: str) -> str:
    """Two texts with the same key say the same thing: case, spacing and punctuation aside
    ("death in doom-deathmatch" and "Death in Doom Deathmatch!")."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))
