"""ChatBackend against a real llama.cpp server process (tiny random-weight GGUF)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from couchmate.errors import BudgetExceeded, ModelError
from couchmate.models.embeddings import EmbeddingBackend
from couchmate.models.prompt import Prompt
from couchmate.models.retry import NO_RETRY
from tests.models.support import make_backend

pytestmark = pytest.mark.server

MARKS = ["call", "prepared", "request_sent", "response_start", "first_token", "done"]


def test_streamed_reply_has_deltas_and_ordered_timing(llama_server):
    async def main():
        backend = make_backend(llama_server.base_url, max_tokens=12)
        async with backend.stream(
            Prompt(system="You are Sunny.", user="nice shot!"), budget_s=10.0
        ) as reply:
            deltas = [d async for d in reply]
        assert len(deltas) >= 2 and all(deltas)
        assert "".join(deltas) == reply.text
        # The random model (almost) never emits its end token, so max_tokens stops it.
        assert reply.finish_reason == "length" and len(deltas) <= 12
        times = [reply.timing.get(m) for m in MARKS]
        assert None not in times and times == sorted(times), reply.timing.marks
        assert 0 < reply.ttft_s < 10.0
        snap = backend.health.snapshot()
        assert snap.calls == 1 and snap.ttft_ewma_s == pytest.approx(reply.ttft_s)
        await backend.aclose()

    asyncio.run(main())


def test_whole_reply_honours_max_tokens(llama_server):
    async def main():
        backend = make_backend(llama_server.base_url)
        for n in (3, 9):
            c = await backend.complete(Prompt(user="tell me about the boss"), max_tokens=n)
            assert c.completion_tokens == n and c.finish_reason == "length"
            assert c.text and c.attempts == 1
        streamed = await backend.stream(Prompt(user="and now?"), max_tokens=5).collect()
        assert streamed.finish_reason == "length" and streamed.text and streamed.ttft_s > 0
        await backend.aclose()

    asyncio.run(main())


def test_images_are_accepted_by_a_text_only_llama_server(llama_server):
    # The tiny GGUF's template is exactly ChatML, which llama-cpp-python formats with its own
    # code: it keeps the text parts and drops the image parts, and the request succeeds. A
    # model with its own Jinja template (SmolLM2) fails such a request with HTTP 500; the
    # start-up probe turns images off for it (test_probe_llama).
    async def main():
        backend = make_backend(llama_server.base_url, max_images=4)
        frames = [np.full((720, 1280, 3), 40 * i, np.uint8) for i in range(6)]
        c = await backend.complete(Prompt(user="what do you see?", images=frames), max_tokens=4)
        assert c.images == 4 and c.completion_tokens == 4
        assert c.prompt_tokens is not None and c.prompt_tokens < 100  # images were not text
        await backend.aclose()

    asyncio.run(main())


def test_budget_smaller_than_prompt_time_fails_fast_and_server_recovers(llama_server):
    async def main():
        backend = make_backend(llama_server.base_url)
        # ~420 prompt tokens; the server caches the previous prompt's prefix, so the two
        # contexts differ from their first word.
        calibrate = Prompt(context=" ".join(["boss door left"] * 130), user="hi")
        measured = Prompt(context=" ".join(["ammo key right"] * 130), user="hi")
        c = await backend.complete(calibrate, max_tokens=1, budget_s=20.0)
        budget = c.duration_s / 3  # well under what reading such a prompt takes
        t0 = time.monotonic()
        with pytest.raises(BudgetExceeded):
            async with backend.stream(measured, budget_s=budget) as reply:
                async for _ in reply:
                    pass
        assert time.monotonic() - t0 < budget + 0.25
        # The abandoned request does not wedge the server: the next call answers.
        c = await backend.complete(Prompt(user="still there?"), max_tokens=3, budget_s=20.0)
        assert c.completion_tokens == 3
        await backend.aclose()

    asyncio.run(main())


def test_prompt_over_the_context_is_a_final_error(llama_server):
    async def main():
        backend = make_backend(llama_server.base_url)
        too_long = Prompt(user=" ".join(["the boss"] * 400))  # 800 tokens > n_ctx 512
        with pytest.raises(ModelError) as info:
            await backend.complete(too_long, budget_s=10.0)
        assert info.value.status == 400 and not info.value.retryable
        assert "context" in info.value.message
        # Streamed, llama-cpp-python answers 200 and then closes the stream with no event.
        with pytest.raises(ModelError) as info:
            async with backend.stream(too_long, budget_s=10.0) as reply:
                async for _ in reply:
                    pass
        assert not info.value.retryable and "context" in info.value.hint
        await backend.aclose()

    asyncio.run(main())


def test_models_lists_the_served_model(llama_server):
    async def main():
        backend = make_backend(llama_server.base_url)
        assert await backend.models() == ["tiny"]
        await backend.aclose()

    asyncio.run(main())


def test_embeddings_from_a_real_server(llama_embed_server, llama_server):
    async def main():
        emb = EmbeddingBackend(llama_embed_server.base_url, "tiny-embed")
        v = await emb.embed(["hello there", "boss fight", "hello there"])
        assert v.shape == (3, 64) and v.dtype == np.float32
        np.testing.assert_allclose(v[0], v[2], atol=1e-5)  # batch position: float noise
        assert not np.allclose(v[0], v[1])
        await emb.aclose()

        # The chat server was not started for embeddings: it answers 500, and we say so.
        chat_only = EmbeddingBackend(llama_server.base_url, "tiny", retry=NO_RETRY)
        with pytest.raises(ModelError) as info:
            await chat_only.embed(["hi"])
        assert info.value.status == 500 and "embedding=True" in info.value.message
        await chat_only.aclose()

    asyncio.run(main())
