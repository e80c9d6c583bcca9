"""The start-up probe and the one-warning rule against real llama.cpp server processes.

What llama-cpp-python 0.3 really does with an image part for a model without an mmproj
depends on the chat template: SmolLM2's own Jinja template concatenates
`message['content']`, so a content-part list fails with HTTP 500 "can only concatenate str
(not "list") to str" (and, streamed, a 200 with an empty stream); the tiny test GGUF's
template is exactly ChatML, which llama-cpp-python formats with its own code that keeps the
text parts, so there the request succeeds and the images are silently dropped.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from couchmate.config import ModelRole, ModelSettings
from couchmate.errors import ModelError
from couchmate.models.backends import Backends
from couchmate.models.health import HealthOptions
from couchmate.models.local_server import LlamaServer
from couchmate.models.probe import ProbeState
from couchmate.models.prompt import Prompt
from couchmate.models.watch import BackendEventKind

pytestmark = pytest.mark.server

FRAMES = [np.full((180, 320, 3), 50 * i, np.uint8) for i in range(4)]
MOMENT = Prompt(system="You are Sunny, a cheerful gaming buddy.", user="Nice shot!", images=FRAMES)


def _backends(base_url: str, model: str, **kw: object) -> Backends:
    # As `play` builds them from a settings file that names only the server and the model:
    # max_images stays at its default, 4.
    role = ModelRole(base_url=base_url, model=model, max_tokens=8, timeout_s=30.0)
    return Backends.from_settings(ModelSettings(fast=role), **kw)  # type: ignore[arg-type]


async def _say(backend, prompt: Prompt = MOMENT, budget_s: float = 30.0) -> str:
    async with backend.stream(prompt, budget_s=budget_s) as reply:
        async for _ in reply:
            pass
    return reply.text


def test_smollm2_without_mmproj_gets_images_off_at_start_and_then_talks(smollm2_server):
    async def main():
        url = smollm2_server.base_url
        # The user's failure: with the default max_images every moment with keyframes fails.
        async with _backends(url, "smollm2") as before:
            assert before.fast.role.max_images == 4
            for _ in range(2):
                with pytest.raises(ModelError) as info:
                    await _say(before.fast)
                assert "without any text" in info.value.message
                assert "set models.fast.max_images = 0" in info.value.hint  # what to do

        async with _backends(url, "smollm2") as backends:
            [result] = await backends.probe()  # the default ≈ 3 s budget
            assert result.elapsed_s < 3.5
            # A busy CPU may not give the one-token text reply within the probe's time (then
            # SLOW); the image refusal comes at once either way.
            assert result.state in (ProbeState.OK, ProbeState.SLOW), result.line
            assert result.images is False and result.images_off, result.line
            assert "HTTP 500" in result.image_error and "concatenate str" in result.image_error
            assert backends.fast.role.max_images == 0
            assert "images off for this session" in result.line
            assert backends.status_lines()[0].endswith("text only")
            # The same moment, keyframes and all, now gets SmolLM2's words.
            text = await _say(backends.fast)
            assert text.strip()

    asyncio.run(main())


@pytest.mark.slow
def test_a_wrong_model_name_is_named_with_what_the_server_has(smollm2_server):
    async def main():
        async with _backends(smollm2_server.base_url, "qwen2.5vl:3b") as backends:
            [result] = await backends.probe(budget_s=6.0)
            # llama-cpp-python serves its one model whatever the request names, so the
            # backend works; the user is still told the name is not the server's.
            # (A busy CPU may not give its first reply within the probe: then it is SLOW.)
            assert result.state in (ProbeState.OK, ProbeState.SLOW), result.line
            assert result.unlisted and result.server_models == ("smollm2",)
            assert "does not list 'qwen2.5vl:3b' (it has: smollm2)" in result.line, result.line
            assert "models.fast.model" in result.hint

    asyncio.run(main())


def test_a_chatml_llama_server_takes_images_and_keeps_them(llama_server):
    async def main():
        async with _backends(llama_server.base_url, "tiny") as backends:
            [result] = await backends.probe(budget_s=6.0)
            assert result.state is ProbeState.OK and result.images is True, result.line
            assert backends.fast.role.max_images == 4

    asyncio.run(main())


@pytest.mark.slow
def test_a_server_that_dies_mid_session_warns_once_and_says_when_it_is_back(tiny_gguf):
    async def main():
        srv = LlamaServer(tiny_gguf, n_ctx=512, alias="tiny").start()
        try:
            health = HealthOptions(cooldown_s=0.2)
            async with _backends(srv.base_url, "tiny", health=health) as backends:
                events = []
                backends.subscribe(events.append)
                [result] = await backends.probe(budget_s=6.0)
                assert result.state is ProbeState.OK, result.line
                fast = backends.fast
                assert await _say(fast, Prompt(user="hi"))

                srv.stop()  # the server dies mid-session
                for _ in range(6):  # six moments go to the model and fall back
                    with pytest.raises(ModelError):
                        await _say(fast, Prompt(user="still there?"))
                    await asyncio.sleep(0.05)
                assert [e.kind for e in events] == [BackendEventKind.FAILING]
                warning = events[0]
                assert "could not be reached: connection refused" in warning.message
                assert f"is the model server running at {srv.base_url}?" in warning.hint
                assert backends.status_lines() == ["fast tiny: down (connection refused)"]

                srv.start()  # back on the same port
                text = ""
                for _ in range(20):  # the breaker lets a trial call through after cool-down
                    await asyncio.sleep(0.25)
                    try:
                        text = await _say(fast, Prompt(user="back?"))
                        break
                    except ModelError:
                        pass
                assert text
                assert [e.kind for e in events] == [
                    BackendEventKind.FAILING,
                    BackendEventKind.RECOVERED,
                ]
                assert backends.status_lines()[0].startswith("fast tiny: ok · ttft ")
        finally:
            srv.stop()

    asyncio.run(main())
