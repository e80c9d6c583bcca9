"""Answering the player with no model: acknowledge what they tell us, and say back what
we remember when they ask about it.

Without a model the companion cannot reason, but it can still show that it listens: a
statement ("my name is Alex") gets an acknowledgement, and a question whose answer is a
remembered fact or progress note ("what's my name?") gets that note back.
"""

from __future__ import annotations

import re
from typing import Any

_QUESTION = re.compile(
    r"[?？]|^\s*(what|who|where|when|why|how|which|do|does|did|is|are|am|can|could|"
    r"should|would|will|have|has)\b|[吗吧呢]\s*$|什么|谁|哪|几|怎么|[か]\s*$|何|誰|どこ|いつ",
    re.IGNORECASE,
)
#: facts the extractors write in the third person ("The user's name is Alex.")
_VERBS = {"is": "are", "was": "were", "does": "do", "has": "have"}
_SECOND_PERSON = (
    (re.compile(r"\b[Tt]he user's\b"), "your"),
    (re.compile(r"\b[Tt]he user (is|was|does|has)\b"), lambda m: "you " + _VERBS[m[1]]),
    (re.compile(r"\b[Tt]he user (\w+?)s\b"), r"you \1"),
    (re.compile(r"\b[Tt]he user\b"), "you"),
)
#: how close (cosine, all-MiniLM-L6-v2) a remembered note must be to the question before it
#: is said back as the answer: "what is my name?" ~ "The user's name is Alex." scores about
#: 0.4, unrelated questions stay under about 0.25
MIN_SIMILARITY = 0.3


def is_question(text: str) -> bool:
    return bool(_QUESTION.search(text))


def second_person(fact: str) -> str:
    """'The user loves stealth games.' → 'You love stealth games.' (English facts only)."""
    out = fact.strip()
    for pattern, repl in _SECOND_PERSON:
        out = pattern.sub(repl, out)
    return out[:1].upper() + out[1:] if out else out


def remembered_note(sources: list[dict[str, Any]]) -> str | None:
    """The best remembered fact or progress note among recall results, if one is sure."""
    for s in sources[:3]:
        sure = float(s.get("similarity", 0.0)) >= MIN_SIMILARITY
        if sure and s.get("kind") in ("fact", "progress") and s.get("text"):
            return second_person(str(s["text"]))
    return None
