"""Probe each configured backend at start: is it there, does it have the model, does it
take images. All backends at once, a few seconds in all; a probe never raises.

    results = await backends.probe()          # [ProbeResult, ...], fast then smart
    for r in results:
        print(r.line, r.hint)

Per backend, within one shared deadline:

1. GET /models: a closed port is "connection refused", a server that takes the connection
   and never answers is "no answer in N s". The list says whether the model exists; a
   server without the endpoint (404) leaves that open.
2. One chat request with one tiny image, when the role sends images (max_images > 0).
   Image first, because a server that cannot take content-part lists refuses it at once,
   while a text reply on a busy CPU can take longer than the whole probe: llama-cpp-python
   on a model whose own Jinja chat template concatenates `message['content']` (SmolLM2's)
   answers HTTP 500 "can only concatenate str (not "list") to str", and with stream=true
   a 200 with an empty stream — every request of the session failed that way.
3. One text request with max_tokens=1: does chat work, and how long a one-token reply takes.

A refused image (HTTP 400/413/415/422/500/501, or a body that is not a reply) while text
chat does not fail the same way turns images off for this backend for the session
(`role.max_images = 0`; the settings are left alone) and the result says so. A failed
text request means the backend is failing, whatever the image did. Requests here go
straight through the backend's client: no retries, no breaker, no health samples; the
backend's FailureWatch is told a failing backend is known (the result line is its warning,
so the session does not warn a second time about the same thing).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from couchmate.errors import BudgetExceeded, ModelError
from couchmate.models.call import CallOptions
from couchmate.models.failures import may_be_image_refusal
from couchmate.models.prompt import PreparedRequest, Prompt, build_messages, encode_image
from couchmate.models.watch import short_reason
from couchmate.types import now

if TYPE_CHECKING:
    from couchmate.models.backend import ChatBackend
    from couchmate.models.backends import Backends

log = logging.getLogger(__name__)

PROBE_BUDGET_S = 3.0
_PROBE_IMAGE_SIDE = 64


class ProbeState(StrEnum):
    OK = "ok"
    SLOW = "slow"  # there, but no reply (and no refusal) within the probe's time
    NO_MODEL = "no such model"
    FAILING = "failing"  # answers, but with errors
    DOWN = "down"  # not reachable, or no answer at all


@dataclass(frozen=True, slots=True)
class ProbeResult:
    name: str
    model: str
    base_url: str
    state: ProbeState
    #: a few words on the state: "connection refused", "no answer in 3.0 s", "HTTP 401"
    detail: str = ""
    #: what to do about it (empty when nothing needs doing)
    hint: str = ""
    #: the model ids the server lists (None: it has no /models, or was not reached)
    server_models: tuple[str, ...] | None = None
    #: took the test image: True / False, None when not tried or no verdict
    images: bool | None = None
    #: this probe set the backend's max_images to 0 for the session
    images_off: bool = False
    #: the server's reason for refusing the image
    image_error: str = ""
    #: seconds for a one-token text reply (about the time to first token)
    ttft_s: float | None = None
    elapsed_s: float = 0.0
    #: the model is not in the server's list, yet the server did not refuse it (a server
    #: that lacks a model says so at once: that is NO_MODEL)
    unlisted: bool = False

    @property
    def usable(self) -> bool:
        """The session may call it (slow counts: it may answer later)."""
        return self.state in (ProbeState.OK, ProbeState.SLOW)

    @property
    def line(self) -> str:
        """One line for the start of a session."""
        who = f"{self.name} ({self.model} at {self.base_url})"
        if self.state is ProbeState.DOWN:
            return f"{who}: down ({self.detail})"
        if self.state is ProbeState.NO_MODEL:
            return (
                f"{self.name}: the server at {self.base_url} has no model {self.model!r}"
                f" ({_has(self.server_models)})"
            )
        if self.state is ProbeState.FAILING:
            return f"{who}: reachable, but a test request failed ({self.detail})"
        if self.state is ProbeState.SLOW:
            head = f"{who}: reachable, but no reply in {self.detail}"
        else:
            head = f"{who}: ok"
            if self.ttft_s is not None:
                head += f", replies in {self.ttft_s:.1f} s"
        notes = []
        if self.images_off:
            notes.append(f"images off for this session: it refused one ({self.image_error})")
        elif self.images:
            notes.append("images accepted")
        if self.unlisted:
            answered = " but answered for it" if self.state is ProbeState.OK else ""
            notes.append(
                f"the server does not list {self.model!r} ({_has(self.server_models)}){answered}"
            )
        return "; ".join([head, *notes])


def _has(models: tuple[str, ...] | None) -> str:
    if not models:
        return "it lists no models"
    shown = ", ".join(models[:8])
    return f"it has: {shown}" + (f" and {len(models) - 8} more" if len(models) > 8 else "")


def model_listed(model: str, ids: tuple[str, ...]) -> bool:
    """Whether `model` names one of the server's ids. Lenient where servers differ in
    spelling: case, a provider prefix ("models/gemini-2.5-flash"), Ollama's ":latest"."""
    m = model.lower()
    for raw in ids:
        i = raw.lower()
        if m in (i, i.removesuffix(":latest")) or i.endswith("/" + m) or m.endswith("/" + i):
            return True
    return False


async def probe_all(backends: Backends, *, budget_s: float = PROBE_BUDGET_S) -> list[ProbeResult]:
    """Probe every configured backend concurrently; each result is also left on its
    backend (`last_probe`)."""
    return list(await asyncio.gather(*(probe(b, budget_s=budget_s) for b in backends.all())))


async def probe(backend: ChatBackend, *, budget_s: float = PROBE_BUDGET_S) -> ProbeResult:
    """Probe one backend within `budget_s` seconds and apply what it found."""
    t0 = now()
    try:
        result = await _probe(backend, t0 + budget_s, budget_s)
    except Exception as e:  # a probe never stops the session
        log.exception("probing model %r failed", backend.name)
        result = _result(backend, ProbeState.FAILING, detail=f"probe failed: {e}"[:120])
    result = replace(result, elapsed_s=now() - t0)
    _apply(backend, result)
    return result


async def _probe(backend: ChatBackend, deadline: float, budget_s: float) -> ProbeResult:
    role = backend.role
    # 1. Is it there, and what does it serve?
    server_models: tuple[str, ...] | None = None
    try:
        server_models = tuple(await backend.models(budget_s=max(0.01, deadline - now())))
    except BudgetExceeded:
        return _result(
            backend,
            ProbeState.DOWN,
            detail=f"no answer in {budget_s:.1f} s",
            hint=f"the server at {backend.base_url} took the connection but sent "
            "nothing back; is it hung, or is something else on that port?",
        )
    except ModelError as e:
        if e.status is None and e.retryable:
            return _result(backend, ProbeState.DOWN, detail=short_reason(e), hint=e.hint or "")
        if e.status != 404:  # 404: no /models endpoint here; the chat requests will tell
            return _result(backend, ProbeState.FAILING, detail=_say(e), hint=e.hint or "")
    listed = None if server_models is None else model_listed(role.model, server_models)

    # 2. Does it take an image? (Only asked when the role would send images.)
    image_s: float | None = None
    image_err: ModelError | None = None
    if role.max_images > 0:
        image_s, image_err = await _chat(backend, _image_request(backend), deadline)

    # 3. Does text chat work?
    text_s: float | None = None
    text_err: ModelError | None = None
    if image_s is not None and image_err is None:
        text_s = image_s  # an image reply is a reply; no need to ask again for "is it up"
    if now() < deadline:
        t, err = await _chat(backend, _text_request(backend), deadline)
        if t is not None or err is not None:
            text_s, text_err = t, err

    common: dict[str, Any] = {"server_models": server_models, "unlisted": listed is False}
    if text_err is not None:
        if listed is False:
            return _no_model(backend, server_models)
        return _result(
            backend, ProbeState.FAILING, detail=_say(text_err), hint=text_err.hint or "", **common
        )
    images: bool | None = None
    off = False
    if role.max_images > 0:
        if image_err is None and image_s is not None:
            images = True
        elif image_err is not None and may_be_image_refusal(image_err):
            images, off = False, True
    state = ProbeState.OK if text_s is not None else ProbeState.SLOW
    hints = []
    if off:
        hints.append(
            f"this model or its chat template takes text only; set models.{backend.name}."
            "max_images = 0 to say so, or serve a vision model (llama.cpp: --mmproj)"
        )
    if state is ProbeState.SLOW:
        hints.append("it is used once it answers; until then the companion talks without it")
    if listed is False:
        hints.append(f"set models.{backend.name}.model to a name the server lists")
    return _result(
        backend,
        state,
        detail=f"{budget_s:.1f} s" if state is ProbeState.SLOW else "",
        hint="; ".join(hints),
        images=images,
        images_off=off,
        image_error=_say(image_err) if off and image_err is not None else "",
        ttft_s=text_s,
        **common,
    )


def _say(e: ModelError) -> str:
    """The error without its "model 'fast' failed with" preamble: the line names the role."""
    text = str(e)
    if text.startswith("model '"):
        text = text.split("' ", 1)[-1].removeprefix("failed with ")
    return text if len(text) <= 160 else text[:159] + "…"


def _no_model(backend: ChatBackend, server_models: tuple[str, ...] | None) -> ProbeResult:
    names = ", ".join((server_models or ())[:8])
    return _result(
        backend,
        ProbeState.NO_MODEL,
        detail=f"no model {backend.model!r}",
        hint=f"set models.{backend.name}.model to one of: {names}"
        if names
        else f"load a model on the server at {backend.base_url}",
        server_models=server_models,
    )


def _result(backend: ChatBackend, state: ProbeState, **fields: Any) -> ProbeResult:
    return ProbeResult(backend.name, backend.model, backend.base_url, state, **fields)


def _apply(backend: ChatBackend, result: ProbeResult) -> None:
    backend.last_probe = result
    if result.images_off:
        backend.role.max_images = 0
        log.info("model %r: %s", backend.name, result.line)
    if not result.usable:
        backend.watch.mark_failing(result.detail)


def _image_request(backend: ChatBackend) -> dict[str, Any]:
    # The same wire shape the session sends: text part, then an image_url data URL part.
    # 64×64, not smaller: Qwen2-VL's processor refuses a side under 28 px, and that refusal
    # must not read as "this server takes no images".
    ramp = np.linspace(0, 255, _PROBE_IMAGE_SIDE, dtype=np.uint8)
    image = encode_image(np.dstack([np.tile(ramp, (_PROBE_IMAGE_SIDE, 1))] * 3))
    prompt = Prompt(user="One word: what colour is this?")
    messages = build_messages(prompt, [image])
    return backend._request_args(
        PreparedRequest(messages, [image], 0, 0.0), CallOptions(max_tokens=1)
    )


def _text_request(backend: ChatBackend) -> dict[str, Any]:
    messages = build_messages(Prompt(user="Say hi."), [])
    return backend._request_args(PreparedRequest(messages, [], 0, 0.0), CallOptions(max_tokens=1))


async def _chat(
    backend: ChatBackend, args: dict[str, Any], deadline: float
) -> tuple[float | None, ModelError | None]:
    """(seconds, None) for a reply, (None, error) for a failure, (None, None) for no
    answer before the deadline."""
    remaining = deadline - now()
    if remaining <= 0:
        return None, None
    t0 = now()
    try:
        async with asyncio.timeout(remaining):
            resp = await backend.client.chat.completions.create(**args, stream=False)
        backend._parse_completion(resp)
    except TimeoutError:
        return None, None
    except ModelError as e:
        return None, e
    except Exception as e:
        return None, backend._map(e)
    return now() - t0, None
