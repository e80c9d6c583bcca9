"""Helpers shared by the model tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from couchmate.config import ModelRole
from couchmate.models.backend import ChatBackend
from couchmate.models.health import HealthOptions
from couchmate.models.retry import RetryPolicy


def make_backend(
    base_url: str,
    *,
    name: str = "fast",
    retry: RetryPolicy | None = None,
    health: HealthOptions | None = None,
    **role: object,
) -> ChatBackend:
    settings = {"model": "tiny", "max_tokens": 16, "timeout_s": 10.0, **role}
    return ChatBackend(name, ModelRole(base_url=base_url, **settings), retry=retry, health=health)


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A raw 127.0.0.1 socket that accepts every connection, reads what comes and never
    answers: a hung server, or something that is not an HTTP server on the model's port."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        srv.close()
