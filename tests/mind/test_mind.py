"""The Mind end to end: reflex-only, a refused port (real socket) inside the budget, a real
llama.cpp server streaming over HTTP, and the speaking loop with a cut."""

from __future__ import annotations

import asyncio
import time

import pytest

from couchmate.config import ModelRole, Settings
from couchmate.mind.memory_slot import Recollection
from couchmate.mind.mind import Mind
from couchmate.mind.persona import load_persona
from couchmate.mind.prompt import Identity
from couchmate.models.backend import ChatBackend
from couchmate.models.local_server import free_port
from tests.mind.support import FakeClock, event, state


def texts(persona, kind, lang):
    return {t.text for t in load_persona(persona).bank(kind, lang)}


def test_reflex_only_mind_reacts_in_the_users_language_and_times_lines():
    clock = FakeClock()
    settings = Settings.model_validate(
        {"user": {"name": "Alex", "language": "ja"}, "persona": {"name": "deadpan"}}
    )
    mind = Mind.from_settings(settings, clock=clock)
    assert mind.lang == "ja" and mind.persona.name == "deadpan"
    hello = mind.greet()
    assert len(hello) == 1 and hello[0].lang == "ja"
    assert mind.next_line() is hello[0]
    mind.line_done(hello[0])
    clock.advance(10)
    s = state(clock.t, health=8)
    death = event("death", clock.t, 1.0)
    death.timing.mark("evented", clock.t - 0.01)
    lines = mind.on_update(s, [event("pickup", clock.t, 0.3), death])
    assert [ln.event.kind for ln in lines] == ["death"]  # the pickup is held by the director
    ln = lines[0]
    assert ln.path == "reflex" and ln.persona == "deadpan" and "not configured" in ln.reason
    assert ln.text.replace("8", "{health}") in texts("deadpan", "death", "ja") | {ln.text}
    assert ln.timing.span_ms("evented", "decided") == pytest.approx(10.0)
    assert ln.timing.get("first_token") is not None
    assert ln.deadline == death.t + 6.0 and ln.priority >= 0.9
    assert mind.next_line() is ln


def test_player_message_without_models_gets_a_reflex_answer_in_character():
    async def main():
        mind = Mind(load_persona("sunny"), lang="zh", user=Identity("u", "Alex"))
        return [ln async for ln in mind.on_player_message("这个boss怎么打？")]

    lines = asyncio.run(main())
    assert len(lines) == 1 and lines[0].text in texts("sunny", "fallback_answer", "zh")
    assert lines[0].priority == 1.0


def test_do_not_disturb_and_talkativeness_0_still_answer():
    async def main(**kw):
        mind = Mind(load_persona("sunny"), **kw)
        unprompted = mind.on_update(state(0.0), [event("death", 0.0, 1.0)])
        unprompted += mind.greet()
        answer = [ln async for ln in mind.on_player_message("hey, you there?")]
        return unprompted, answer

    for kw in ({"do_not_disturb": True}, {"talkativeness": 0}):
        unprompted, answer = asyncio.run(main(**kw))
        assert unprompted == [] and len(answer) == 1


def refused_backend(**role) -> ChatBackend:
    port = free_port()  # bound and closed again: nothing listens, connects are refused
    settings = {"model": "tiny", "timeout_s": 5.0, **role}
    return ChatBackend("fast", ModelRole(base_url=f"http://127.0.0.1:{port}/v1", **settings))


def test_backend_down_falls_back_to_reflex_inside_the_budget():
    async def main():
        backend = refused_backend()
        mind = Mind(load_persona("sunny"), backends={"fast": backend})
        t0 = time.monotonic()
        answer = [ln async for ln in mind.on_player_message("what should I do next?")]
        took = time.monotonic() - t0
        # A death while the backend is down: reflex now, the follow-up fails quietly.
        lines = mind.on_update(state(time.monotonic()), [event("death", time.monotonic(), 1.0)])
        await asyncio.sleep(0)
        await asyncio.gather(*mind._tasks)
        # After three failures in a row the breaker is open: straight to reflex, no call.
        for _ in range(2):
            [ln async for ln in mind.on_player_message("and now?")]
        calls = backend.health.snapshot().calls
        last = [ln async for ln in mind.on_player_message("still there?")]
        await mind.aclose()
        await backend.aclose()
        assert backend.health.snapshot().calls == calls
        return answer, took, lines, last, mind

    answer, took, lines, last, mind = asyncio.run(main())
    assert answer[-1].path == "reflex" and "models failed" in answer[-1].reason
    assert answer[-1].text in texts("sunny", "fallback_answer", "en")
    assert took < 2.5  # the question's budget
    assert mind.model_errors and "fast" in mind.model_errors[0]
    assert len(lines) == 1 and lines[0].path == "reflex" and lines[0].event.kind == "death"
    assert last[-1].path == "reflex" and "circuit open" in last[-1].reason


@pytest.mark.server
def test_real_mind_llama_server_streams_an_answer_and_a_follow_up(mind_llama_server):
    async def main():
        backend = ChatBackend(
            "fast",
            ModelRole(
                base_url=mind_llama_server.base_url, model="tiny", max_tokens=24, timeout_s=20
            ),
        )
        mind = Mind(load_persona("sunny"), backends={"fast": backend}, max_tokens=24)
        answer = [ln async for ln in mind.on_player_message("any tips for this level?")]
        # Death: reflex line now, the model's analysis streams into the queue after it.
        now = time.monotonic()
        first = mind.on_update(state(now, health=0), [event("death", now, 1.0)])
        await asyncio.gather(*mind._tasks)
        queued = [mind.director.next_line()]
        while queued[-1] is not None:
            mind.line_done(queued[-1])
            queued.append(mind.director.next_line())
        await backend.aclose()
        return answer, first, queued[:-1], mind

    answer, first, played, mind = asyncio.run(main())
    model_lines = [ln for ln in answer if ln.path == "fast"]
    assert model_lines, [(ln.path, ln.reason, ln.text) for ln in answer]
    for ln in model_lines:
        assert ln.text.strip()
        assert ln.timing.get("decided") <= ln.timing.get("first_token")
    assert mind.conversation.turns[0].text == "any tips for this level?"
    assert mind.conversation.turns[1].role == "assistant"
    kinds = [(ln.path, ln.event.kind) for ln in played]
    # The answer (priority 1.0) plays first, then the death.
    n = len(model_lines)
    assert kinds[:n] == [("fast", "player_message")] * n, kinds
    death = next(d for m, d in mind.decisions if m.kind == "death")
    if death.path == "reflex" or death.reflex_first:
        # The model cannot react inside 0.3 s: a reflex line now, the analysis after it.
        assert first[0].path == "reflex"
        assert kinds[n] == ("reflex", "death") and kinds[n + 1] == ("fast", "death"), kinds
    else:
        # The server answered fast enough on this machine that the model takes the moment.
        assert not first and death.path == "fast"
        assert kinds[n] == ("fast", "death"), kinds


def test_run_voice_plays_one_line_at_a_time_and_cuts_for_a_more_urgent_one():
    async def main():
        mind = Mind(load_persona("sunny"), talkativeness=3)
        log: list[tuple[str, str]] = []
        started = asyncio.Event()

        async def say(line):
            log.append(("start", line.event.kind))
            started.set()
            try:
                await asyncio.sleep(0.3)
            except asyncio.CancelledError:
                log.append(("cut", line.event.kind))
                raise
            log.append(("done", line.event.kind))

        voice = asyncio.create_task(mind.run_voice(say))
        t = time.monotonic()
        mind.on_update(state(t), [event("pickup", t, 0.6)])
        await started.wait()
        t = time.monotonic()
        mind.on_update(state(t), [event("death", t, 1.0)])
        await asyncio.sleep(0.5)
        voice.cancel()
        await asyncio.gather(voice, return_exceptions=True)
        return log, mind

    log, mind = asyncio.run(main())
    assert log == [
        ("start", "pickup"),
        ("cut", "pickup"),
        ("start", "death"),
        ("done", "death"),
    ]
    assert mind.director.stats.cut == 1


class RecordingMemory:
    """A memory that recalls the same `facts` for any query and notes each recall's budget."""

    def __init__(self, *facts: str):
        self.facts = facts
        self.budgets: list[int] = []

    async def recall(self, user_id, query, topics, budget_tokens):
        self.budgets.append(budget_tokens)
        sources = [{"kind": "fact", "text": f, "similarity": 0.9} for f in self.facts]
        return Recollection(" ".join(self.facts), sources)

    async def record(self, user_id, happening):
        return None


def test_the_memory_token_budget_setting_sizes_every_recall():
    settings = Settings()
    settings.memory.token_budget = 123
    memory = RecordingMemory()

    async def main():
        offline = Mind.from_settings(settings, memory=memory)
        [ln async for ln in offline.on_player_message("what is my name?")]
        backend = refused_backend()  # the prompt for the model recalls before the call fails
        prompted = Mind.from_settings(settings, memory=memory, backends={"fast": backend})
        [ln async for ln in prompted.on_player_message("what is my name?")]
        for mind in (offline, prompted):
            await mind.aclose()
        await backend.aclose()

    asyncio.run(main())
    # offline: the offline answer; prompted: the model's prompt, then the offline answer
    assert memory.budgets == [123, 123, 123]


def test_when_every_model_fails_a_question_is_still_answered_from_memory():
    async def main():
        backend = refused_backend()
        memory = RecordingMemory("The user's name is Alex.")
        mind = Mind(load_persona("sunny"), backends={"fast": backend}, memory=memory)
        asked = [ln async for ln in mind.on_player_message("what is my name?")]
        told = [ln async for ln in mind.on_player_message("I like the shotgun")]
        await mind.aclose()
        await backend.aclose()
        return asked, told, mind

    asked, told, mind = asyncio.run(main())
    assert "models failed" in asked[-1].reason and "Alex" in asked[-1].text, asked[-1].text
    assert "models failed" in told[-1].reason
    assert told[-1].text in texts("sunny", "noted", "en")


def test_without_memory_a_statement_gets_no_promise_to_remember_it():
    async def main(memory):
        mind = Mind(load_persona("sunny"), memory=memory)
        return [ln async for ln in mind.on_player_message("my name is Alex")]

    forgetful = asyncio.run(main(None))
    assert len(forgetful) == 1
    assert forgetful[0].text in texts("sunny", "fallback_answer", "en")
    assert forgetful[0].text not in texts("sunny", "noted", "en")
    remembering = asyncio.run(main(RecordingMemory()))
    assert remembering[0].text in texts("sunny", "noted", "en")


class StuckMemory(RecordingMemory):
    """Recall hangs (a store that went away) or raises."""

    def __init__(self, fail: bool):
        super().__init__()
        self.fail = fail

    async def recall(self, user_id, query, topics, budget_tokens):
        if self.fail:
            raise RuntimeError("store is down")
        await asyncio.sleep(60)


@pytest.mark.parametrize("fail", [True, False])
def test_a_hung_or_broken_memory_neither_holds_up_nor_breaks_an_answer(fail):
    async def main():
        backend = refused_backend()
        offline = Mind(load_persona("sunny"), memory=StuckMemory(fail))
        prompted = Mind(load_persona("sunny"), memory=StuckMemory(fail), backends={"fast": backend})
        t0 = time.monotonic()
        answers = [
            [ln async for ln in mind.on_player_message("what is my name?")]
            for mind in (offline, prompted)
        ]
        took = time.monotonic() - t0
        for mind in (offline, prompted):
            await mind.aclose()
        await backend.aclose()
        return answers, took

    answers, took = asyncio.run(main())
    assert took < 2.5
    for lines in answers:
        assert lines[-1].text in texts("sunny", "fallback_answer", "en")
