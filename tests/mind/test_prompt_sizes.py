"""Each route gets a prompt sized for its model: `build(max_tokens=N)` keeps the new tokens
within N, the state, task and the player's words always in, the rest by what matters most
for the moment; through the Mind, a slow model is sent the short prompt, a fast one all."""

from __future__ import annotations

import asyncio

from couchmate.config import ModelRole
from couchmate.mind.memory_slot import Recollection
from couchmate.mind.mind import Mind
from couchmate.mind.persona import load_persona
from couchmate.mind.prompt import Identity, PromptBuilder, prompt_tokens
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions
from couchmate.models.prompt import Turn
from couchmate.models.scripted_server import Answer, ScriptedServer
from couchmate.types import now
from tests.mind.support import event, state

HISTORY = [Turn("user" if i % 2 else "assistant", f"turn {i}: " + "words " * 20) for i in range(8)]
EVENTS = [event("pickup", 10.0 + i, item="shells") for i in range(8)]
MEMORY = "\n".join(f"The user said thing number {i} about the game." for i in range(30))


def builder() -> PromptBuilder:
    return PromptBuilder(load_persona("sunny"), lang="en", user=Identity("u", "Alex"))


def full(b: PromptBuilder, **kw):
    return b.build(
        "Answer the player in character, briefly.",
        user_text="what should I do now?",
        state=state(20.0, health=45, ammo=12),
        events=EVENTS,
        history=HISTORY,
        memory=MEMORY,
        screen_text="SECTOR 7 — the door is locked",
        now=20.0,
        **kw,
    )


def test_a_token_budget_keeps_the_essentials_and_drops_the_rest_in_order():
    b = builder()
    everything = full(b)
    small = full(b, max_tokens=0)
    medium = full(b, max_tokens=250)
    assert prompt_tokens(small) < 60 < prompt_tokens(medium) <= 250 + 20
    assert prompt_tokens(medium) < prompt_tokens(everything)
    for p in (small, medium, everything):
        assert p.system == b.system  # byte-identical: servers keep it cached
        assert "health: 45" in p.context and "what should I do now?" in p.user
        assert p.context.rstrip().endswith("Answer the player in character, briefly.")
    assert small.history == [] and "<<notes" not in small.context
    # A question: what just happened first, then memory, then the talk so far (a small
    # model given its own last lines says them again).
    assert "Recent events" in medium.context
    assert len(medium.history) < len(everything.history) == len(HISTORY)


def test_the_mind_sends_a_slow_model_the_short_prompt_and_a_fast_one_everything():
    class Notes:
        async def recall(self, user_id, query, topics, budget_tokens):
            return Recollection(text=MEMORY)

        async def record(self, user_id, happening):
            pass

    async def one(ttft_per_token: float) -> dict:
        async with ScriptedServer(default=Answer("Go left.")) as srv:
            role = ModelRole(base_url=srv.base_url, model="scripted", max_images=0)
            fast = ChatBackend("fast", role, health=HealthOptions(prior_ttft_s=0.2))
            for n in (50, 400):  # what its health measured so far
                for _ in range(6):
                    fast.health.record_ttft(0.05 + ttft_per_token * n, tokens=n)
            mind = Mind(load_persona("sunny"), backends={"fast": fast}, memory=Notes())
            for turn in HISTORY:
                (
                    mind.conversation.add_user
                    if turn.role == "user"
                    else mind.conversation.add_companion
                )(turn.text)
            t = now()
            mind.on_update(state(t, health=45), [event("pickup", t, 0.3, item="shells")])
            [ln async for ln in mind.on_player_message("what should I do now?")]
            body = srv.chat_requests()[-1].body
            await fast.aclose()
            await mind.aclose()
            return body

    slow = asyncio.run(one(0.006))  # SmolLM2 on one CPU core: ~6 ms a prompt token
    quick = asyncio.run(one(0.00002))  # a GPU server
    # The slow model gets what starts within ~1.2 s at 6 ms a token: the question, the
    # state and a little more; the fast one all the turns and the memory notes.
    assert len(slow["messages"]) <= 5 < len(quick["messages"]) == 2 + len(HISTORY)
    assert "<<notes" in quick["messages"][-1]["content"]
    slow_chars = sum(len(m["content"]) for m in slow["messages"][1:])
    assert slow_chars < 1000
