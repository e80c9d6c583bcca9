"""Every way a model call can fail becomes one ModelError with a hint the user can act on.

Nothing from openai, httpx or json leaks past the backend: callers handle one error type and
read `retryable` (decided by the HTTP status: 408/409/429/5xx and no status retry, other 4xx
are final) to choose between trying again and falling back.
"""

from __future__ import annotations

import json

import openai
import pydantic

from couchmate.errors import ModelError

_STATUS_HINTS = {
    400: "the server rejected the request: the model may not accept images or this option",
    401: "check the API key in ${env}",
    403: "the API key in ${env} may not have access to model {model!r}",
    404: "check the model name {model!r} and the base_url {url}",
    413: "the request is too large: lower max_images",
    422: "the server rejected the request: the model may not accept images or this option",
    429: "rate limited: lower how often the companion talks or use a local model",
}


# The server answered 200, but the body is not the OpenAI format.
_BAD_BODY = (json.JSONDecodeError, pydantic.ValidationError, openai.APIResponseValidationError)


def _hint_for_status(status: int, *, base_url: str, model: str, key_env: str) -> str:
    if status >= 500:
        return f"the model server at {base_url} had an internal error; it may be overloaded"
    template = _STATUS_HINTS.get(status, f"the model server at {base_url} said HTTP {status}")
    # "${env}" first: str.format would read "{env}" as a field of its own (KeyError).
    env = f"${key_env}" if key_env else "the api_key_env setting"
    return template.replace("${env}", env).format(url=base_url, model=model)


def _causes(e: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def _status_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
    return e.message


def map_error(
    e: BaseException, *, base_url: str, model: str, key_env: str = "", role: str = ""
) -> ModelError:
    """The ModelError for any exception a call to an OpenAI-compatible server raised."""
    who = f"model {role!r}" if role else "model"
    if isinstance(e, ModelError):
        return e
    if isinstance(e, openai.APITimeoutError):
        return ModelError(
            f"{who} timed out at {base_url}",
            hint=f"is the model server at {base_url} overloaded? (timed out)",
        )
    if isinstance(e, openai.APIConnectionError):
        what, reached = _describe_connection_failure(_causes(e))
        if reached:
            return ModelError(
                f"{who}: the connection broke ({what})",
                hint=f"the model server at {base_url} dropped the connection; did it crash?",
            )
        return ModelError(
            f"{who} could not be reached: {what}",
            hint=f"is the model server running at {base_url}? ({what})",
        )
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        return ModelError(
            f"{who} failed with HTTP {status}: {_status_message(e)[:300]}",
            status=status,
            hint=_hint_for_status(status, base_url=base_url, model=model, key_env=key_env),
        )
    if isinstance(e, _BAD_BODY):
        return invalid_response(f"{type(e).__name__}: {str(e)[:200]}", base_url=base_url, role=role)
    if isinstance(e, openai.APIError):  # an error event inside a stream
        return ModelError(f"{who} reported an error: {e.message[:300]}", hint=f"server: {base_url}")
    return ModelError(
        f"{who} call failed: {type(e).__name__}: {str(e)[:300]}",
        hint=f"server: {base_url}",
    )


# What a server says to a request it cannot take because of its image parts (or of
# content-part lists at all: llama-cpp-python answers 500 for a model whose own Jinja chat
# template concatenates the content).
IMAGE_REFUSAL_STATUSES = frozenset({400, 413, 415, 422, 500, 501})


def may_be_image_refusal(e: ModelError) -> bool:
    """Whether a request with images could have failed because of them: a refusing status,
    or a final answer that is no reply (a stream opened and closed with no text)."""
    if e.status is not None:
        return e.status in IMAGE_REFUSAL_STATUSES
    return not e.retryable


def note_images(e: ModelError, role: str) -> ModelError:
    """Add to the hint of a failed request that carried images that the images may be why."""
    if may_be_image_refusal(e) and "max_images" not in (e.hint or ""):
        note = f"if this model takes no images, set models.{role}.max_images = 0"
        e.hint = f"{e.hint}; {note}" if e.hint else note
    return e


def invalid_response(what: str, *, base_url: str, role: str = "") -> ModelError:
    """The server answered, but not in the OpenAI format. Asking again gets the same answer."""
    who = f"model {role!r}" if role else "model"
    return ModelError(
        f"{who} sent an invalid response ({what})",
        hint=f"is {base_url} an OpenAI-compatible endpoint (usually ending in /v1)?",
        retryable=False,
    )


def _describe_connection_failure(chain: list[BaseException]) -> tuple[str, bool]:
    """What went wrong, and whether the server had been reached at all."""
    for c in chain:
        if isinstance(c, ConnectionRefusedError):
            return "connection refused", False
    for c in chain:
        text = str(c).lower()
        if "name or service not known" in text or "nodename nor servname" in text:
            return "unknown host name", False
        if "peer closed" in text or "incomplete" in text or "disconnected" in text:
            return str(c)[:160], True
        if isinstance(c, ConnectionResetError):
            return "connection reset by the server", True
    root = chain[-1]
    return (str(root) or type(root).__name__)[:160], False
