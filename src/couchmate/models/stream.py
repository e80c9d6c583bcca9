"""A streamed reply: an async iterator of text deltas with timing marks, cancellable."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any

import openai

from couchmate.errors import BudgetExceeded, ModelError, StreamCut
from couchmate.models.call import CallOptions, Completion
from couchmate.models.client import current_timing
from couchmate.models.failures import invalid_response, note_images
from couchmate.models.health import Permit
from couchmate.models.prompt import Prompt, prepare
from couchmate.models.retry import call_with_retries
from couchmate.types import Timing, now

if TYPE_CHECKING:
    from couchmate.models.backend import ChatBackend

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
        #: prompt tokens the server had to read (past the prefix it kept from the last call)
        self.prompt_tokens = 0
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
                self.backend.watch.succeeded()
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
        self.prompt_tokens = b.health.request_tokens(self.prompt, self.images)
        args = b._request_args(prepared, self.opts)

        async def attempt(n: int) -> str | None:
            self.attempts = n
            await self._close_http()
            token = current_timing.set(self.timing)
            try:
                self._stream = await b.client.chat.completions.create(**args, stream=True)
            finally:
                current_timing.reset(token)
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
            b.health.record_ttft_at_least(self.budget_s, self.prompt_tokens)
            raise
        except ModelError as e:
            if self.images:
                note_images(e, b.name)
            raise
        t = self.timing.mark("first_token")
        b.health.record_ttft(t - self._start, self.prompt_tokens)
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
            self.backend.watch.succeeded()
        else:
            self.backend.health.record_failure(permit, error)
            self.backend.watch.failed(error)

    async def _close_http(self) -> None:
        stream, self._stream, self._chunks = self._stream, None, None
        if stream is not None:
            try:
                await stream.close()
            except Exception:  # closing a broken connection may raise; it is closed either way
                pass
