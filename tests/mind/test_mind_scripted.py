"""The Mind against a real HTTP server with scripted timing (couchmate.models.scripted_server):
timeouts inside the budget, first-token marks, and a pre-empted reply whose stream is closed."""

from __future__ import annotations

import asyncio

from couchmate.config import ModelRole
from couchmate.mind.mind import Mind
from couchmate.mind.persona import load_persona
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions
from couchmate.models.scripted_server import Answer, ScriptedServer, Stall
from couchmate.types import now
from tests.mind.support import event, state


def backend(srv: ScriptedServer, name="fast", prior=1.0, **role) -> ChatBackend:
    return ChatBackend(
        name,
        ModelRole(base_url=srv.base_url, model="scripted", timeout_s=5.0, **role),
        health=HealthOptions(prior_ttft_s=prior),
    )


def bank(kind: str) -> set[str]:
    return {t.text for t in load_persona("sunny").bank(kind, "en")}


def test_a_stalled_model_falls_back_to_reflex_when_the_budget_runs_out():
    async def main():
        async with ScriptedServer([Stall()]) as srv:
            fast = backend(srv, prior=0.05)  # looks fast enough to answer a death directly
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            t0 = now()
            lines = mind.on_update(state(t0, health=0), [event("death", t0, 0.85)])
            assert lines == []  # the model was chosen for the first reaction
            await asyncio.gather(*mind._tasks)
            line = mind.next_line()
            await fast.aclose()
            return line, t0, srv

    line, t0, srv = asyncio.run(main())
    assert line.path == "reflex" and line.text in bank("death")
    assert "fits 0.30s" in line.reason and "models failed" in line.reason
    took = line.timing.get("first_token") - t0
    assert 0.25 <= took <= 0.6, took  # the 0.3 s budget, not the 5 s timeout
    assert srv.chat_requests()[0].client_closed_at is not None


def test_model_lines_carry_first_token_marks_and_arrive_as_pieces():
    async def main():
        reply = Answer("Ouch, right into the fireball. Strafe left next time.", ttft_s=0.2)
        async with ScriptedServer([reply]) as srv:
            fast = backend(srv)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            lines = [ln async for ln in mind.on_player_message("what happened there?")]
            await fast.aclose()
            return lines

    lines = asyncio.run(main())
    assert [ln.text for ln in lines] == [
        "Ouch, right into the fireball.",
        "Strafe left next time.",
    ]
    for ln in lines:
        assert ln.path == "fast"
        wait = ln.timing.get("first_token") - ln.timing.get("decided")
        assert 0.18 <= wait <= 1.0, wait


def test_a_pre_empted_model_reply_stops_streaming():
    async def main():
        slow_talk = Answer(
            "So, how is it going. " + "This level is long, isn't it. " * 20,
            ttft_s=0.01,
            token_interval_s=0.05,
        )
        async with ScriptedServer([slow_talk]) as srv:
            smart = backend(srv, name="smart", prior=0.5)
            mind = Mind(load_persona("sunny"), backends={"smart": smart})
            t = now()
            mind.on_update(state(t), [event("idle", t, 0.6)])  # a lull: smart commentary
            first = await asyncio.wait_for(mind.wait_line(), 2.0)
            assert first.event.kind == "idle" and first.path == "smart"
            t = now()
            death = mind.on_update(state(t, health=0), [event("death", t, 1.0)])
            await asyncio.gather(*mind._tasks, return_exceptions=True)
            await asyncio.sleep(0.1)
            req = srv.chat_requests()[0]
            pending = [ln.event.kind for ln in mind.director.pending()]
            await smart.aclose()
            return first, death, req, pending, mind

    first, death, req, pending, mind = asyncio.run(main())
    # The first reply measured the server fast (~10 ms), so the death goes to the model
    # directly; its line, when it comes, outranks the commentary.
    assert death == [] and "smart" in mind.decisions[-1][1].reason
    assert pending and set(pending) == {"death"}
    assert mind.director.stats.cut == 1  # the commentary playing now is cut
    assert req.client_closed_at is not None  # …and its stream closed, long before its end
    assert req.client_closed_at - req.t < 2.0


def test_a_new_question_supersedes_the_answer_still_streaming():
    async def main():
        slow = Answer("Well, first. " + "Then more words come. " * 30, token_interval_s=0.05)
        quick = Answer("Behind you!")
        async with ScriptedServer([slow, quick]) as srv:
            fast = backend(srv)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})

            gen = mind.on_player_message("tell me about this level")
            old = [await anext(gen), await anext(gen)]  # two pieces are out (and queued)
            second = [ln async for ln in mind.on_player_message("wait, where is the imp?")]
            old += [ln async for ln in gen]
            reqs = srv.chat_requests()
            await fast.aclose()
            return old, second, mind, reqs

    old, second, mind, reqs = asyncio.run(main())
    assert [ln.text for ln in second] == ["Behind you!"]
    assert len(old) < 10  # the old answer stopped early…
    assert reqs[0].client_closed_at is not None  # …and its stream was closed
    pending = [ln.text for ln in mind.director.pending()]
    assert pending == ["Behind you!"]  # the old answer's queued pieces are gone
