"""A real HTTP server that speaks the OpenAI chat API and misbehaves on cue.

For tests and benchmarks of everything that talks to a model: it listens on a real socket
and answers each request with the next scripted `Reply` — a normal answer with a scripted
time to first token and token pace, an HTTP error, a stall, a stream cut mid-way, garbage.
It records every request (and when the client hung up), so a test can count retries or see
that a pre-empted stream was really closed.

    async with ScriptedServer([Status(503), Answer("hi there")]) as srv:
        role = ModelRole(base_url=srv.base_url, model="scripted")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from couchmate.types import now

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    body: Any
    t: float
    reply: str = ""
    client_closed_at: float | None = None

    @property
    def streamed(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class Exchange:
    """One request being answered: what came in, and helpers to write the response."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: RecordedRequest,
    ):
        self.reader = reader
        self.writer = writer
        self.request = request
        self.client_gone = asyncio.Event()

    @property
    def model(self) -> str:
        body = self.request.body
        return str(body.get("model", "scripted")) if isinstance(body, dict) else "scripted"

    async def head(
        self, status: int, content_type: str, *, length: int | None = None, close: bool = False
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"content-type: {content_type}",
            f"content-length: {length}" if length is not None else "transfer-encoding: chunked",
        ]
        if close:
            lines.append("connection: close")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def whole(self, status: int, body: bytes, content_type: str) -> None:
        await self.head(status, content_type, length=len(body))
        self.writer.write(body)
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def end_chunks(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    async def sse(self, payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await self.chunk(f"data: {data}\n\n".encode())

    async def pause(self, seconds: float) -> bool:
        """Wait, but wake when the client hangs up. True if the client is still there."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.client_gone.wait(), seconds)
        return not self.client_gone.is_set()


def _chunk_payload(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class Reply:
    """How the server answers one chat request. Returns False to close the connection."""

    async def write(self, ex: Exchange) -> bool:
        raise NotImplementedError

    @property
    def label(self) -> str:
        return type(self).__name__


@dataclass(slots=True)
class Answer(Reply):
    """A normal reply: words of `text` as stream deltas (or one JSON body when not streamed),
    the first after `ttft_s`, then one every `token_interval_s`."""

    text: str = "hello there friend"
    ttft_s: float = 0.0
    token_interval_s: float = 0.0
    finish_reason: str = "stop"

    async def write(self, ex: Exchange) -> bool:
        words = [w if i == 0 else " " + w for i, w in enumerate(self.text.split())]
        body = ex.request.body if isinstance(ex.request.body, dict) else {}
        max_tokens = int(body.get("max_tokens") or len(words))
        words = words[:max_tokens]
        finish = "length" if len(words) < len(self.text.split()) else self.finish_reason
        if not await ex.pause(self.ttft_s):
            return False
        if not ex.request.streamed:
            payload = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "created": 0,
                "model": ex.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(words)},
                        "finish_reason": finish,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": len(words), "total_tokens": 1},
            }
            await ex.whole(200, json.dumps(payload).encode(), "application/json")
            return True
        await ex.head(200, "text/event-stream")
        await ex.sse(_chunk_payload(ex.model, {"role": "assistant", "content": ""}, None))
        for i, w in enumerate(words):
            if i and not await ex.pause(self.token_interval_s):
                return False
            await ex.sse(_chunk_payload(ex.model, {"content": w}, None))
        await ex.sse(_chunk_payload(ex.model, {}, finish))
        await ex.sse("[DONE]")
        await ex.end_chunks()
        return True


@dataclass(slots=True)
class Status(Reply):
    """An HTTP error with an OpenAI-style JSON error body."""

    code: int = 500
    message: str = "scripted failure"

    async def write(self, ex: Exchange) -> bool:
        body = {"error": {"message": self.message, "type": "server_error", "code": self.code}}
        await ex.whole(self.code, json.dumps(body).encode(), "application/json")
        return True


@dataclass(slots=True)
class Stall(Reply):
    """Read the request, then say nothing until the client gives up."""

    async def write(self, ex: Exchange) -> bool:
        await ex.client_gone.wait()
        return False


@dataclass(slots=True)
class Hangup(Reply):
    """Close the connection without a response."""

    async def write(self, ex: Exchange) -> bool:
        return False


@dataclass(slots=True)
class CutStream(Reply):
    """Start a normal stream, send `words` deltas, then drop the connection mid-body.
    `chunked=False` sends no framing (connection: close), so the cut looks like a clean end
    of the body and only the missing finish_reason gives it away."""

    words: int = 2
    chunked: bool = True

    async def write(self, ex: Exchange) -> bool:
        if self.chunked:
            await ex.head(200, "text/event-stream")
            send = ex.sse
        else:
            ex.writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )

            async def send(payload: dict[str, Any] | str) -> None:
                ex.writer.write(f"data: {json.dumps(payload)}\n\n".encode())
                await ex.writer.drain()

        await send(_chunk_payload(ex.model, {"role": "assistant", "content": ""}, None))
        for i in range(self.words):
            await send(_chunk_payload(ex.model, {"content": f" word{i}"}, None))
        return False


@dataclass(slots=True)
class Garbage(Reply):
    """A 200 whose body is not what the API promises: `body` as a whole JSON response, or,
    for a streamed request, as the data of `events` SSE events."""

    body: str = '{"choices": [{"message": oops'
    events: int = 1
    after_words: int = 0  # good deltas before the garbage (stream only)

    async def write(self, ex: Exchange) -> bool:
        if not ex.request.streamed:
            await ex.whole(200, self.body.encode(), "application/json")
            return True
        await ex.head(200, "text/event-stream")
        for i in range(self.after_words):
            await ex.sse(_chunk_payload(ex.model, {"content": f" word{i}"}, None))
        for _ in range(self.events):
            await ex.chunk(f"data: {self.body}\n\n".encode())
        await ex.end_chunks()
        return True


@dataclass(slots=True)
class TextOnly(Reply):
    """A text-only server: a request with content-part lists (images) gets what
    llama-cpp-python answers for a model whose Jinja template concatenates the content
    (HTTP 500); anything else gets `reply`."""

    reply: Reply = field(default_factory=Answer)
    status: int = 500
    message: str = 'can only concatenate str (not "list") to str'

    async def write(self, ex: Exchange) -> bool:
        body = ex.request.body if isinstance(ex.request.body, dict) else {}
        messages = body.get("messages") or []
        if any(isinstance(m.get("content"), list) for m in messages if isinstance(m, dict)):
            return await Status(self.status, self.message).write(ex)
        return await self.reply.write(ex)


@dataclass(slots=True)
class ScriptedServer:
    """Answers chat requests with `script` in order, then with `default` forever."""

    script: Sequence[Reply] = ()
    default: Reply = field(default_factory=Answer)
    #: what GET /models lists; None answers it with 404, as servers without it do
    model_ids: Sequence[str] | None = ("scripted",)
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    _queue: deque[Reply] = field(default_factory=deque)
    _server: asyncio.Server | None = None
    _conns: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._queue.extend(self.script)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def start(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the sockets ends every handler on its own (they see EOF). Cancelling them
        # instead makes asyncio's start_server log spurious errors on Python 3.11.
        for writer in list(self._conns.values()):
            writer.close()
        if self._conns:
            await asyncio.wait(list(self._conns), timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ScriptedServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = writer
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        request = RecordedRequest(method, path, body, now())
        self.requests.append(request)
        ex = Exchange(reader, writer, request)
        if path.endswith("/models"):
            if self.model_ids is None:
                await Status(404, "not found").write(ex)
                return True
            data = [{"id": m, "object": "model"} for m in self.model_ids]
            payload = {"object": "list", "data": data}
            await ex.whole(200, json.dumps(payload).encode(), "application/json")
            return True
        reply = self._queue.popleft() if self._queue else self.default
        request.reply = reply.label
        watcher = asyncio.create_task(self._watch_hangup(ex))
        try:
            keep = await reply.write(ex)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return keep and not ex.client_gone.is_set()

    async def _watch_hangup(self, ex: Exchange) -> None:
        # A client that pipelines nothing sends nothing more on this connection until our
        # reply ends, so any read that returns means it hung up.
        try:
            data = await ex.reader.read(1)
        except ConnectionError:
            data = b""
        if not data:
            ex.request.client_closed_at = now()
            ex.client_gone.set()
