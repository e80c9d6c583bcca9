"""The offline extractor: regular expressions for the facts people state most often.

Covered (English, and the cheap Chinese/Japanese forms): name, likes and dislikes, favourite
things, skill, spoiler tolerance, how chatty the companion should be, and progress in the
current game or show (finished / on / stuck at / beat / reached). Every fact fills a keyed
slot, so a newer statement for the same slot updates the old fact instead of piling up.

It is deliberately conservative: a missed fact costs little (the episode is still stored and
searchable), a wrong fact is repeated back to the user for years. Questions, reported speech
("she said I love …") and reactions to the companion ("I love how you said that") are not
facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from couchmate.memory.extraction import Decision, Utterance, existing_by_key, normalize
from couchmate.types import Memory

_SENTENCE = re.compile(r"[^.!?;\n。！？；]+[.!?;。！？；]?")
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
_STOP_OBJECTS = {
    "how", "that", "what", "when", "where", "why", "it", "this", "these", "those", "you",
    "your", "yours", "him", "her", "them", "the way", "to think", "hearing", "when you",
    "it when", "if", "which", "who", "about", "so", "too", "very",
}  # fmt: skip
_NOT_NAMES = {
    "not", "a", "an", "the", "so", "just", "here", "back", "later", "tired", "fine", "ok",
    "okay", "sure", "sorry", "stuck", "new", "good", "bad", "done", "ready", "going", "in",
    "on", "at", "crazy", "maybe", "anything", "whatever", "sad", "happy", "bored", "lost",
    "dead", "home", "busy", "hungry", "playing", "trying", "also", "still", "really",
    "confused", "excited", "glad", "afraid", "alive", "out", "up", "down", "what", "when",
}  # fmt: skip
_REPORTED = re.compile(r"(?i)\b(said|says|say|think|thinks|thought|if|whether|pretend)\s+$")
_TRAILING = re.compile(
    r"(?i)\s+(too|a lot|so much|very much|as well|anymore|any more|now|lately|though|"
    r"honestly|tbh|haha|lol)$"
)
_VAGUE = {"this game", "this", "it", "the game", "games", "this one", "playing", "this level"}


@dataclass(frozen=True, slots=True)
class _Fact:
    key: str
    kind: str
    text: str
    topics: tuple[str, ...] = ()
    importance: float = 0.7
    data: tuple[tuple[str, object], ...] = ()


def _clean(obj: str) -> str:
    obj = obj.strip(" \t'\"“”‘’")
    for _ in range(3):
        obj = _TRAILING.sub("", obj).strip()
    return obj


def _obj_key(obj: str) -> str:
    words = normalize(obj).split()
    while words and words[0] in ("the", "a", "an", "my", "playing", "to"):
        words = words[1:]
    return " ".join(words)[:60]


# --- one function per kind of fact: (sentence, turn) -> facts ------------------------------

_NAME_EN = [
    re.compile(r"(?i:\bmy name(?:'s| is)) (?P<v>[^\W\d_][\w'-]*(?: [A-Z][\w'-]*)?)"),
    re.compile(r"(?i:\b(?:please |just |you can )?call me) (?P<v>[^\W\d_][\w'-]*)\W*$"),
    re.compile(r"^(?i:(?:hi|hello|hey)(?: there)?[,! ]+)?(?i:i'm|i am) (?P<v>[A-Z][a-z'-]+)[.!]?$"),
]
_NAME_CJK = [
    re.compile(rf"我(?:叫|的名字是|的名字叫)(?P<v>[{_CJK}\w]{{1,10}}?)(?:[，。！,.!]|$)"),
    re.compile(rf"(?:私|僕|俺|わたし)の名前は(?P<v>[{_CJK}\w]{{1,12}}?)(?:です|だ|[。、！]|$)"),
    re.compile(rf"(?P<v>[{_CJK}\w]{{1,12}})(?:って|と)呼んで"),
]


def _name(s: str, turn: Utterance) -> list[_Fact]:
    for pat in _NAME_EN + _NAME_CJK:
        m = pat.search(s)
        if not m:
            continue
        name = m.group("v").strip()
        if name.lower() in _NOT_NAMES or name.split()[0].lower() in _NOT_NAMES:
            continue
        text = f"The user's name is {name}."
        return [_Fact("name", "fact", text, importance=0.9, data=(("name", name),))]
    return []


_PREF_VERBS = {
    "love": "loves", "adore": "adores", "like": "likes", "enjoy": "enjoys",
    "hate": "hates", "dislike": "dislikes", "detest": "detests",
    "can't stand": "can't stand", "cannot stand": "can't stand", "can't bear": "can't stand",
    "don't like": "doesn't like", "do not like": "doesn't like",
    "don't enjoy": "doesn't enjoy", "don't love": "doesn't love",
    "'m into": "is into", "am into": "is into", "'m a fan of": "is a fan of",
    "am a fan of": "is a fan of", "'m a big fan of": "is a big fan of",
    "am a big fan of": "is a big fan of", "'m a huge fan of": "is a huge fan of",
    "'m not a fan of": "is not a fan of", "am not a fan of": "is not a fan of",
}  # fmt: skip
_NEGATIVE = ("hate", "dislike", "detest", "stand", "bear", "don't", "do not", "not a fan")
_PREF_EN = re.compile(
    r"(?i)\bI ?(?:really |absolutely |just |totally |kind of |kinda |do |so |truly )?"
    r"(?P<verb>" + "|".join(sorted(map(re.escape, _PREF_VERBS), key=len, reverse=True)) + r")"
    r"\s+(?P<v>[^,.;!?]+)"
)
_PREF_CJK = [
    (re.compile(rf"我(?:很|最|非常|特别|真的)?(?P<neg>不)?喜欢(?P<v>[{_CJK}\w ]{{1,20}})"), None),
    (re.compile(rf"我(?:很|最|非常|特别|真的)?(?:讨厌|不爱)(?P<v>[{_CJK}\w ]{{1,20}})"), True),
    (re.compile(rf"(?P<v>[{_CJK}\w]{{1,15}}?)が(?:大)?好き"), False),
    (re.compile(rf"(?P<v>[{_CJK}\w]{{1,15}}?)が(?:大)?嫌い"), True),
]


def _preference(s: str, turn: Utterance) -> list[_Fact]:
    out: list[_Fact] = []
    for m in _PREF_EN.finditer(s):
        if _REPORTED.search(s[: m.start()]) or re.search(
            r"(?i)\b(do|did|would|'d)\s*$", s[: m.start()]
        ):
            continue
        obj = _clean(m.group("v"))
        words = obj.lower().split()
        if not words or len(words) > 8:
            continue
        if words[0] in _STOP_OBJECTS or " ".join(words[:2]) in _STOP_OBJECTS:
            continue
        if "spoil" in obj.lower():
            continue  # spoiler tolerance has its own slot
        verb = m.group("verb").lower()
        negative = any(n in verb for n in _NEGATIVE)
        text = f"The user {_PREF_VERBS[verb]} {obj}."
        out.append(_pref_fact(obj, text, negative))
    for pat, fixed in _PREF_CJK:
        for m in pat.finditer(s):
            obj = m.group("v").strip()
            if not obj or obj in ("你", "あなた", "它", "这个", "那个"):
                continue
            negative = fixed if fixed is not None else bool(m.groupdict().get("neg"))
            verb = "dislikes" if negative else "likes"
            out.append(_pref_fact(obj, f"The user {verb} {obj}.", negative))
    return out


def _pref_fact(obj: str, text: str, negative: bool) -> _Fact:
    return _Fact(
        f"pref:{_obj_key(obj)}", "fact", text, data=(("likes", not negative), ("object", obj))
    )


_FAV = re.compile(
    r"(?i)\bmy (?:all[- ]time )?(?:favou?rite|fav|fave) (?P<what>[a-z][a-z -]{0,30}?) "
    r"(?:is|are|'s|has to be|would be) (?P<v>[^,.;!?]+)"
)


def _favourite(s: str, turn: Utterance) -> list[_Fact]:
    m = _FAV.search(s)
    if not m or m.group("v").split()[0].lower() in _STOP_OBJECTS:
        return []
    what, value = m.group("what").strip().lower(), _clean(m.group("v"))
    text = f"The user's favourite {what} is {value}."
    return [_Fact(f"favourite:{_obj_key(what)}", "fact", text, data=(("value", value),))]


_SKILL_LEVELS = {
    "new to": "beginner", "a beginner at": "beginner", "a newbie at": "beginner",
    "a noob at": "beginner", "bad at": "weak", "terrible at": "weak", "awful at": "weak",
    "not good at": "weak", "not great at": "weak", "good at": "strong", "great at": "strong",
    "an expert at": "expert", "a pro at": "expert", "a veteran of": "expert",
    "experienced at": "strong", "experienced with": "strong",
}  # fmt: skip
_SKILL = re.compile(
    r"(?i)\bI(?:'m| am) (?:(?:really|pretty|quite|very|kind of|kinda|totally|completely|"
    r"still|so) )?(?P<level>" + "|".join(map(re.escape, _SKILL_LEVELS)) + r") (?P<v>[^,.;!?]+)"
)
_FIRST_TIME = re.compile(
    r"(?i)\b(?:my first time playing|I've never played|I have never played|"
    r"I never played)\b(?P<v>[^,.;!?]*)"
)


def _skill(s: str, turn: Utterance) -> list[_Fact]:
    m = _SKILL.search(s)
    if m:
        phrase, level, obj = (
            m.group("level").lower(),
            _SKILL_LEVELS[m.group("level").lower()],
            m.group("v"),
        )
    else:
        m = _FIRST_TIME.search(s)
        if not m:
            return []
        phrase, level, obj = "new to", "beginner", m.group("v")
    obj = _clean(obj.replace(" before", ""))
    if obj.lower() in _VAGUE or not obj:
        if not turn.topic:
            return []
        obj = turn.topic
    topics = (turn.topic.lower(),) if turn.topic else ()
    text = f"The user is {phrase} {obj}."
    return [
        _Fact(f"skill:{_obj_key(obj)}", "fact", text, topics, 0.6, (("level", level),)),
    ]


_SPOILERS_OFF = re.compile(
    r"(?i)\b(no spoilers?|don't spoil|do not spoil|dont spoil|no spoiling|without spoilers|"
    r"don't tell me what happens|avoid spoilers|spoiler[- ]free|hate spoilers|"
    r"spoilers? (?:are|is) (?:not ok|not okay|not allowed|off limits))"
    r"|不要剧透|别剧透|不许剧透|ネタバレ(?:禁止|しないで|やめて|なし|は嫌|は嫌い)"
)
_SPOILERS_ON = re.compile(
    r"(?i)\b(spoilers? (?:are|is) (?:fine|ok|okay|allowed|welcome)|i don't mind spoilers|"
    r"don't care about spoilers|you can spoil|feel free to spoil|spoil away|spoil it for me|"
    r"spoilers? welcome)|可以剧透|剧透也没关系|ネタバレ(?:OK|ok|大丈夫|してもいい)"
)


def _spoilers(s: str, turn: Utterance) -> list[_Fact]:
    if _SPOILERS_ON.search(s):
        on, text = True, "The user is fine with spoilers."
    elif _SPOILERS_OFF.search(s):
        on, text = False, "The user does not want spoilers."
    else:
        return []
    return [_Fact("spoilers", "fact", text, importance=0.8, data=(("spoilers", on),))]


_QUIETER = re.compile(
    r"(?i)\b(be quiet|quiet down|talk less|stop talking|shut up|less chatty|less talk|"
    r"too chatty|talk too much|you talk a lot|hush|fewer comments|stop commenting|"
    r"stop chattering|keep it down|less commentary)\b|安静|少说|别说话|闭嘴|静かに|黙って"
)
_CHATTIER = re.compile(
    r"(?i)\b(talk more|be more chatty|more chatty|say more|speak up more|comment more|"
    r"more comments|chat more|don't be so quiet|too quiet|more commentary)\b"
    r"|多说|多聊|もっと話して|もっと喋って"
)


def _chattiness(s: str, turn: Utterance) -> list[_Fact]:
    if _QUIETER.search(s):
        want, text = "less", "The user wants the companion to talk less."
    elif _CHATTIER.search(s):
        want, text = "more", "The user wants the companion to talk more."
    else:
        return []
    return [_Fact("chattiness", "fact", text, importance=0.8, data=(("talkativeness", want),))]


_UNIT = (
    r"(?:chapter|level|stage|act|world|episode|mission|area|zone|dungeon|floor|part|season|"
    r"book|quest|round|wave|map)"
)
_NUMBER = r"(?:\d+(?:-\d+)?|[ivx]+|one|two|three|four|five|six|seven|eight|nine|ten|[a-z]\d*)"
_PROGRESS_EN = [
    (
        "finished",
        re.compile(
            r"(?i)\bI(?:'ve| have)? ?(?:just |finally |already )?(?:finished|beat|beaten|"
            r"completed|cleared|passed|got through|am done with|'m done with) (?P<v>(?:the )?"
            rf"(?:{_UNIT}\s*{_NUMBER}\b|game\b|campaign\b|story\b|main story\b|season\b)[^,.;!?]*)"
        ),
    ),
    (
        "on",
        re.compile(
            r"(?i)\bI(?:'m| am) (?:now |currently |still )?(?:on|at|up to|playing) "
            rf"(?P<v>(?:the )?(?:{_UNIT})\s*{_NUMBER}\b[^,.;!?]*)"
        ),
    ),
    (
        "stuck at",
        re.compile(
            r"(?i)\bI(?:'m| am|'ve been| have been|'m still| am still) (?:still |really |totally |"
            r"completely |so )?stuck (?:at|on|in|with) (?P<v>[^,.;!?]+)"
        ),
    ),
    (
        "beat",
        re.compile(
            r"(?i)\bI(?:'ve| have)? ?(?:just |finally )?(?:beat|beaten|defeated|killed|took down) "
            r"(?P<v>(?:the )?[^,.;!?]{0,40}?\bboss\b[^,.;!?]*)"
        ),
    ),
    (
        "reached",
        re.compile(
            r"(?i)\bI (?:just |finally )?(?:reached|got to|made it to|unlocked) "
            r"(?P<v>(?:the )?[^,.;!?]{2,50})"
        ),
    ),
]
_CJK_V = rf"(?P<v>[{_CJK}\w]{{1,15}}?)(?:了|啦|呢|吧)?(?:[，。！,.!]|$)"
_PROGRESS_CJK = [
    ("reached", re.compile(r"我(?:已经|刚|刚刚)?(?:打到|玩到|到了|看到)" + _CJK_V)),
    ("finished", re.compile(r"我(?:已经|刚|刚刚)?(?:通关了|打完了|打通了|看完了)" + _CJK_V)),
    ("stuck at", re.compile(r"我(?:一直)?卡在" + _CJK_V)),
    ("finished", re.compile(r"(?P<v>第?[\d一二三四五六七八九十]+(?:章|ステージ|面|話))を?クリア")),
]
_STATUS_PHRASE = {"on": "is on", "stuck at": "is stuck at"}
_GAME_SUFFIX = re.compile(r"\s+(?:in|of|on) (?P<g>[A-Z][\w:'’-]*(?: [A-Z0-9][\w:'’-]*){0,4})$")


def _progress(s: str, turn: Utterance) -> list[_Fact]:
    for status, pat in _PROGRESS_EN + _PROGRESS_CJK:
        m = pat.search(s)
        if not m:
            continue
        what = _clean(m.group("v"))
        topic = turn.topic
        g = _GAME_SUFFIX.search(what)
        if g:
            topic = g.group("g")
            what = what[: g.start()].strip()
        if not what or what.lower() in ("it", "this", "that", "there", "here"):
            continue
        scope = topic.lower().strip() or "general"
        phrase = f"the user {_STATUS_PHRASE.get(status, status)} {what}."
        text = f"{topic}: {phrase}" if topic else phrase[0].upper() + phrase[1:]
        data = (("status", status), ("what", what))
        topics = (topic.lower(),) if topic else ()
        return [_Fact(f"progress:{scope}", "progress", text, topics, 0.7, data)]
    return []


RULES: tuple[Callable[[str, Utterance], list[_Fact]], ...] = (
    _name,
    _preference,
    _favourite,
    _skill,
    _spoilers,
    _chattiness,
    _progress,
)


def sentences(text: str) -> list[str]:
    text = text.replace("’", "'").replace("‘", "'")
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def facts_in(turn: Utterance) -> list[_Fact]:
    """Every fact the rules find in one turn, last statement per key winning."""
    found: dict[str, _Fact] = {}
    for s in sentences(turn.text):
        if s.endswith(("?", "？")):
            continue  # a question states nothing
        for rule in RULES:
            for f in rule(s, turn):
                found.pop(f.key, None)
                found[f.key] = f
    return list(found.values())


def rule_decisions(turn: Utterance, existing: Sequence[Memory]) -> list[Decision]:
    """Add a fact for a new key, update the existing fact of a known key, none if unchanged."""
    if turn.speaker != "user":
        return []
    by_key = existing_by_key([m for m in existing if m.user_id == turn.user_id])
    out: list[Decision] = []
    for f in facts_in(turn):
        old = by_key.get(f.key)
        d = Decision(
            op="add",
            kind=f.kind,  # type: ignore[arg-type]
            text=f.text,
            key=f.key,
            topics=list(f.topics),
            importance=f.importance,
            data=dict(f.data),
        )
        if old is not None:
            d.target = old.id
            d.op = "none" if normalize(old.text) == normalize(f.text) else "update"
        out.append(d)
    return out


class RuleExtractor:
    """The offline extractor (see the module doc)."""

    async def extract(self, turn: Utterance, existing: Sequence[Memory]) -> list[Decision]:
        return rule_decisions(turn, existing)
