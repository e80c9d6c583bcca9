"""Answering the player with no model: acknowledge what they tell us, and say back what
we remember when they ask about it.

Without a model the companion cannot reason, but it can still show that it listens: a
statement ("my name is Alex") gets an acknowledgement, and a question whose answer is a
remembered fact or progress note ("what's my name?") gets that note back.

A question about a value on the HUD ("what is my health?") is answered from the game
state, model or not: `state_fact` finds the field asked about, `StateFact.sentence` says
it in the player's language, and `contradicts` tells whether a model's line gives another
number instead (a small model, even told the value, often does).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from couchmate.types import GameState

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


# --- questions about a value on the HUD --------------------------------------------------

#: what a player calls each HUD field, per language (the state's own field names too)
_FIELD_WORDS = {
    "health": r"health|hp|hit ?points|life bar|血量|生命值?|体力|ヘルス|ＨＰ",
    "armor": r"armou?r|shield|护甲|盔甲|アーマー|装甲",
    "ammo": r"ammo|ammunition|bullets|shells|弹药|子弹|弾薬|弾",
    "score": r"score|points|分数|得分|スコア|点数",
    "lives": r"lives|lifes|extra lives|剩余生命|几条命|残機|ライフ",
    "frags": r"frags?|kills|kill count|击杀|キル|フラグ",
}
_FIELD_RE = {
    k: re.compile(rf"(?<![a-z])(?:{v})(?![a-z])", re.IGNORECASE) for k, v in _FIELD_WORDS.items()
}
#: asking for the value ("what's my…", "how much…", "多少", "いくつ")
_ASKS_VALUE = re.compile(
    r"\b(what|what's|whats|how (much|many|high|low)|tell me|check|current|left|at)\b|"
    r"多少|几|是什么|いくつ|どれくらい|何|どのくらい",
    re.IGNORECASE,
)
#: asking how to change it ("how do I get more health?"): a question for the model, not the HUD
_HOW_TO = re.compile(
    r"\b(get|find|gain|restore|increase|more|where|why|recover|heal|raise|boost|buy|refill|"
    r"keep|save|lose|lost)\b|怎么|如何|哪里|为什么|どうやって|どこ|なぜ|増や",
    re.IGNORECASE,
)
_NAMES = {
    "en": {
        "health": "health",
        "armor": "armor",
        "ammo": "ammo",
        "score": "score",
        "lives": "lives",
        "frags": "frags",
    },
    "zh": {
        "health": "生命值",
        "armor": "护甲",
        "ammo": "弹药",
        "score": "分数",
        "lives": "剩余生命",
        "frags": "击杀数",
    },
    "ja": {
        "health": "体力",
        "armor": "アーマー",
        "ammo": "弾薬",
        "score": "スコア",
        "lives": "残機",
        "frags": "フラグ数",
    },
}
_SENTENCES = {
    "en": {
        "ammo": "You have {v} ammo.",
        "lives": "You have {v} lives left.",
        "frags": "You have {v} frags.",
        "": "Your {name} is {v}.",
    },
    "zh": {"": "你的{name}是{v}。"},
    "ja": {"": "{name}は{v}だよ。"},
}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class StateFact:
    """A HUD value the player asked about: `field` in the state, `kind` what it is."""

    field: str
    kind: str
    value: str

    def sentence(self, lang: str) -> str:
        names = _NAMES.get(lang, _NAMES["en"])
        table = _SENTENCES.get(lang, _SENTENCES["en"])
        name = names.get(self.kind, self.field.replace("_", " "))
        return table.get(self.kind, table[""]).format(name=name, v=self.value)

    def hint(self) -> str:
        """The value for the model's task, in words the model cannot miss."""
        return f"The game's HUD shows {self.kind} = {self.value} right now."


def spoken_number(value: object) -> str | None:
    """A HUD number as said aloud (45.0 → "45"); None for anything that is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def state_fact(question: str, state: GameState | None) -> StateFact | None:
    """The HUD value `question` asks for, when the state has it; None for anything else
    (how to get more health is a question for the model, not a number to read out)."""
    if state is None or not is_question(question) or _HOW_TO.search(question):
        return None
    short = len(question.split()) <= 3 and len(question) <= 24
    if not (short or _ASKS_VALUE.search(question)):
        return None
    for kind, pattern in _FIELD_RE.items():
        if not pattern.search(question):
            continue
        for name in _fields_for(kind, state):
            value = spoken_number(state.fields[name].value)
            if value is not None:
                return StateFact(name, kind, value)
    return None


def contradicts(text: str, fact: StateFact) -> bool:
    """The line gives a number, and not the HUD's: it states the value wrongly."""
    numbers = {n.replace(",", ".") for n in _NUMBER.findall(text)}
    return bool(numbers) and fact.value not in numbers


def _fields_for(kind: str, state: GameState) -> list[str]:
    """The state's field for `kind`: the same name, else the player's (player_score, …)."""
    if kind in state.fields:
        return [kind]
    parts = {name: name.split("_") for name in state.fields}
    return [
        name
        for name, p in parts.items()
        if kind in p and not {"opponent", "enemy", "cpu", "p2"} & set(p)
    ]
