"""The openai client as couchmate configures it: no built-in retries, a dummy key for
local servers, and a request hook that marks when each call's request goes out."""

from __future__ import annotations

import contextvars
import os

import httpx2
import openai

from couchmate.errors import ConfigError
from couchmate.types import Timing

# Local servers ignore the key, but the openai client insists on one.
NO_KEY = "sk-no-key-needed"

# The call whose request is about to go out, for the httpx request hook.
current_timing: contextvars.ContextVar[Timing | None] = contextvars.ContextVar(
    "couchmate_model_timing", default=None
)


async def _mark_request_sent(request: httpx2.Request) -> None:
    timing = current_timing.get()
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
