"""The guard between the model and the voice: a model's clause is judged before it is said.

Small models say things a companion must not: the prompt read aloud ("Greet the player in
one short line."), the persona addressed to itself ("You are Sunny, the player's cheerful
friend"), talk about being an AI or about its instructions, the game-state block
("Game: doom\\nhealth: 64"), the companion's own last lines again, and a "comment" that
runs for fifteen seconds. The voice speaks a reply clause by clause, so the guard works on
the same pieces: `ReplyGuard.feed(piece)` returns the pieces that may be spoken now, and
once a piece fails, the reply stops there (the caller closes the stream). A reply whose
first piece fails says nothing: the moment falls back to a reflex line.

Rules, checked in this order on each piece (and on it joined with the piece before, so an
echo split over a clause boundary is still one echo); the first that fails is the reason:

- format: prompt structure, not speech: a line break inside a piece, markup, brackets or
  template tokens, list markers, snake_case identifiers.
- echo: the piece repeats our instructions: it shares a run of words with the system
  message, the section headers or the task (`echo_run` words with two content words, or
  most of a short piece), or it carries an event row ("8.0s ago") or a transcript header
  ("The player says:", "Now:", "A:").
  Screen text and memory notes are not instructions and are left out of the comparison
  (reading a sign aloud or recalling a fact is the point of them).
- self_talk: the companion talks about itself as a model: AI, language model, assistant,
  its prompt, instructions, rules, system message, "in character", itself as "you are
  <name>", or in an assistant's voice ("what can I help you with", "happy to help").
- repeat: the piece says again a sentence of the companion's recent lines or of this
  reply (its words in the same order, or ≥ `near_repeat` of the same words).
- too_long: the reply would run past the route's length in seconds of speech
  (`GuardPolicy.seconds`, by moment kind, at the persona's words per minute).

A piece that is too short to judge but matches the start of something the guard is
watching for (the greeting said a minute ago: "Hey Alex!") is held back and judged with
the next one; at the end of the reply a held piece that nothing followed is said.

Model output is untrusted text: the guard only ever removes it; it never changes the
persona, the rules or the prompt. Counts per reason are in `GuardStats`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from couchmate.models.prompt import Prompt

log = logging.getLogger(__name__)

#: why a piece was stopped, in the order the rules are checked
REASONS = ("format", "echo", "self_talk", "repeat", "too_long")

#: seconds of speech a reply may run to, by moment kind: quick reactions are a few words,
#: a comment or a greeting one or two short sentences, an answer a little more
_SECONDS: dict[str, float] = {
    "damage_taken": 4.0,
    "kill": 4.0,
    "pickup": 4.0,
    "score_up": 4.0,
    "low_health": 4.0,
    "death": 8.0,
    "life_lost": 8.0,
    "game_over": 8.0,
    "level_change": 8.0,
    "scene_change": 8.0,
    "greeting": 7.0,
    "lull": 8.0,
    "idle": 8.0,
    "player_message": 12.0,
}


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    #: words in a row shared with the instructions that make an echo (two must be content)
    echo_run: int = 4
    #: a piece of a few words is an echo when this share of it is instruction text
    echo_cover: float = 0.6
    #: a sentence with this share of the same words as a recent one is a near-repeat
    near_repeat: float = 0.75
    #: repeats are judged from this many words on (shorter pieces may be held)
    repeat_min_words: int = 3
    #: recent companion lines compared for repeats
    recent_lines: int = 6
    seconds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(_SECONDS))
    default_seconds: float = 6.0
    #: a CJK character counts as this many words of speech
    cjk_word: float = 0.4

    def max_seconds(self, kind: str) -> float:
        return self.seconds.get(kind, self.default_seconds)


DEFAULT_POLICY = GuardPolicy()


@dataclass(slots=True)
class GuardStats:
    replies: int = 0
    pieces: int = 0
    passed: int = 0
    held: int = 0
    #: replies stopped before anything was said (the moment got a reflex line), by reason
    dropped: Counter[str] = field(default_factory=Counter)
    #: replies stopped part-way (what was said stays said), by reason
    trimmed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replies": self.replies,
            "pieces": self.pieces,
            "passed": self.passed,
            "held": self.held,
            "dropped": dict(self.dropped),
            "trimmed": dict(self.trimmed),
        }


# --- words --------------------------------------------------------------------------------

_CJK_CHARS = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff66-\uff9f"
_TOKEN = re.compile(rf"[a-z0-9]+(?:'[a-z]+)?|[{_CJK_CHARS}]")
_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bi'm\b"), "i am"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'s\b"), " is"),
)
_STOP_WORDS = (
    "a an the and or but so if then to of in on at for with as by from is are was were be "
    "been am it its this that these those i you he she we they me my your our their him "
    "her them do does did not no yes just very too can will would should could have has "
    "had what who how why when where there here all any some one s"
)
_STOP = frozenset(_STOP_WORDS.split())


def words(text: str) -> list[str]:
    """Lower-case words (a CJK character is one), contractions spelled out, so "You're
    Sunny" and "You are Sunny" compare equal."""
    t = text.lower().replace("’", "'").replace("‘", "'")
    for pattern, full in _CONTRACTIONS:
        t = pattern.sub(full, t)
    return _TOKEN.findall(t)


def _is_cjk(w: str) -> bool:
    return len(w) == 1 and bool(re.match(rf"[{_CJK_CHARS}]", w))


def _content(ws: Sequence[str]) -> int:
    return sum(1 for w in ws if w not in _STOP)


def speech_seconds(text: str, wpm: int, *, cjk_word: float = 0.4) -> float:
    """About how long `text` takes to say at `wpm` (espeak-ng's words per minute)."""
    ws = _TOKEN.findall(text.lower())
    n = sum(cjk_word if _is_cjk(w) else 1.0 for w in ws)
    return n * 60.0 / max(1, wpm)


def _grams(ws: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)}


def _contains(seq: Sequence[str], sub: Sequence[str]) -> bool:
    n = len(sub)
    return n > 0 and any(list(seq[i : i + n]) == list(sub) for i in range(len(seq) - n + 1))


# --- what the prompt said -------------------------------------------------------------------

_BLOCK = re.compile(r"<<(screen|notes) id=([^>\s]+)>>.*?<</\1 id=\2>>", re.DOTALL)
_QUOTED = re.compile(r'"[^"\n]*"')
_ASSIGNED = re.compile(r"\w = \S")
_DATA_LINE = re.compile(r"^\s*(?:-\s|[\w .]{1,32}:\s*\S+\s*$)")


def instruction_text(prompt: Prompt) -> str:
    """The parts of a prompt that are our instructions: the system message, the context's
    headers and the task. Screen text, memory notes, state values and event rows are data,
    left out (the rules for them are `format` and the event-row pattern)."""
    context = _BLOCK.sub("\n", prompt.context)
    kept = [ln for ln in context.splitlines() if ln.strip() and not _DATA_LINE.match(ln)]
    # A quote in the task is a line already said (`You already said "…"`): saying it again
    # is a repeat, which the recent lines catch.
    text = _QUOTED.sub(" ", "\n".join([prompt.system, *kept]))
    # A value handed over to be said ("The game's HUD shows health = 0 right now.") is
    # data: saying it is the answer, not an echo.
    return "\n".join(s for s in _SENTENCE.split(text) if not _ASSIGNED.search(s))


class _Reference:
    """Texts to compare pieces with: their word 3-grams, and the words of each text and of
    each of its sentences (a repeat may be one sentence of a line, or the line itself)."""

    def __init__(self, texts: Sequence[str] = ()):
        self.runs: list[list[str]] = []
        self.grams: set[tuple[str, ...]] = set()
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        whole = words(text)
        if not whole:
            return
        self.grams |= _grams(whole, 3)
        parts = [words(s) for s in _SENTENCE.split(text)]
        parts = [ws for ws in parts if ws and ws != whole]
        self.runs += [whole, *parts]

    def has_run(self, ws: Sequence[str]) -> bool:
        return any(_contains(s, ws) for s in self.runs)


_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s*|\n+")


# --- the rules --------------------------------------------------------------------------------

_FORMAT = re.compile(
    r"[<>{}()`*#]|\[/?[A-Za-z]|^\s*\||^\s*[-•]\s|\b[a-z]+_[a-z_]+\b|https?://",
    re.MULTILINE,
)
_EVENT_ROW = re.compile(r"\b\d+(?:\.\d+)?s ago\b", re.IGNORECASE)
_HEADERS = re.compile(
    r"\bthe player says\s*:"
    r"|^\W*(?:you say|assistant|user|system|(?:the )?player|[aq]|answer|question|now)\s*:",
    re.IGNORECASE,
)
_SELF = re.compile(
    r"\b(?:an ai|ai (?:assistant|model|language model|chatbot|companion)|(?:large )?language "
    r"model|llm|chat ?bot|assistant|artificial intelligence|neural network)\b"
    r"|\b(?:my|your|these|those|our)\s+(?:instructions?|prompts?|rules|guidelines|"
    r"programming|training(?: data)?)\b|\bthe (?:instructions|prompt|guidelines)\b"
    r"|\bsystem (?:message|prompt)\b|\bplays? the role of\b"
    r"|\b(?:how|what) can i (?:help|assist)|\b(?:happy|glad|here) to (?:help|assist)\b"
    r"|\b(?:stay|staying|stayed|in|out of|break|breaking) character\b"
    r"|\bi am (?:just )?(?:a|an) (?:ai|bot|program|computer program|model|machine)\b"
    r"|人工智能|语言模型|提示词|系统消息|指令|人工知能|言語モデル|プロンプト|システムメッセージ"
    r"|(?<![A-Za-z])AI(?:助手|アシスタント)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Check:
    reason: str = ""
    #: the piece is clean but too short to tell; judge it with the next one
    hold: bool = False


class Guard:
    """One per mind: the rules for a persona's voice and the counts of what it stopped."""

    def __init__(
        self, *, display_name: str = "", wpm: int = 170, policy: GuardPolicy | None = None
    ):
        self.policy = policy or DEFAULT_POLICY
        self.wpm = wpm
        self.stats = GuardStats()
        name = words(display_name)
        self._you_are = re.compile(rf"\byou are {re.escape(' '.join(name))}\b") if name else None

    def reply(
        self, kind: str, prompt: Prompt | None = None, recent: Sequence[str] = ()
    ) -> ReplyGuard:
        """A guard for one reply to a moment of `kind`, to `prompt`, after `recent` lines."""
        self.stats.replies += 1
        instructions = instruction_text(prompt) if prompt is not None else ""
        return ReplyGuard(self, kind, instructions, list(recent)[-self.policy.recent_lines :])

    def check(self, text: str, *, instructions: str = "", recent: Sequence[str] = ()) -> str:
        """The reason a whole line would be stopped, or "" (for tests and benchmarks)."""
        g = ReplyGuard(self, "player_message", instructions, list(recent), count=False)
        g.feed(text)
        g.finish()
        return g.reason

    def _self_talk(self, text: str) -> bool:
        if _SELF.search(text):
            return True
        return self._you_are is not None and bool(self._you_are.search(" ".join(words(text))))


class ReplyGuard:
    """Judges one streamed reply piece by piece. `feed` → pieces to say now; after a
    failure `stopped` is true, `reason` says why and every later piece is refused."""

    def __init__(
        self, guard: Guard, kind: str, instructions: str, recent: list[str], *, count=True
    ):
        self.guard = guard
        self.policy = guard.policy
        self.kind = kind
        self.instructions = _Reference([instructions])
        self.recent = _Reference(recent)
        self.said: list[str] = []
        self.reason = ""
        self._held: str | None = None
        self._prev = ""  # the piece said before, for echoes across a clause boundary
        self._count = count
        self._limit = self.policy.max_seconds(kind)

    @property
    def stopped(self) -> bool:
        return bool(self.reason)

    def feed(self, piece: str) -> list[str]:
        if self.stopped or not piece.strip():
            return []
        stats = self.guard.stats if self._count else None
        if stats is not None:
            stats.pieces += 1
        held, self._held = self._held, None
        if held is not None:
            # Judged as one: the held start and this piece.
            check = self._check(f"{held} {piece}", joined_with="", final=True)
            if check.reason:
                return self._stop(check.reason, f"{held} {piece}")
            return self._say([held, piece])
        check = self._check(piece, joined_with=self._prev, final=False)
        if check.reason:
            return self._stop(check.reason, piece)
        if check.hold:
            self._held = piece
            if stats is not None:
                stats.held += 1
            return []
        return self._say([piece])

    def finish(self) -> list[str]:
        """The reply ended: a held piece nothing followed is said (it passed on its own)."""
        held, self._held = self._held, None
        if held is None or self.stopped:
            return []
        return self._say([held])

    # --- internals ----------------------------------------------------------------------

    def _say(self, pieces: list[str]) -> list[str]:
        out: list[str] = []
        for p in pieces:
            total = " ".join([*self.said, p])
            if speech_seconds(total, self.guard.wpm, cjk_word=self.policy.cjk_word) > self._limit:
                self._stop("too_long", p)
                break
            self.said.append(p)
            self.recent.add(p)  # a reply that says the same sentence twice is a repeat too
            self._prev = p
            out.append(p)
        if self._count:
            self.guard.stats.passed += len(out)
        return out

    def _stop(self, reason: str, piece: str = "") -> list[str]:
        self.reason = reason
        self._held = None
        if self._count:
            log.info(
                "guard: %s reply %s (%s) at %r",
                self.kind,
                "trimmed" if self.said else "dropped",
                reason,
                piece[:120],
            )
            (self.guard.stats.trimmed if self.said else self.guard.stats.dropped)[reason] += 1
        return []

    def _check(self, text: str, *, joined_with: str, final: bool) -> Check:
        if "\n" in text.strip() or _FORMAT.search(text):
            return Check("format")
        ws = words(text)
        if _EVENT_ROW.search(text) or _HEADERS.search(text) or self._echo(ws):
            return Check("echo")
        if joined_with and self._echo(words(joined_with) + ws, joined=True):
            return Check("echo")
        if self.guard._self_talk(text):
            return Check("self_talk")
        if self._repeat(ws):
            return Check("repeat")
        if not final and self._could_grow(ws):
            return Check(hold=True)
        return Check()

    def _echo(self, ws: list[str], *, joined: bool = False) -> bool:
        grams = self.instructions.grams
        if len(ws) < 3 or not grams:
            return False
        hit = [tuple(ws[i : i + 3]) in grams for i in range(len(ws) - 2)]
        covered = [False] * len(ws)
        best = run = 0
        best_content = content = 0
        for i, h in enumerate(hit):
            if h:
                for j in range(i, i + 3):
                    covered[j] = True
                run = run + 1 if run else 3
                content = _content(ws[i + 3 - run : i + 3])
                if run > best:
                    best, best_content = run, content
            else:
                run = 0
        if best >= self.policy.echo_run and best_content >= 2:
            return True
        if best >= 3 and best_content >= 2 and not joined:
            return sum(covered) / len(ws) >= self.policy.echo_cover
        return False

    def _repeat(self, ws: list[str]) -> bool:
        if len(ws) < self.policy.repeat_min_words:
            return False
        mine = set(ws)
        for s in self.recent.runs:
            if len(s) >= len(ws) and _contains(s, ws):
                return True
            if len(s) >= self.policy.repeat_min_words:
                other = set(s)
                if len(mine & other) / len(mine | other) >= self.policy.near_repeat:
                    return True
        return False

    def _could_grow(self, ws: list[str]) -> bool:
        """A short piece that is the start of a recent sentence or of an instruction run:
        whether it is a repeat or an echo depends on what follows."""
        if len(ws) < 2 or len(ws) >= max(self.policy.repeat_min_words, self.policy.echo_run):
            return False
        if self.recent.has_run(ws):
            return True
        return len(ws) >= 2 and self.instructions.has_run(ws) and _content(ws) >= 1


__all__ = [
    "DEFAULT_POLICY",
    "REASONS",
    "Guard",
    "GuardPolicy",
    "GuardStats",
    "ReplyGuard",
    "instruction_text",
    "speech_seconds",
    "words",
]
