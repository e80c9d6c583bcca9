"""A bounded queue between two stages where the newest item wins.

A producer never waits: when the queue is full the oldest item is dropped and counted, so
a slow consumer sees the freshest data and says how far behind it fell. Closing the queue
is a control item: it is never dropped, and the consumer sees it after the data already
queued (the end of a stream, or the error that ended it). With `lossless=True` the producer
waits instead (offline inputs such as a replay, where every item should be processed).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """Raised by `get()` once the queue is closed and empty. `error` says why it closed."""

    def __init__(self, error: BaseException | None = None):
        super().__init__("queue closed" if error is None else f"queue closed: {error}")
        self.error = error


class LatestQueue(Generic[T]):
    def __init__(self, maxsize: int, *, name: str = "", lossless: bool = False):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.name = name
        self.lossless = lossless
        self.dropped = 0
        self.put_count = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._error: BaseException | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put_nowait(self, item: T) -> T | None:
        """Add `item`; return the item dropped to make room, if any. Lossless queues raise
        asyncio.QueueFull instead of dropping (use `put`)."""
        if self._closed:
            raise QueueClosed(self._error)
        dropped = None
        if len(self._items) >= self.maxsize:
            if self.lossless:
                raise asyncio.QueueFull
            dropped = self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self.put_count += 1
        self._readable.set()
        if len(self._items) >= self.maxsize:
            self._writable.clear()
        return dropped

    async def put(self, item: T) -> T | None:
        """Like put_nowait, but a lossless queue waits for room instead of raising."""
        while self.lossless and len(self._items) >= self.maxsize and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        return self.put_nowait(item)

    async def get(self) -> T:
        while not self._items:
            if self._closed:
                raise QueueClosed(self._error)
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        if not self._items and not self._closed:
            self._readable.clear()
        self._writable.set()
        return item

    def close(self, error: BaseException | None = None) -> None:
        """No more items; consumers drain what is queued, then get QueueClosed(error)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._readable.set()
        self._writable.set()
