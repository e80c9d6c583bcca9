"""One OpenAI-compatible chat backend per model role (fast, smart).

    backend = ChatBackend("fast", settings.models.fast)
    async with backend.stream(prompt, budget_s=0.8) as reply:
        async for delta in reply:
            ...                    # speak as text arrives
    reply.text, reply.timing       # marks: call, prepared, request_sent, response_start,
                                   # first_token, done

`budget_s` bounds the time to the first token, retries included: a call that has no text by
then fails fast with a retryable ModelError and the caller falls back. Leaving the `async
with` (or cancelling the task) closes the HTTP stream at once, which is how a newer, more
urgent line pre-empts a stale one. The openai client's own retries are off; `RetryPolicy` is
the one place that decides. Every failure is a ModelError; the breaker in `health` decides
whether the next call goes out at all.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx2
import openai

from couchmate.config import ModelRole
from couchmate.errors import BudgetExceeded, ConfigError, ModelError, StreamCut
from couchmate.models.failures import invalid_response, map_error
from couchmate.models.health import BackendHealth, HealthOptions, Permit
from couchmate.models.prompt import PreparedRequest, Prompt, prepare
from couchmate.models.retry import RetryPolicy, call_with_retries
from couchmate.types import Timing, now

# Local servers ignore the key, but the openai client insists on one.
NO_KEY = "sk-no-key-needed"

# The call whose request is about to go out, for the httpx request hook.
_current_timing: contextvars.ContextVar[Timing | None] = contextvars.ContextVar(
    "couchmate_model_timing", default=None
)


async def _mark_request_sent(request: httpx2.Request) -> None:
    timing = _current_timing.get()
    if timing is not None:
        timing.mark("request_sent")


def resolve_api_key(role_name: str, api_key_env: str) -> str:
    if not api_key_env:
        return NO_KEY
    key = os.environ.get(api_key_env, "")
    if not key:
        raise ConfigError(
            f"models.{role_name}: the environment variable {api_key_env} is not set",
            hint=f"export {api_key_env}=... (the API key), or point the role at a local server",
        )
    return key


def make_openai_client(base_url: str, api_key: str, timeout_s: float) -> openai.AsyncOpenAI:
    http = openai.DefaultAsyncHttpxClient(
        timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        event_hooks={"request": [_mark_request_sent]},
    )
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, http_client=http, timeout=timeout_s
    )


@dataclass(slots=True)
class Completion:
    """A finished reply. Marks: call, prepared, request_sent, (first_token,) done."""

    text: str
    finish_reason: str | None
    timing: Timing
    attempts: int
    images: int = 0
    prepare_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def ttft_s(self) -> float | None:
        """Streamed replies only (a whole reply has no first-token mark)."""
        ms = self.timing.span_ms("call", "first_token")
        return None if ms is None else ms / 1000.0

    @property
    def duration_s(self) -> float | None:
        ms = self.timing.span_ms("call", "done")
        return None if ms is None else ms / 1000.0


@dataclass(slots=True)
class CallOptions:
    """Per-call knobs; None takes the role's setting."""

    budget_s: float | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: Sequence[str] = ()


class ChatBackend:
    """A model role's OpenAI-compatible endpoint, its retry policy and its health."""

    def __init__(
        self,
        name: str,
        role: ModelRole,
        *,
        retry: RetryPolicy | None = None,
        health: HealthOptions | None = None,
        executor: Executor | None = None,
    ):
        self.name = name
        self.role = role.resolved()
        if not self.role.enabled:
            raise ConfigError(
                f"models.{name} has no base_url or model",
                hint=f"set models.{name}.preset (e.g. ollama) or base_url and model",
            )
        self.retry = retry or RetryPolicy()
        self.health = BackendHealth(name, health, base_url=self.role.base_url)
        self.executor = executor
        self.client = make_openai_client(
            self.role.base_url,
            resolve_api_key(name, self.role.api_key_env),
            self.role.timeout_s,
        )

    @property
    def base_url(self) -> str:
        return self.role.base_url

    @property
    def model(self) -> str:
        return self.role.model

    def stream(
        self,
        prompt: Prompt,
        *,
        budget_s: float | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> ChatStream:
        """Start a streamed reply; the budget clock starts now. Use with `async with`."""
        return ChatStream(self, prompt, CallOptions(budget_s, max_tokens, temperature, stop))

    async def complete(
        self,
        prompt: Prompt,
        *,
        budget_s: float | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Completion:
        """A whole reply in one non-streamed response; `budget_s` bounds all of it."""
        opts = CallOptions(budget_s, max_tokens, temperature, stop)
        timing = Timing()
        start = timing.mark("call")
        budget = opts.budget_s or self.role.timeout_s
        permit = self.health.acquire()
        try:
            prepared = await prepare(
                prompt, max_images=self.role.max_images, executor=self.executor
            )
            timing.mark("prepared")
            attempts = 0

            async def attempt(n: int) -> Any:
                nonlocal attempts
                attempts = n
                token = _current_timing.set(timing)
                try:
                    return await self.client.chat.completions.create(
                        **self._request_args(prepared, opts), stream=False
                    )
                finally:
                    _current_timing.reset(token)

            resp = await call_with_retries(
                attempt,
                policy=self.retry,
                deadline=start + budget,
                on_timeout=lambda: self._timeout_error(budget, "reply"),
                map_exc=self._map,
            )
            timing.mark("done")
            text, finish, usage = self._parse_completion(resp)
        except ModelError as e:
            self.health.record_failure(permit, e)
            raise
        except BaseException:
            self.health.release(permit)
            raise
        # No TTFT sample: a whole reply's time is not a time to first token, and the router
        # plans with the streamed figure.
        self.health.record_success(permit)
        return Completion(
            text=text,
            finish_reason=finish,
            timing=timing,
            attempts=attempts,
            images=len(prepared.images),
            prepare_ms=prepared.prepare_ms,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
        )

    async def models(self, *, budget_s: float = 5.0) -> list[str]:
        """The model ids the server offers (GET /models): a cheap "is it up?" check that
        also warms the connection. Does not touch the breaker."""
        try:
            async with asyncio.timeout(budget_s):
                page = await self.client.models.list()
                return [m.id for m in page.data]
        except TimeoutError as e:
            raise self._timeout_error(budget_s, "model list") from e
        except Exception as e:
            raise self._map(e) from e

    async def aclose(self) -> None:
        await self.client.close()

    # -- internals shared with ChatStream --

    def _request_args(self, prepared: PreparedRequest, opts: CallOptions) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model": self.role.model,
            "messages": prepared.messages,
            "max_tokens": opts.max_tokens or self.role.max_tokens,
        }
        if opts.temperature is not None:
            args["temperature"] = opts.temperature
        if opts.stop:
            args["stop"] = list(opts.stop)
        return args

    def _map(self, e: BaseException) -> ModelError:
        return map_error(
            e,
            base_url=self.role.base_url,
            model=self.role.model,
            key_env=self.role.api_key_env,
            role=self.name,
        )

    def _timeout_error(self, budget: float, what: str) -> BudgetExceeded:
        return BudgetExceeded(
            f"model {self.name!r} gave no {what} within {budget:.2f}s",
            budget_s=budget,
            hint=f"the model at {self.role.base_url} is slower than the budget; "
            "a smaller model or fewer images may help",
        )

    def _parse_completion(self, resp: Any) -> tuple[str, str | None, Any]:
        try:
            choice = resp.choices[0]
            text = choice.message.content or ""
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
            return text, choice.finish_reason, getattr(resp, "usage", None)
        except (AttributeError, IndexError, TypeError, KeyError) as e:
            raise invalid_response(
                f"no choices[0].message.content: {str(resp)[:120]!r}",
                base_url=self.role.base_url,
                role=self.name,
            ) from e


_NOT_STARTED, _STREAMING, _FINISHED = range(3)


class ChatStream:
    """An async iterator of text deltas from one streamed chat completion.

    After it ends, `text` holds the whole reply, `finish_reason` the server's reason and
    `timing` the marks. If the stream breaks after text arrived, the error is a StreamCut
    whose `partial` (and this object's `text`) keeps what came.
    """

    def __init__(self, backend: ChatBackend, prompt: Prompt, opts: CallOptions):
        self.backend = backend
        self.prompt = prompt
        self.opts = opts
        self.timing = Timing()
        self._start = self.timing.mark("call")
        self.budget_s = opts.budget_s or backend.role.timeout_s
        # After the first token, the rest of the reply gets the role's whole timeout.
        self._end_deadline = self._start + max(backend.role.timeout_s, self.budget_s)
        self.text = ""
        self.finish_reason: str | None = None
        self.attempts = 0
        self.images = 0
        self.prepare_ms = 0.0
        self.error: ModelError | None = None
        self._phase = _NOT_STARTED
        self._permit: Permit | None = None
        self._stream: openai.AsyncStream[Any] | None = None
        self._chunks: Any = None

    @property
    def ttft_s(self) -> float | None:
        ms = self.timing.span_ms("call", "first_token")
        return None if ms is None else ms / 1000.0

    def __aiter__(self) -> ChatStream:
        return self

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> str:
        if self._phase == _FINISHED:
            raise StopAsyncIteration
        try:
            if self._phase == _NOT_STARTED:
                self._phase = _STREAMING
                return await self._first()
            return await self._next()
        except StopAsyncIteration:
            raise
        except ModelError as e:
            await self._finish(e)
            raise
        except BaseException:
            await self.aclose()
            raise

    async def collect(self) -> Completion:
        """Read the rest of the reply and return it whole."""
        async with self:
            async for _ in self:
                pass
        return Completion(
            text=self.text,
            finish_reason=self.finish_reason,
            timing=self.timing,
            attempts=self.attempts,
            images=self.images,
            prepare_ms=self.prepare_ms,
        )

    async def aclose(self) -> None:
        """Stop now: close the HTTP stream (the server stops generating). A reply that had
        started counts as a healthy call; one that had not counts for nothing."""
        if self._phase == _FINISHED:
            return
        self._phase = _FINISHED
        await self._close_http()
        if self._permit is not None:
            health = self.backend.health
            if "first_token" in self.timing.marks:
                health.record_success(self._permit)
            else:
                health.release(self._permit)
        self.timing.mark("done")

    async def _first(self) -> str:
        b = self.backend
        self._permit = b.health.acquire()
        prepared = await prepare(self.prompt, max_images=b.role.max_images, executor=b.executor)
        self.timing.mark("prepared")
        self.images = len(prepared.images)
        self.prepare_ms = prepared.prepare_ms
        args = b._request_args(prepared, self.opts)

        async def attempt(n: int) -> str | None:
            self.attempts = n
            await self._close_http()
            token = _current_timing.set(self.timing)
            try:
                self._stream = await b.client.chat.completions.create(**args, stream=True)
            finally:
                _current_timing.reset(token)
            self.timing.mark("response_start")
            self._chunks = self._stream.__aiter__()
            delta = await self._read_text()
            if delta is None and self.finish_reason is None:
                # llama.cpp's server does this when the prompt overflows its context: the
                # stream opens with 200, then the request fails with no event sent.
                raise ModelError(
                    f"model {b.name!r} opened a reply stream and ended it without any text",
                    hint=f"check the server log at {b.base_url}: the prompt may exceed the "
                    "model's context, or it is not an OpenAI-compatible endpoint",
                    retryable=False,
                )
            return delta

        try:
            delta = await call_with_retries(
                attempt,
                policy=b.retry,
                deadline=self._start + self.budget_s,
                on_timeout=lambda: b._timeout_error(self.budget_s, "first token"),
                map_exc=b._map,
            )
        except BudgetExceeded:
            b.health.record_ttft_at_least(self.budget_s)
            raise
        t = self.timing.mark("first_token")
        b.health.record_ttft(t - self._start)
        if delta is None:  # a legitimately empty reply
            await self._finish(None)
            raise StopAsyncIteration
        self.text += delta
        return delta

    async def _next(self) -> str:
        b = self.backend
        try:
            async with asyncio.timeout(max(0.0, self._end_deadline - now())):
                delta = await self._read_text()
        except TimeoutError as e:
            total = self._end_deadline - self._start
            raise self._cut(b._timeout_error(total, "end to its reply")) from e
        except ModelError as e:
            raise self._cut(e) from e
        except Exception as e:
            raise self._cut(b._map(e)) from e
        if delta is not None:
            self.text += delta
            return delta
        if self.finish_reason is None:
            raise StreamCut(
                f"model {b.name!r} stream ended mid-reply after {len(self.text)} characters "
                "(no finish_reason)",
                partial=self.text,
                hint=f"the server at {b.base_url} closed the stream early",
            )
        await self._finish(None)
        raise StopAsyncIteration

    def _cut(self, err: ModelError) -> StreamCut:
        return StreamCut(
            f"{err.message} — stream cut after {len(self.text)} characters",
            partial=self.text,
            status=err.status,
            hint=err.hint,
            retryable=err.retryable,
        )

    async def _read_text(self) -> str | None:
        """The next non-empty text delta, or None at the end of the stream."""
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                return None
            try:
                choices = chunk.choices
                if not choices:
                    continue  # e.g. a usage-only chunk
                choice = choices[0]
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
                delta = choice.delta
                content = getattr(delta, "content", None) if delta is not None else None
            except (AttributeError, IndexError, TypeError, KeyError) as e:
                raise invalid_response(
                    f"a stream chunk is not a chat completion chunk: {str(chunk)[:120]!r}",
                    base_url=self.backend.base_url,
                    role=self.backend.name,
                ) from e
            if content:
                if not isinstance(content, str):
                    raise invalid_response(
                        f"delta content is {type(content).__name__}",
                        base_url=self.backend.base_url,
                        role=self.backend.name,
                    )
                return content

    async def _finish(self, error: ModelError | None) -> None:
        if self._phase == _FINISHED and self._permit is None:
            return
        self._phase = _FINISHED
        self.error = error
        self.timing.mark("done")
        await self._close_http()
        permit, self._permit = self._permit, None
        if permit is None:
            return
        if error is None:
            self.backend.health.record_success(permit)
        else:
            self.backend.health.record_failure(permit, error)

    async def _close_http(self) -> None:
        stream, self._stream, self._chunks = self._stream, None, None
        if stream is not None:
            try:
                await stream.close()
            except Exception:  # closing a broken connection may raise; it is closed either way
                pass
