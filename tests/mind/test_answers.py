"""A player's question gets the model's answer when the model can give one: it waits up to
the patience (`mind.answer_patience_s`), says a short acknowledgement first, never counts
its own deadline as the backend's failure, and reads HUD values from the state."""

from __future__ import annotations

import asyncio

import pytest

from couchmate import config
from couchmate.config import ModelRole, Settings
from couchmate.mind.mind import Mind
from couchmate.mind.offline_answer import contradicts, state_fact
from couchmate.mind.persona import load_persona
from couchmate.mind.router import RouterPolicy
from couchmate.models.backend import ChatBackend
from couchmate.models.health import BreakerState, HealthOptions
from couchmate.models.scripted_server import Answer, ScriptedServer
from couchmate.types import now
from tests.mind.support import event, state

FALLBACK = {t.text for t in load_persona("sunny").bank("fallback_answer", "en")}
THINKING = {t.text for t in load_persona("sunny").bank("thinking", "en")}


def backend(srv: ScriptedServer, prior: float = 1.0) -> ChatBackend:
    role = ModelRole(base_url=srv.base_url, model="scripted", timeout_s=20)
    return ChatBackend("fast", role, health=HealthOptions(prior_ttft_s=prior))


async def ask(mind: Mind, text: str) -> list:
    return [ln async for ln in mind.on_player_message(text)]


@pytest.mark.slow
def test_a_cpu_model_slower_than_the_old_budget_answers_the_players_questions():
    """The user's steps: a local CPU model that takes 2.7 s to start (SmolLM2 at 600–900
    prompt tokens), default settings, two typed questions. Both got canned replies ("no
    idea", "I can't look that up"); the health question with the health on screen."""

    async def main():
        slow = [
            Answer("Keep moving and watch your corners.", ttft_s=2.7),
            Answer("Grab a medkit when you can.", ttft_s=2.7),
        ]
        async with ScriptedServer(slow) as srv:
            fast = backend(srv)
            mind = Mind.from_settings(Settings(), backends={"fast": fast}, warm_up=False)
            mind.on_update(state(now(), health=45, ammo=12), [])
            t0 = now()
            first = await ask(mind, "what should I do now?")
            took = now() - t0
            health = await ask(mind, "what is my health?")
            snap = fast.health.snapshot()
            requests = srv.chat_requests()
            await fast.aclose()
            return first, took, health, snap, requests, mind

    first, took, health, snap, requests, mind = asyncio.run(main())
    # The model's own answer (after an acknowledgement, once the model is known slow).
    assert [ln.path for ln in first if ln.text not in THINKING] == ["fast"], first
    assert "Keep moving" in first[-1].text and took < 4.0
    assert not any(ln.text in FALLBACK for ln in first + health)
    # The HUD value straight from the state, then the model's line (told the value, too).
    assert health[0].text == "Your health is 45." and health[0].path == "reflex"
    assert [ln.path for ln in health[1:]] == ["fast"]
    assert "health = 45" in requests[-1].body["messages"][-1]["content"]
    assert snap.state is BreakerState.CLOSED and mind.stats()["model_errors"] == []


@pytest.mark.parametrize(("patience", "by_model"), [(0.6, False), (3.0, True)])
def test_the_patience_setting_is_honoured(patience, by_model):
    environ = {"COUCHMATE_MIND__ANSWER_PATIENCE_S": str(patience)}
    settings = config.load(environ=environ).settings
    assert settings.mind.answer_patience_s == patience

    async def main():
        async with ScriptedServer(default=Answer("Try the left door.", ttft_s=1.5)) as srv:
            fast = backend(srv, prior=0.1)  # looks quick: the patience must cut it
            mind = Mind.from_settings(settings, backends={"fast": fast}, warm_up=False)
            t0 = now()
            lines = await ask(mind, "where do I go?")
            took = now() - t0
            await fast.aclose()
            return lines, took

    lines, took = asyncio.run(main())
    if by_model:
        assert lines[-1].path == "fast" and lines[-1].text == "Try the left door."
        assert 1.5 <= took < 3.0
    else:
        # It did not wait past the patience: the honest reflex answer at ~0.6 s.
        assert lines[-1].path == "reflex" and lines[-1].text in FALLBACK
        assert patience - 0.1 <= took < patience + 0.4, took


def test_a_cut_by_the_patience_is_a_speed_sample_not_a_backend_error():
    """Cancellations by our own deadline were counted as errors; after three the circuit
    opened and no question reached the model any more, however patient the player."""

    async def main():
        async with ScriptedServer(default=Answer("Here it comes.", ttft_s=1.0)) as srv:
            fast = backend(srv, prior=0.05)
            settings = Settings()
            settings.mind.answer_patience_s = 0.4
            mind = Mind.from_settings(settings, backends={"fast": fast}, warm_up=False)
            for _ in range(4):
                await ask(mind, "anything?")
            snap = fast.health.snapshot()
            reason = mind.decisions[-1][1].reason
            sent = len(srv.chat_requests())
            # The player is willing to wait longer now: the model is still trusted.
            mind.router.policy = RouterPolicy(answer_patience_s=3.0)
            later = await ask(mind, "and now?")
            stats = mind.stats()
            await fast.aclose()
            return snap, reason, sent, later, stats

    snap, reason, sent, later, stats = asyncio.run(main())
    assert snap.state is BreakerState.CLOSED and snap.error_rate == 0.0
    assert snap.consecutive_failures == 0 and stats["model_errors"] == []
    # The cut taught it the model needs longer than 0.4 s: later questions at that
    # patience are not sent to fail again, by speed, not by an open circuit.
    assert sent >= 1 and stats["budget_misses"] == sent
    assert "> patience 0.40s" in reason and "circuit" not in reason
    assert later[-1].path == "fast" and later[-1].text == "Here it comes."


@pytest.mark.parametrize(
    ("question", "lang", "answer"),
    [
        ("what is my health?", "en", "Your health is 45."),
        ("What's my health at?", "en", "Your health is 45."),
        ("how much ammo do I have left?", "en", "You have 12 ammo."),
        ("hp?", "en", "Your health is 45."),
        ("我的血量是多少？", "zh", "你的生命值是45。"),
        ("体力はいくつ？", "ja", "体力は45だよ。"),
    ],
)
def test_a_hud_question_is_answered_from_the_state_offline(question, lang, answer):
    async def main():
        mind = Mind(load_persona("sunny"), lang=lang)  # no model at all
        mind.on_update(state(now(), health=45, ammo=12), [])
        return await ask(mind, question)

    lines = asyncio.run(main())
    assert [ln.text for ln in lines] == [answer]


@pytest.mark.parametrize(
    "question",
    ["how do I get more health?", "where can I find ammo?", "what is this level?", "hi"],
)
def test_questions_that_are_not_about_a_hud_value(question):
    assert state_fact(question, state(0.0, health=45, ammo=12)) is None


def test_the_players_field_is_found_by_its_name_and_not_the_opponents():
    s = state(0.0, "atari:pong", player_score=7, opponent_score=11)
    fact = state_fact("what's my score?", s)
    assert fact is not None and (fact.field, fact.value) == ("player_score", "7")
    assert contradicts("You have 11 points!", fact) and not contradicts("7, nice!", fact)
    assert not contradicts("Keep it up!", fact)


def test_a_model_line_that_misstates_the_value_is_not_said():
    async def main():
        wrong = Answer("Your health is 100, you are fine. Grab the medkit anyway.")
        async with ScriptedServer(default=wrong) as srv:
            fast = backend(srv)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            mind.on_update(state(now(), health=45), [])
            lines = await ask(mind, "what is my health?")
            await fast.aclose()
            return lines

    lines = asyncio.run(main())
    texts = [ln.text for ln in lines]
    assert texts[0] == "Your health is 45."
    assert not any("100" in t for t in texts), texts
    assert any("medkit" in t for t in texts[1:]), texts  # the rest of its line is said


def test_an_answer_unfit_to_say_is_asked_for_once_more_while_the_player_waits():
    async def main():
        replies = [
            Answer("As an AI language model, I cannot see your game."),
            Answer("Go left, then up the stairs."),
        ]
        async with ScriptedServer(replies) as srv:
            fast = backend(srv, prior=0.1)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            lines = await ask(mind, "where do I go?")
            bodies = [r.body for r in srv.chat_requests()]
            await fast.aclose()
            return lines, bodies, mind.stats()

    lines, bodies, stats = asyncio.run(main())
    assert {ln.path for ln in lines} == {"fast"}
    assert " ".join(ln.text for ln in lines) == "Go left, then up the stairs."
    assert "temperature" not in bodies[0] and bodies[1]["temperature"] == 1.0
    assert stats["guard"]["dropped"] == {"self_talk": 1}


def test_an_event_does_not_queue_behind_the_answer_being_made():
    """A single-slot CPU server makes one reply at a time: a death's follow-up sent while a
    question is being answered would wait behind it and miss its own budget."""

    async def main():
        async with ScriptedServer(default=Answer("Take the stairs.", ttft_s=0.5)) as srv:
            fast = backend(srv, prior=0.1)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            answer = asyncio.ensure_future(ask(mind, "where do I go?"))
            await asyncio.sleep(0.2)  # the answer's request is out
            t = now()
            lines = mind.on_update(state(t, health=0), [event("death", t, 0.95)])
            reason = mind.decisions[-1][1].reason
            await answer
            await asyncio.gather(*mind._tasks)
            n = len(srv.chat_requests())
            await fast.aclose()
            return lines, reason, n

    lines, reason, n = asyncio.run(main())
    assert [ln.path for ln in lines] == ["reflex"] and "fast busy" in reason
    assert n == 1


def test_the_mind_warms_the_server_up_once_and_a_question_waits_for_it():
    """The system message is the same in every request, and servers keep the previous
    request's prefix: read once at the start, it costs nothing after (SmolLM2 cold: ~2–16 s
    for its ~350 tokens on this CPU, depending on the load)."""

    async def main():
        async with ScriptedServer(default=Answer("Hi there, go left.", ttft_s=0.3)) as srv:
            fast = backend(srv)
            mind = Mind.from_settings(Settings(), backends={"fast": fast})  # warm_up on
            mind.on_update(state(now(), health=45), [])
            mind.on_update(state(now(), health=44), [])  # once only
            lines = await ask(mind, "where now?")
            bodies = [r.body for r in srv.chat_requests()]
            await fast.aclose()
            await mind.aclose()
            return lines, bodies, fast.health.snapshot()

    lines, bodies, snap = asyncio.run(main())
    warm, question = bodies
    assert warm["max_tokens"] == 4 and warm["messages"][0]["content"].startswith("You are Sunny")
    assert question["messages"][0] == warm["messages"][0]  # the prefix the server keeps
    assert lines[-1].path == "fast" and snap.calls == 2 and snap.error_rate == 0.0
