"""The guard inside the Mind: a model line that echoes the prompt, talks about itself, repeats
or runs on is not spoken (the moment gets its reflex line instead), or is cut where it goes
wrong with its stream closed. Scripted HTTP replies for the contract; then the real
SmolLM2-135M-Instruct on llama.cpp answering couchmate's own prompts."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from couchmate.config import ModelRole
from couchmate.mind.dialogue import task_for
from couchmate.mind.mind import RETRY_TEMPERATURES, Mind
from couchmate.mind.moments import Moment
from couchmate.mind.persona import load_persona
from couchmate.mind.prompt import Identity
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions
from couchmate.models.local_server import LlamaServer, smollm2_gguf
from couchmate.models.prompt import Prompt
from couchmate.models.scripted_server import Answer, ScriptedServer
from couchmate.types import Line
from tests.mind.support import event, state


def scripted(srv: ScriptedServer, prior: float = 0.2) -> ChatBackend:
    return ChatBackend(
        "fast",
        ModelRole(base_url=srv.base_url, model="scripted", timeout_s=5.0),
        health=HealthOptions(prior_ttft_s=prior),
    )


def bank(kind: str) -> set[str]:
    v = {"player": "Alex"}
    return {t.render(v) for t in load_persona("sunny").bank(kind, "en") if t.slots <= v.keys()}


def drain(mind: Mind) -> list[Line]:
    """Every line the voice would play now, in order."""
    out = []
    while (line := mind.next_line()) is not None:
        out.append(line)
        mind.line_done(line)
    return out


def test_a_greeting_that_reads_its_instruction_aloud_becomes_the_reflex_greeting():
    """The user's report: "Greet the player in one short line." was spoken as the hello."""

    async def main():
        async with ScriptedServer([Answer("Greet the player in one short line. Hi!")]) as srv:
            fast = scripted(srv)
            mind = Mind(load_persona("sunny"), backends={"fast": fast}, user=Identity("u", "Alex"))
            assert mind.greet() == []  # the model was chosen for the hello…
            await asyncio.gather(*mind._tasks)
            played = drain(mind)
            await fast.aclose()
            return played, mind

    played, mind = asyncio.run(main())
    assert [ln.path for ln in played] == ["reflex"]  # …and its line was not fit to say
    assert played[0].text in bank("greeting")
    assert "guard: echo: reflex" in played[0].reason
    assert mind.stats()["guard"]["dropped"] == {"echo": 1}
    assert mind.conversation.turns[-1].text == played[0].text


def test_a_reply_that_goes_bad_mid_way_is_cut_there_and_its_stream_closed():
    rambling = "Nice to see you. I am an AI companion and " + "I keep talking. " * 40

    async def main():
        async with ScriptedServer([Answer(rambling, token_interval_s=0.01)]) as srv:
            fast = scripted(srv)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            lines = [ln async for ln in mind.on_player_message("hi there")]
            req = srv.chat_requests()[0]
            await fast.aclose()
            return lines, mind, req

    lines, mind, req = asyncio.run(main())
    assert [ln.text for ln in lines] == ["Nice to see you."]
    assert mind.stats()["guard"]["trimmed"] == {"self_talk": 1}
    assert req.client_closed_at is not None  # generation stopped, not run to its end
    assert mind.conversation.turns[-1].text == "Nice to see you."


def test_an_answer_that_repeats_the_last_line_is_not_said_again():
    async def main():
        replies = [
            Answer("Keep moving and grab the armor!"),
            Answer("Keep moving and grab the armor!"),
            # …asked again (once per mind.RETRY_TEMPERATURES), the same each time
            *[Answer("Keep moving and grab the armor!")] * len(RETRY_TEMPERATURES),
        ]
        async with ScriptedServer(replies) as srv:
            fast = scripted(srv)
            mind = Mind(load_persona("sunny"), backends={"fast": fast})
            first = [ln async for ln in mind.on_player_message("any tips?")]
            second = [ln async for ln in mind.on_player_message("and now?")]
            await fast.aclose()
            return first, second, mind

    first, second, mind = asyncio.run(main())
    assert [ln.path for ln in first] == ["fast"]
    assert [ln.path for ln in second] == ["reflex"] and "guard: repeat" in second[0].reason
    assert second[0].text in bank("fallback_answer")


# --- the real model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    with LlamaServer(smollm2_gguf(), n_ctx=2048, alias="smol") as srv:
        yield srv


_WORD = re.compile(r"[a-z0-9']+")
_SELF = re.compile(r"\b(?:an ai|language model|assistant|instructions?|prompt|in character)\b")
_STOP = frozenset(
    re.findall(r"\w+", "a an the and or but so to of in on at for with is are it i you your my")
)


def _five_grams(text: str) -> set[tuple[str, ...]]:
    ws = _WORD.findall(text.lower().replace("’", "'"))
    return {
        tuple(ws[i : i + 5])
        for i in range(len(ws) - 4)
        if sum(w not in _STOP for w in ws[i : i + 5]) >= 2
    }


@pytest.mark.server
@pytest.mark.slow
def test_what_the_real_model_says_through_the_mind_passes_the_rules(smollm2):
    """Greetings, lull comments and answers from SmolLM2 on couchmate's real prompts:
    whatever reaches the voice echoes no instruction, says nothing about being a model,
    repeats no earlier sentence and keeps to its length; every moment still says
    something (the reflex line when the model's was stopped)."""
    questions = ["any tips for this level?", "who are you?", "what's my health?"]

    async def session(backend: ChatBackend) -> tuple[Mind, list[tuple[str, list[Line]]]]:
        persona = load_persona("sunny")
        user = Identity("u", "Alex")
        mind = Mind(persona, backends={"fast": backend}, user=user, talkativeness=3)
        said: list[tuple[str, list[Line]]] = []
        mind.greet()
        await asyncio.gather(*mind._tasks)
        said.append(("greeting", drain(mind)))
        t = time.monotonic()
        mind.on_update(state(t, health=64, ammo=31), [event("kill", t, 0.7)])
        mind.on_update(state(t, health=64, ammo=31), [event("idle", t, 0.1)])
        drain(mind)
        await asyncio.sleep(2.2)  # past the cooldown after the kill: a comment is due
        mind.on_update(state(time.monotonic(), health=64, ammo=31), [])
        await asyncio.gather(*mind._tasks)
        said.append(("lull", drain(mind)))
        for q in questions:
            said.append(("player_message", [ln async for ln in mind.on_player_message(q)]))
            drain(mind)
        return mind, said

    async def main():
        role = ModelRole(base_url=smollm2.base_url, model="smol", max_tokens=80, timeout_s=60)
        backend = ChatBackend("fast", role, health=HealthOptions(prior_ttft_s=0.3))
        # Load the model and cache the system prompt's prefix before the clock matters.
        await backend.complete(Prompt(system=load_persona("sunny").style, user="Hi!"), max_tokens=4)
        runs = [await session(backend) for _ in range(2)]
        await backend.aclose()
        return runs

    runs = asyncio.run(main())
    fired: dict[str, int] = {}
    replies = 0
    for mind, said in runs:
        g = mind.stats()["guard"]
        replies += g["replies"]
        for k, v in (g["dropped"] | g["trimmed"]).items():
            fired[k] = fired.get(k, 0) + v
        # Our instructions: the system message and the task of each kind of moment.
        tasks = [task_for(Moment(k, 0.0)) for k in ("greeting", "lull", "player_message")]
        instructions = _five_grams("\n".join([mind.prompts.system, *tasks]))
        seen: set[tuple[str, ...]] = set()
        for kind, lines in said:
            assert lines, f"the {kind} said nothing"
            for line in lines:
                text = line.text
                assert "\n" not in text and not re.search(r"[<>{}\[\]()*#]", text), text
                assert not _five_grams(text) & instructions, text
                assert not _SELF.search(text.lower()), text
                for sentence in re.split(r"(?<=[.!?])\s+", text):
                    key = tuple(_WORD.findall(sentence.lower()))
                    if len(key) >= 3:
                        assert key not in seen, (kind, text)
                        seen.add(key)
            model_words = sum(len(_WORD.findall(ln.text)) for ln in lines if ln.path != "reflex")
            assert model_words * 60 / 175 <= mind.guard.policy.max_seconds(kind), lines
    print(f"\nguard on SmolLM2: {replies} replies, fired {fired}")
    assert replies >= 6  # the model really answered: the checks above are not vacuous
