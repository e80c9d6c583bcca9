"""The player's typed lines, read from stdin without holding the process open.

`asyncio.to_thread(sys.stdin.readline)` cannot be cancelled, and `asyncio.run()` waits for
the default executor's threads at exit: a pending read kept `play` alive until the player
pressed Enter. Where the loop can watch the file descriptor (POSIX: a terminal or a pipe)
nothing blocks at all; elsewhere (Windows, a regular file) a daemon thread of our own reads,
and it is left behind at exit instead of being waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator
from typing import IO


async def stdin_lines(stream: IO[str] | None = None) -> AsyncIterator[str]:
    """Each line typed (with its newline) until the stream closes."""
    stream = stream if stream is not None else sys.stdin
    if stream is None or stream.closed:
        return
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    stop = _watch_fd(stream, queue) or _read_in_daemon(stream, queue)
    try:
        while (line := await queue.get()) is not None:
            yield line
    finally:
        stop()


def _watch_fd(stream: IO[str], queue: asyncio.Queue[str | None]):  # type: ignore[no-untyped-def]
    """Read the descriptor when the loop says it is readable; None where that cannot work."""
    try:
        fd = stream.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # epoll refuses regular files
        loop = asyncio.get_running_loop()
    except (OSError, ValueError, AttributeError):
        return None
    encoding = getattr(stream, "encoding", None) or "utf-8"
    pending = bytearray()

    def readable() -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            if pending:
                queue.put_nowait(pending.decode(encoding, "replace"))
                pending.clear()
            loop.remove_reader(fd)
            queue.put_nowait(None)
            return
        pending.extend(chunk)
        while (nl := pending.find(b"\n")) >= 0:
            queue.put_nowait(pending[: nl + 1].decode(encoding, "replace"))
            del pending[: nl + 1]

    try:
        loop.add_reader(fd, readable)
    except (NotImplementedError, OSError, ValueError):
        return None
    return lambda: loop.remove_reader(fd)


def _read_in_daemon(stream: IO[str], queue: asyncio.Queue[str | None]):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()

    def pump() -> None:
        # The loop may be gone by the time a line comes: then there is no one to tell.
        with contextlib.suppress(RuntimeError):
            try:
                for line in iter(stream.readline, ""):
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="couchmate-stdin", daemon=True).start()
    return lambda: None
