"""Dialogue: the talk so far, what to ask the model for a moment, and streaming its reply.

`Conversation` keeps the recent turns (bounded). `task_for` words the instruction for a
moment. `stream_reply` runs one model call and yields speakable pieces as they complete
(first clause first), marking when the first token came.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from couchmate.mind.moments import Moment
from couchmate.mind.splitter import SentenceSplitter
from couchmate.models.prompt import Prompt, Turn
from couchmate.types import now


class Conversation:
    """The last turns between the player and the companion, oldest first."""

    def __init__(self, max_turns: int = 24):
        self.turns: deque[Turn] = deque(maxlen=max_turns)

    def add_user(self, text: str) -> None:
        if text.strip():
            self.turns.append(Turn("user", text.strip()))

    def add_companion(self, text: str) -> None:
        if not text.strip():
            return
        if self.turns and self.turns[-1].role == "assistant":
            # Two companion lines in a row (reflex then model) read as one turn.
            last = self.turns.pop()
            text = f"{last.text} {text.strip()}"
        self.turns.append(Turn("assistant", text.strip()))

    def __len__(self) -> int:
        return len(self.turns)

    def window(self) -> list[Turn]:
        return list(self.turns)


_TASKS = {
    "death": "The player just died. React in one short line; if the events show why, say it.",
    "game_over": "Game over. Say one short, warm line about the run.",
    "life_lost": "The player just lost a life. One short line.",
    "low_health": "The player's health is low. One short warning.",
    "damage_taken": "The player just took damage. One very short reaction.",
    "kill": "The player just got a kill. One very short reaction.",
    "pickup": "The player picked something up. One very short reaction.",
    "score_up": "The score just went up. One very short reaction.",
    "level_change": "A new level or area just started. One short line about it.",
    "scene_change": "The scene just changed to something new. One short line about what you see.",
    "idle": "The player has been idle for a while. Say one light thing or ask a question.",
    "lull": (
        "Nothing much is happening right now ({why}). Say one short thing: a comment on how "
        "the game is going or a light question to the player."
    ),
    "greeting": "The session just started. Greet the player in one short line.",
    "player_message": "Answer the player in character, briefly.",
}


def task_for(moment: Moment, *, said_first: str = "") -> str:
    """The instruction for a moment. `said_first`: the reflex line already spoken."""
    text = _TASKS.get(moment.kind, f"Something happened ({moment.kind}). One short line.")
    text = text.replace("{why}", moment.tags.get("why", "a lull"))
    if moment.tags.get("hud"):
        # A question about a HUD value: the value itself, so a small model need not read it
        # out of the state block.
        text += " " + moment.tags["hud"]
    if said_first:
        text += (
            f' You already said "{said_first}". Add one short, more useful line (what happened,'
            " or a tip); do not repeat yourself."
        )
    return text


class ReplyStream(Protocol):
    """What a model backend's `stream()` returns (couchmate.models.backend.ChatStream)."""

    text: str

    def __aiter__(self) -> AsyncIterator[str]: ...
    async def __anext__(self) -> str: ...
    async def aclose(self) -> None: ...


class StreamingBackend(Protocol):
    """The slice of couchmate.models.backend.ChatBackend that the mind uses."""

    name: str

    def stream(
        self,
        prompt: Prompt,
        *,
        budget_s: float | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ReplyStream: ...


@dataclass(slots=True)
class Piece:
    text: str
    index: int
    #: monotonic time of the reply's first token
    first_token: float
    #: monotonic time the request left (None: unknown); with `ready`, the model's own time
    request_sent: float | None = None
    #: monotonic time this piece's text was complete
    ready: float = 0.0


async def stream_reply(
    backend: StreamingBackend,
    prompt: Prompt,
    *,
    budget_s: float,
    max_tokens: int | None = None,
    splitter: SentenceSplitter | None = None,
    temperature: float | None = None,
    opened: Callable[[ReplyStream], None] | None = None,
) -> AsyncIterator[Piece]:
    """Speakable pieces of one streamed reply. Errors (ModelError and subclasses) propagate;
    the HTTP stream is closed when the caller stops iterating or is cancelled. `opened`
    gets the reply stream before it is read (closing it ends this reply early, cleanly)."""
    splitter = splitter or SentenceSplitter()
    reply = backend.stream(
        prompt, budget_s=budget_s, max_tokens=max_tokens, temperature=temperature
    )
    if opened is not None:
        opened(reply)
    first: float | None = None
    index = 0
    try:
        async for delta in reply:
            if first is None:
                first = now()
            for text in splitter.feed(delta):
                yield Piece(text, index, first, _sent(reply), now())
                index += 1
        for text in splitter.flush():
            first = first if first is not None else now()
            yield Piece(text, index, first, _sent(reply), now())
            index += 1
    finally:
        await reply.aclose()


def _sent(reply: Any) -> float | None:
    """When the request left, if the backend's stream keeps timing marks."""
    timing = getattr(reply, "timing", None)
    return timing.get("request_sent") if timing is not None else None
