"""The start-up probe over real sockets: scripted HTTP servers, a closed port and a socket
that never answers, each probed by the real ChatBackend and openai client.

The real llama.cpp cases (SmolLM2 refusing images, a server dying mid-session) are in
test_probe_llama.py.
"""

from __future__ import annotations

import asyncio
import base64
import time

import cv2
import numpy as np
import pytest

from couchmate.config import ModelRole, ModelSettings
from couchmate.errors import ModelError
from couchmate.mind.backends import backend_map, backend_views
from couchmate.models.backends import Backends
from couchmate.models.local_server import free_port
from couchmate.models.probe import ProbeState, model_listed
from couchmate.models.prompt import Prompt
from couchmate.models.scripted_server import Answer, ScriptedServer, Stall, Status, TextOnly
from tests.models.support import make_backend, silent_port

SLACK = 0.5  # scheduling noise on a busy 2-core machine
FRAMES = [np.full((90, 160, 3), 60 * i, np.uint8) for i in range(3)]


def _backends(base_url: str, **role: object) -> Backends:
    """What `play` builds from settings; max_images is left at its default unless given."""
    settings = {"model": "scripted", "timeout_s": 5.0, "max_tokens": 8, **role}
    return Backends.from_settings(ModelSettings(fast=ModelRole(base_url=base_url, **settings)))


async def _say(backend, prompt: Prompt) -> str:
    async with backend.stream(prompt, budget_s=3.0) as reply:
        async for _ in reply:
            pass
    return reply.text


def test_a_text_only_server_gets_images_turned_off_and_then_answers():
    async def main():
        async with ScriptedServer(default=TextOnly(Answer("nice one"))) as srv:
            # The user's steps: default settings (max_images = 4), a text-only model. Every
            # request with keyframes fails, and nothing says why.
            async with _backends(srv.base_url) as plain:
                assert plain.fast.role.max_images == 4
                with pytest.raises(ModelError):
                    await _say(plain.fast, Prompt(user="look", images=FRAMES))

            async with _backends(srv.base_url) as backends:
                assert backends.status_lines() == ["fast scripted: not checked yet · ≤4 images"]
                [result] = await backends.probe(budget_s=2.0)
                fast = backends.fast
                assert result.state is ProbeState.OK and result.usable
                assert result.images is False and result.images_off
                assert fast.role.max_images == 0  # for this session only
                view = backend_views(backend_map(backends))["fast"]
                assert not view.vision and view.image_tokens == 0  # the router plans text
                assert "images off" in result.line and "concatenate str" in result.line
                assert "max_images = 0" in result.hint
                assert result.ttft_s is not None and result.elapsed_s < 2.0
                assert backends.status_lines() == [
                    f"fast scripted: ok · ttft {result.ttft_s:.1f} s · text only"
                ]
                # The same moment, keyframes and all, now gets a reply.
                assert await _say(fast, Prompt(user="look", images=FRAMES)) == "nice one"
                last = srv.chat_requests()[-1].body["messages"][-1]
                assert isinstance(last["content"], str)

    asyncio.run(main())


def test_a_vision_server_keeps_its_images():
    async def main():
        async with ScriptedServer() as srv, _backends(srv.base_url, max_images=2) as backends:
            [result] = await backends.probe(budget_s=2.0)
            assert result.state is ProbeState.OK and result.images is True
            assert not result.images_off and backends.fast.role.max_images == 2
            assert "images accepted" in result.line
            paths = [(r.method, r.path) for r in srv.requests]
            assert paths[0] == ("GET", "/v1/models")
            image_req, text_req = (r.body for r in srv.chat_requests())
            parts = image_req["messages"][-1]["content"]
            assert [p["type"] for p in parts] == ["text", "image_url"]
            url = parts[1]["image_url"]["url"]
            assert url.startswith("data:image/jpeg;base64,")
            image = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",")[1]), np.uint8), 1)
            assert min(image.shape[:2]) >= 28  # Qwen2-VL refuses smaller images
            assert image_req["max_tokens"] == 1 and not image_req.get("stream")
            assert isinstance(text_req["messages"][-1]["content"], str)

    asyncio.run(main())


def test_a_text_only_role_is_not_asked_about_images():
    async def main():
        async with ScriptedServer() as srv, _backends(srv.base_url, max_images=0) as backends:
            [result] = await backends.probe(budget_s=2.0)
            assert result.state is ProbeState.OK and result.images is None
            assert len(srv.chat_requests()) == 1

    asyncio.run(main())


def test_a_closed_port_is_down_with_connection_refused():
    async def main():
        url = f"http://127.0.0.1:{free_port()}/v1"
        async with _backends(url) as backends:
            t0 = time.monotonic()
            [result] = await backends.probe(budget_s=2.0)
            assert time.monotonic() - t0 < 1.0  # refused at once: no waiting out the budget
            assert result.state is ProbeState.DOWN and not result.usable
            assert result.detail == "connection refused"
            assert result.line == f"fast (scripted at {url}): down (connection refused)"
            assert url in result.hint
            assert backends.fast.role.max_images == 4  # nothing learnt about images
            assert backends.status_lines() == ["fast scripted: down (connection refused)"]
            # The probe was the warning: the session's first failed call adds none.
            events = []
            backends.subscribe(events.append)
            with pytest.raises(ModelError):
                await _say(backends.fast, Prompt(user="hi"))
            assert events == []

    asyncio.run(main())


def test_a_socket_that_never_answers_is_down_within_the_budget():
    async def main():
        with silent_port() as port:
            async with _backends(f"http://127.0.0.1:{port}/v1") as backends:
                t0 = time.monotonic()
                [result] = await backends.probe(budget_s=1.0)
                elapsed = time.monotonic() - t0
                assert 1.0 <= elapsed < 1.0 + SLACK, elapsed
                assert result.state is ProbeState.DOWN
                assert result.detail == "no answer in 1.0 s"
                assert "took the connection but sent nothing back" in result.hint
                assert backends.status_lines() == ["fast scripted: down (no answer in 1.0 s)"]

    asyncio.run(main())


def test_both_backends_are_probed_at_once_within_one_budget():
    async def main():
        with silent_port() as port:
            settings = ModelSettings(
                fast=ModelRole(base_url=f"http://127.0.0.1:{port}/v1", model="a"),
                smart=ModelRole(base_url=f"http://127.0.0.1:{free_port()}/v1", model="b"),
            )
            async with Backends.from_settings(settings) as backends:
                t0 = time.monotonic()
                fast, smart = await backends.probe(budget_s=1.0)
                assert time.monotonic() - t0 < 1.0 + SLACK
                assert (fast.name, fast.detail) == ("fast", "no answer in 1.0 s")
                assert (smart.name, smart.detail) == ("smart", "connection refused")
                assert backends.status_lines() == [
                    "fast a: down (no answer in 1.0 s)",
                    "smart b: down (connection refused)",
                ]

    asyncio.run(main())


def test_an_unknown_model_names_the_models_the_server_has():
    async def main():
        # vLLM and Ollama answer a chat request for a model they lack with 404.
        srv = ScriptedServer(default=Status(404, "model not found"), model_ids=("qwen", "llama"))
        async with srv, _backends(srv.base_url, model="qwen-typo") as backends:
            [result] = await backends.probe(budget_s=2.0)
            assert result.state is ProbeState.NO_MODEL and not result.usable
            assert result.line == (
                f"fast: the server at {srv.base_url} has no model 'qwen-typo' (it has: qwen, llama)"
            )
            assert result.hint == "set models.fast.model to one of: qwen, llama"
            assert result.server_models == ("qwen", "llama")
            assert backends.status_lines() == ["fast qwen-typo: no such model on the server"]

    asyncio.run(main())


def test_an_unlisted_model_that_answers_is_usable_but_named():
    async def main():
        srv = ScriptedServer(model_ids=("tiny",))
        async with srv, _backends(srv.base_url, model="other", max_images=0) as backends:
            [result] = await backends.probe(budget_s=2.0)
            assert result.state is ProbeState.OK and result.unlisted
            assert "does not list 'other' (it has: tiny) but answered" in result.line
            assert "models.fast.model" in result.hint

    asyncio.run(main())


def test_an_unlisted_model_that_does_not_answer_yet_is_slow_not_missing():
    async def main():
        srv = ScriptedServer(default=Stall(), model_ids=("tiny",))
        async with srv, _backends(srv.base_url, model="other", max_images=0) as backends:
            [result] = await backends.probe(budget_s=0.8)
            assert result.state is ProbeState.SLOW and result.unlisted
            assert result.line.endswith("the server does not list 'other' (it has: tiny)")

    asyncio.run(main())


def test_a_server_without_a_model_list_is_judged_by_its_replies():
    async def main():
        srv = ScriptedServer(model_ids=None)
        async with srv, _backends(srv.base_url) as backends:
            [result] = await backends.probe(budget_s=2.0)
            assert result.state is ProbeState.OK and result.server_models is None
            assert result.images is True and not result.unlisted

    asyncio.run(main())


def test_a_server_slow_to_reply_is_slow_not_down_and_keeps_images():
    async def main():
        async with ScriptedServer(default=Stall()) as srv, _backends(srv.base_url) as backends:
            t0 = time.monotonic()
            [result] = await backends.probe(budget_s=0.8)
            assert time.monotonic() - t0 < 0.8 + SLACK
            assert result.state is ProbeState.SLOW and result.usable
            assert result.images is None and backends.fast.role.max_images == 4
            assert "no reply in 0.8 s" in result.line
            [line] = backends.status_lines()
            assert line == "fast scripted: slow (no reply in 0.8 s) · ≤4 images"
            assert not backends.fast.watch.failing

    asyncio.run(main())


def test_a_server_failing_text_chat_too_is_failing_and_images_are_left_alone():
    async def main():
        srv = ScriptedServer(default=Status(401, "invalid api key"))
        async with srv, _backends(srv.base_url) as backends:
            [result] = await backends.probe(budget_s=2.0)
            assert result.state is ProbeState.FAILING and not result.usable
            assert "HTTP 401" in result.line and "invalid api key" in result.line
            assert "API key" in result.hint
            assert not result.images_off and backends.fast.role.max_images == 4

    asyncio.run(main())


def test_model_names_match_across_server_spellings():
    assert model_listed("gemini-2.5-flash", ("models/gemini-2.5-flash",))
    assert model_listed("qwen2.5vl", ("qwen2.5vl:latest",))
    assert model_listed("Qwen/Qwen2.5-VL-7B-Instruct", ("qwen/qwen2.5-vl-7b-instruct",))
    assert not model_listed("qwen2.5vl:7b", ("qwen2.5vl:3b",))


def test_a_probe_of_a_backend_whose_client_breaks_still_returns():
    async def main():
        backend = make_backend("http://127.0.0.1:9/v1")
        await backend.client.close()  # a closed client raises on every request
        from couchmate.models.probe import probe

        result = await probe(backend, budget_s=1.0)
        assert not result.usable and result.line
        await backend.aclose()

    asyncio.run(main())


def test_unprobed_a_refused_image_request_warns_once_naming_max_images():
    # If the probe never ran (or ran out of time), the session's one warning still says
    # what to change.
    async def main():
        async with ScriptedServer(default=TextOnly()) as srv, _backends(srv.base_url) as backends:
            events = []
            backends.subscribe(events.append)
            for _ in range(2):  # (the breaker opens at the third failure)
                with pytest.raises(ModelError) as info:
                    await _say(backends.fast, Prompt(user="look", images=FRAMES))
                assert "set models.fast.max_images = 0" in info.value.hint
            with pytest.raises(ModelError) as info:
                await backends.fast.complete(Prompt(user="look", images=FRAMES), budget_s=2.0)
            assert "max_images = 0" in info.value.hint
            [warning] = events
            assert "HTTP 500" in warning.message and "max_images = 0" in warning.hint
        # A text request that fails says nothing about images.
        async with ScriptedServer(default=Status(500)) as srv, _backends(srv.base_url) as b:
            with pytest.raises(ModelError) as info:
                await _say(b.fast, Prompt(user="hi"))
            assert "max_images" not in (info.value.hint or "")

    asyncio.run(main())
