"""Fault cases over real sockets: each ends in a ModelError inside the budget, never a crash.

The servers here are real HTTP servers on 127.0.0.1 (couchmate.models.scripted_server) that
misbehave on cue; the client under test is the real ChatBackend with the real openai client.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from couchmate.errors import BackendUnavailable, BudgetExceeded, ModelError, StreamCut
from couchmate.models.embeddings import EmbeddingBackend
from couchmate.models.health import BreakerState, HealthOptions
from couchmate.models.local_server import free_port
from couchmate.models.prompt import Prompt
from couchmate.models.retry import RetryPolicy
from couchmate.models.scripted_server import (
    Answer,
    CutStream,
    Garbage,
    Hangup,
    Reply,
    ScriptedServer,
    Stall,
    Status,
)
from tests.models.support import make_backend

BUDGET = 0.6
SLACK = 0.25  # event-loop and scheduling noise on a busy 2-core machine
PROMPT = Prompt(system="be brief", user="hey")


async def _stream_all(backend, budget=BUDGET, prompt=PROMPT) -> str:
    async with backend.stream(prompt, budget_s=budget) as reply:
        async for _ in reply:
            pass
    return reply.text


@pytest.mark.parametrize(
    ("reply", "retryable", "partial", "requests"),
    [
        # A stall uses up the whole budget: nothing left to retry with.
        pytest.param(Stall(), True, None, 1, id="timeout"),
        # Retryable faults before the first token: the policy's 3 attempts fit the budget.
        pytest.param(Status(500), True, None, 3, id="http-500"),
        pytest.param(Hangup(), True, None, 3, id="hangup-before-reply"),
        pytest.param(CutStream(words=0), True, None, 3, id="cut-before-text"),
        # Text already delivered cannot be retried away; the error keeps it.
        pytest.param(CutStream(words=2), True, " word0 word1", 1, id="cut-mid-chunked-body"),
        pytest.param(CutStream(2, chunked=False), True, " word0 word1", 1, id="cut-no-finish"),
        # Garbage is final: the same server would send the same garbage again.
        pytest.param(Garbage(), False, None, 1, id="garbage-sse"),
        pytest.param(Garbage(after_words=2), False, " word0 word1", 1, id="garbage-after-text"),
        pytest.param(Garbage(body="<html>proxy error</html>"), False, None, 1, id="html-not-sse"),
    ],
)
def test_stream_fault_ends_in_model_error_within_budget(reply: Reply, retryable, partial, requests):
    async def main():
        # Every request gets the same fault, so retries (if any) see it too.
        async with ScriptedServer(default=reply) as srv:
            backend = make_backend(srv.base_url)
            t0 = time.monotonic()
            with pytest.raises(ModelError) as info:
                await _stream_all(backend)
            elapsed = time.monotonic() - t0
            err = info.value
            assert elapsed < BUDGET + SLACK, f"{err!r} took {elapsed:.3f}s"
            assert err.retryable is retryable, err.message
            assert err.hint, "every failure carries a hint for the user"
            if partial is None:
                assert not isinstance(err, StreamCut)
            else:
                assert isinstance(err, StreamCut) and err.partial == partial
            assert len(srv.chat_requests()) == requests
            # Our own deadline cutting a stall is no failure; every other fault is one.
            failures = 0 if isinstance(err, BudgetExceeded) else 1
            assert backend.health.snapshot().consecutive_failures == failures
            await backend.aclose()

    asyncio.run(main())


def test_stall_is_a_budget_miss_that_raises_expected_ttft():
    async def main():
        async with ScriptedServer(default=Stall()) as srv:
            backend = make_backend(srv.base_url)
            with pytest.raises(BudgetExceeded) as info:
                await _stream_all(backend, budget=0.3)
            assert info.value.budget_s == 0.3
            assert backend.health.expected_ttft_s() >= 0.3
            await backend.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
def test_connection_refused_names_the_server(streamed):
    async def main():
        url = f"http://127.0.0.1:{free_port()}/v1"
        backend = make_backend(url)
        t0 = time.monotonic()
        with pytest.raises(ModelError) as info:
            if streamed:
                await _stream_all(backend)
            else:
                await backend.complete(PROMPT, budget_s=BUDGET)
        assert time.monotonic() - t0 < BUDGET + SLACK
        assert info.value.retryable and info.value.status is None
        assert info.value.hint == f"is the model server running at {url}? (connection refused)"
        await backend.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("reply", "retryable", "status"),
    [
        pytest.param(Status(500), True, 500, id="http-500"),
        pytest.param(Status(404, "model 'x' not found"), False, 404, id="http-404"),
        pytest.param(Garbage('{"choices": [{"message": oops'), False, None, id="bad-json"),
        pytest.param(Garbage('{"id": "x", "object": "list"}'), False, None, id="wrong-shape"),
        pytest.param(Stall(), True, None, id="timeout"),
    ],
)
def test_whole_reply_faults(reply: Reply, retryable, status):
    async def main():
        async with ScriptedServer(default=reply) as srv:
            backend = make_backend(srv.base_url)
            t0 = time.monotonic()
            with pytest.raises(ModelError) as info:
                await backend.complete(PROMPT, budget_s=BUDGET)
            assert time.monotonic() - t0 < BUDGET + SLACK
            assert info.value.retryable is retryable and info.value.status == status
            if status == 404:
                assert "'tiny'" in info.value.hint  # names the model to check
            await backend.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(("code", "key_env"), [(401, "GEMINI_API_KEY"), (403, "")])
def test_a_refused_key_is_a_final_error_naming_the_variable(code, key_env, monkeypatch):
    # The hint template's "${env}" once reached str.format as a field: every 401/403 raised
    # KeyError from inside the error mapper instead of a ModelError.
    async def main():
        async with ScriptedServer(default=Status(code, "invalid api key")) as srv:
            backend = make_backend(srv.base_url, api_key_env=key_env)
            with pytest.raises(ModelError) as info:
                await backend.complete(PROMPT, budget_s=BUDGET)
            assert info.value.status == code and not info.value.retryable
            assert (f"${key_env}" if key_env else "the api_key_env setting") in info.value.hint
            assert len(srv.chat_requests()) == 1
            await backend.aclose()

    if key_env:
        monkeypatch.setenv(key_env, "k")
    asyncio.run(main())


def test_retryable_error_then_success_within_budget():
    async def main():
        async with ScriptedServer([Status(503), Hangup()], default=Answer("all good")) as srv:
            backend = make_backend(srv.base_url)
            async with backend.stream(PROMPT, budget_s=BUDGET) as reply:
                text = "".join([d async for d in reply])
            assert text == "all good" and reply.attempts == 3
            assert [r.reply for r in srv.chat_requests()] == ["Status", "Hangup", "Answer"]
            assert backend.health.snapshot().consecutive_failures == 0

            srv.push(Status(429))
            c = await backend.complete(PROMPT, budget_s=BUDGET)
            assert c.text == "all good" and c.attempts == 2
            await backend.aclose()

    asyncio.run(main())


def test_final_errors_are_not_retried_and_retries_stop_at_the_policy():
    async def main():
        async with ScriptedServer([Status(400, "bad image")], default=Status(503)) as srv:
            backend = make_backend(srv.base_url, retry=RetryPolicy(max_attempts=3))
            with pytest.raises(ModelError) as info:
                await _stream_all(backend)
            assert info.value.status == 400 and not info.value.retryable
            assert len(srv.chat_requests()) == 1

            with pytest.raises(ModelError) as info:
                await _stream_all(backend)
            assert info.value.status == 503 and info.value.retryable
            assert len(srv.chat_requests()) == 1 + 3
            await backend.aclose()

    asyncio.run(main())


def test_retry_backoff_never_overruns_the_budget():
    async def main():
        async with ScriptedServer(default=Status(503)) as srv:
            slow_backoff = RetryPolicy(max_attempts=10, backoff_s=0.2, max_backoff_s=0.2)
            backend = make_backend(srv.base_url, retry=slow_backoff)
            t0 = time.monotonic()
            with pytest.raises(ModelError):
                await _stream_all(backend, budget=0.5)
            assert time.monotonic() - t0 < 0.5  # gave up instead of sleeping past the budget
            assert 2 <= len(srv.chat_requests()) <= 3
            await backend.aclose()

    asyncio.run(main())


def test_breaker_opens_fails_fast_then_half_open_probe_decides():
    async def main():
        health = HealthOptions(failure_threshold=3, cooldown_s=0.3)
        async with ScriptedServer(default=Status(500)) as srv:
            backend = make_backend(srv.base_url, retry=RetryPolicy(max_attempts=1), health=health)
            for _ in range(3):
                with pytest.raises(ModelError):
                    await _stream_all(backend)
            assert backend.health.state is BreakerState.OPEN
            assert not backend.health.available()

            before = len(srv.requests)
            t0 = time.monotonic()
            with pytest.raises(BackendUnavailable) as info:
                await _stream_all(backend)
            assert time.monotonic() - t0 < 0.05 and len(srv.requests) == before  # no network
            assert not info.value.retryable and srv.base_url in info.value.hint

            await asyncio.sleep(0.3)
            assert backend.health.available()
            with pytest.raises(ModelError):  # the probe fails: open again
                await _stream_all(backend)
            assert len(srv.requests) == before + 1
            assert backend.health.state is BreakerState.OPEN

            await asyncio.sleep(0.3)
            srv.default = Answer("back again")
            assert await _stream_all(backend) == "back again"  # the probe succeeds: closed
            snap = backend.health.snapshot()
            assert snap.state is BreakerState.CLOSED and snap.consecutive_failures == 0
            assert snap.error_rate == pytest.approx(4 / 5)
            await backend.aclose()

    asyncio.run(main())


def test_leaving_the_stream_early_closes_the_http_stream():
    async def main():
        words = " ".join(f"w{i}" for i in range(100))
        async with ScriptedServer(default=Answer(words, token_interval_s=0.05)) as srv:
            backend = make_backend(srv.base_url, max_tokens=100)
            got: list[str] = []
            async with backend.stream(PROMPT, budget_s=BUDGET) as reply:
                async for delta in reply:
                    got.append(delta)
                    if len(got) == 3:
                        break  # pre-empted: a newer line wins
            left_at = time.monotonic()
            assert got == ["w0", " w1", " w2"] and reply.text == "w0 w1 w2"
            await asyncio.sleep(0.1)
            closed = srv.chat_requests()[0].client_closed_at
            assert closed is not None and closed - left_at < 0.1
            # A healthy call that the consumer stopped is not a backend failure.
            assert backend.health.snapshot().consecutive_failures == 0
            assert "done" in reply.timing.marks
            await backend.aclose()

    asyncio.run(main())


def test_cancelling_the_consumer_task_closes_the_http_stream():
    async def main():
        words = " ".join(f"w{i}" for i in range(100))
        async with ScriptedServer(default=Answer(words, token_interval_s=0.05)) as srv:
            backend = make_backend(srv.base_url, max_tokens=100)
            first = asyncio.Event()

            async def speak():
                async for _ in backend.stream(PROMPT, budget_s=BUDGET):
                    first.set()

            task = asyncio.create_task(speak())
            await asyncio.wait_for(first.wait(), 1.0)
            task.cancel()
            cancelled_at = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.1)
            closed = srv.chat_requests()[0].client_closed_at
            assert closed is not None and closed - cancelled_at < 0.1
            await backend.aclose()

    asyncio.run(main())


def test_request_carries_options_and_at_most_max_images_as_jpeg_parts():
    async def main():
        frames = [np.full((720, 1280, 3), i * 10, np.uint8) for i in range(7)]
        async with ScriptedServer() as srv:
            backend = make_backend(srv.base_url, max_images=3)
            c = await backend.complete(
                Prompt(user="look", images=frames), budget_s=2.0, temperature=0.2, stop=["\n"]
            )
            assert c.images == 3
            body = srv.chat_requests()[0].body
            assert body["model"] == "tiny" and body["max_tokens"] == 16
            assert body["temperature"] == 0.2 and body["stop"] == ["\n"]
            parts = body["messages"][-1]["content"]
            urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
            assert len(urls) == 3 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
            await backend.aclose()

    asyncio.run(main())


def test_session_goes_on_after_every_kind_of_fault():
    """One backend meets each fault in turn and still answers afterwards."""

    async def main():
        faults = [Status(500), Hangup(), CutStream(1), Garbage(), Stall()]
        async with ScriptedServer(default=Answer("still here")) as srv:
            backend = make_backend(
                srv.base_url,
                retry=RetryPolicy(max_attempts=1),
                health=HealthOptions(failure_threshold=100),
            )
            for fault in faults:
                srv.push(fault)
                with pytest.raises(ModelError):
                    await _stream_all(backend, budget=0.3)
                assert await _stream_all(backend) == "still here"
            # Four failures and five answers: the stall was our own deadline, no outcome.
            assert backend.health.snapshot().error_rate == pytest.approx(4 / 9)
            await backend.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("body", "hint_part"),
    [
        # llama.cpp without pooling: one vector per token (the shape its server really sends).
        ('{"data": [{"index": 0, "embedding": [[0.1, 0.2], [0.3, 0.4]]}]}', "pooling"),
        ('{"data": []}', "OpenAI-compatible"),
        ('{"data": [{"index": 0, "embedding": "AAAA"}]}', "OpenAI-compatible"),
    ],
    ids=["per-token", "missing", "not-numbers"],
)
def test_embedding_garbage_is_a_final_model_error(body, hint_part):
    async def main():
        async with ScriptedServer(default=Garbage(body)) as srv:
            emb = EmbeddingBackend(srv.base_url, "e")
            with pytest.raises(ModelError) as info:
                await emb.embed(["hi"], budget_s=BUDGET)
            assert not info.value.retryable and hint_part in info.value.hint
            assert len(srv.requests) == 1
            await emb.aclose()

    asyncio.run(main())
