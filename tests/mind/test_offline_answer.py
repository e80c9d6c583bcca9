"""With no model, the companion still listens: it acknowledges what the player tells it
and answers from long-term memory (real embedded store, real embedding model)."""

from __future__ import annotations

import asyncio

import pytest

from couchmate.config import Settings
from couchmate.memory.slot import build_slot
from couchmate.mind.mind import Mind
from couchmate.mind.offline_answer import is_question, second_person


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("what's my name?", True),
        ("how do I beat this boss", True),
        ("my name is Alex", False),
        ("I finished chapter 3", False),
        ("我叫什么名字", True),
        ("好的", False),
        ("私の名前は何", True),
    ],
)
def test_questions_are_told_from_statements(text, question):
    assert is_question(text) is question


def test_facts_are_said_back_in_the_second_person():
    assert second_person("The user's name is Alex.") == "Your name is Alex."
    assert second_person("The user loves stealth games.") == "You love stealth games."
    assert second_person("The user does not want spoilers.") == "You do not want spoilers."


@pytest.mark.slow
def test_a_reflex_only_mind_remembers_the_players_name(tmp_path):
    settings = Settings()
    settings.memory.path = str(tmp_path / "memory")

    async def main():
        slot = await asyncio.to_thread(build_slot, settings)
        mind = Mind.from_settings(settings, memory=slot)
        told = [ln async for ln in mind.on_player_message("my name is Alex")]
        await asyncio.gather(*mind._tasks)  # let the turn reach memory
        asked = [ln async for ln in mind.on_player_message("what is my name?")]
        unknown = [ln async for ln in mind.on_player_message("how do I beat the boss?")]
        await mind.aclose()
        slot.service.close()
        return told, asked, unknown, mind

    told, asked, unknown, mind = asyncio.run(main())
    assert told[0].path == "reflex"
    assert told[0].text in {t.text for t in mind.persona.bank("noted", "en")}
    assert "Alex" in asked[0].text, asked[0].text
    assert "Alex" not in unknown[0].text
