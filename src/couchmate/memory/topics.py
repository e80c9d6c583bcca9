"""Topics: what a memory is about (a game, a show, a product, a person, a place).

Topic names are normalized (case, spacing, punctuation) so "Elden  Ring", "elden ring" and
"ELDEN RING!" file together, and so do a game's id and its title: "doom-deathmatch",
"Doom Deathmatch" and "doom_deathmatch" are the one topic "doom deathmatch". The stores
bring topics written under older rules to this form when they open. Topics come from
explicit context (the game profile's title, the show, the product) and from entities named
in the text, found with cheap rules and no model: capitalized multiword names, quoted
titles, and titles the user already has as topics.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Set

# Any run of characters that are not letters, digits or an apostrophe (underscores and
# hyphens included) separates words.
_SEPARATORS = re.compile(r"(?:[^\w']|_)+")
_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{2,60})[\"“”«»]")
# A run of capitalized words ("Elden Ring", "Dark Souls III", "New York"), also joined by
# short lowercase glue inside titles ("Lord of the Rings").
_CAP_RUN = re.compile(
    r"\b([A-Z][\w'’\-]*(?:\s+(?:(?:of|the|de|la|von|&)\s+){0,2}[A-Z0-9][\w'’\-]*)+)"
)
_SINGLE_CAP = re.compile(r"\b([A-Z][A-Za-z][\w'’\-]{1,})\b")
# Capitalized words that are usually just sentence furniture, not entities.
_NOT_ENTITY_TEXT = """
    i i'm i've i'll i'd hey hi hello oh ok okay yes yeah no not so and but or the a an it it's
    that this these those there then thanks thank wow well what when where who why how which
    my your our their his her we you they he she me us them just really also maybe sure great
    nice cool awesome good love like did do does can could would should will was were is are
    today yesterday tomorrow monday tuesday wednesday thursday friday saturday sunday january
    february march april may june july august september october november december let lets
    sounds haha lol omg btw congrats congratulations absolutely definitely totally
    in on at to for with from after before during into by about as if
"""
_NOT_ENTITIES = frozenset(_NOT_ENTITY_TEXT.split())
MAX_TOPIC_CHARS = 80


def _canonical(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return _SEPARATORS.sub(" ", s).strip(" '")


def normalize(name: str) -> str:
    """The canonical form of a topic name: NFKC, lowercase, words (letters, digits and
    inner apostrophes) joined by single spaces; at most MAX_TOPIC_CHARS characters.

    Every place that files or looks up a topic goes through this, so the form a memory is
    stored under is the form a lookup asks for.
    """
    return _canonical(name)[:MAX_TOPIC_CHARS].rstrip(" '")


def normalize_all(names: Iterable[str]) -> list[str]:
    """Normalized, deduplicated, order kept, empties dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        t = normalize(n)
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _entity_ok(name: str) -> bool:
    words = name.lower().split()
    return bool(words) and not all(w.strip("'’-") in _NOT_ENTITIES for w in words)


def entities(text: str, known: Iterable[str] | Mapping[str, str] = ()) -> list[str]:
    """Entities named in `text`: quoted titles, capitalized names, and known topics it mentions.

    `known` is topic names, or a mapping whose keys are already `normalize`d (a user's
    index: keying hundreds of names per memory would cost more than the rest).

    A single capitalized word counts only away from the start of a sentence, where a
    capital means a name rather than grammar.
    """
    found: list[str] = []
    taken = [False] * len(text)

    def take(a: int, b: int) -> bool:
        if any(taken[a:b]):
            return False
        taken[a:b] = [True] * (b - a)
        return True

    for m in _QUOTED.finditer(text):
        if take(*m.span(1)):
            found.append(m.group(1))
    for m in _CAP_RUN.finditer(text):
        words = m.group(1).split()
        while words and words[0].lower() in _NOT_ENTITIES:
            words = words[1:]  # "Then Elden Ring" → "Elden Ring"
        if words and take(*m.span(1)):
            found.append(" ".join(words))
    for m in _SINGLE_CAP.finditer(text):
        before = text[: m.start()].rstrip()
        if not before or before[-1] in '.!?:"“(':
            continue
        if take(*m.span(1)):
            found.append(m.group(1))
    if known:
        keys = known.keys() if isinstance(known, Mapping) else {normalize(k) for k in known}
        found.extend(mentioned(text, keys))
    return [t for t in normalize_all(found) if _entity_ok(t)]


def topics_for(
    text: str,
    explicit: Iterable[str] = (),
    known: Iterable[str] | Mapping[str, str] = (),
    *,
    limit: int = 8,
) -> list[str]:
    """Topics to file a memory under: the explicit ones first, then entities in its text."""
    return normalize_all([*explicit, *entities(text, known)])[:limit]


def _words(text: str) -> list[str]:
    # As before topics were one form per name: the first MAX_TOPIC_CHARS characters.
    return normalize(text).split()


def mentioned(text: str, known: Iterable[str], *, max_words: int = 6) -> list[str]:
    """Which of the user's known topics a query or scene names (for the retrieval boost).

    Looks up the text's word n-grams in the topic set, so the cost follows the length of
    the text, not the number of topics the user has.
    """
    known_set = known if isinstance(known, Set) else set(known)
    if not known_set:
        return []
    words = _words(text)
    out: list[str] = []
    for n in range(min(max_words, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i : i + n])
            if len(gram) >= 3 and gram in known_set and gram not in out:
                out.append(gram)
    return out
