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
whether the next call goes out at all, and `watch` tells the user once when calls start
failing (couchmate.models.watch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from couchmate.config import ModelRole
from couchmate.errors import BudgetExceeded, ConfigError, ModelError
from couchmate.models.call import CallOptions, Completion
from couchmate.models.client import NO_KEY, current_timing, make_openai_client, resolve_api_key
from couchmate.models.failures import invalid_response, map_error, note_images
from couchmate.models.health import BackendHealth, HealthOptions
from couchmate.models.prompt import PreparedRequest, Prompt, prepare
from couchmate.models.retry import RetryPolicy, call_with_retries
from couchmate.models.stream import ChatStream
from couchmate.models.watch import FailureWatch
from couchmate.types import Timing

if TYPE_CHECKING:
    from couchmate.models.probe import ProbeResult

__all__ = ["NO_KEY", "ChatBackend", "ChatStream", "Completion", "make_openai_client"]


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
        #: tells subscribers once when calls start failing, and once when they work again
        self.watch = FailureWatch(name, base_url=self.role.base_url)
        #: what the start-up probe found (couchmate.models.probe), None before it ran
        self.last_probe: ProbeResult | None = None
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
        prepared: PreparedRequest | None = None
        try:
            prepared = await prepare(
                prompt, max_images=self.role.max_images, executor=self.executor
            )
            timing.mark("prepared")
            ready = prepared
            attempts = 0

            async def attempt(n: int) -> Any:
                nonlocal attempts
                attempts = n
                token = current_timing.set(timing)
                try:
                    return await self.client.chat.completions.create(
                        **self._request_args(ready, opts), stream=False
                    )
                finally:
                    current_timing.reset(token)

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
            if prepared is not None and prepared.images:
                note_images(e, self.name)
            self.health.record_failure(permit, e)
            self.watch.failed(e)
            raise
        except BaseException:
            self.health.release(permit)
            raise
        # No TTFT sample: a whole reply's time is not a time to first token, and the router
        # plans with the streamed figure.
        self.health.record_success(permit)
        self.watch.succeeded()
        return Completion(
            text=text,
            finish_reason=finish,
            timing=timing,
            attempts=attempts,
            images=len(ready.images),
            prepare_ms=ready.prepare_ms,
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
