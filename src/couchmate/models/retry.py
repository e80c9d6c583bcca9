"""Retry policy in one place: which errors retry is the error's business (`retryable`),
how often and how long to wait is this options object's, and the caller's budget bounds both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from couchmate.errors import ModelError
from couchmate.types import now

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_s: float = 0.05
    backoff_multiplier: float = 2.0
    max_backoff_s: float = 1.0
    # Do not start another attempt with less budget left than this: it could not finish.
    min_attempt_s: float = 0.05

    def delay(self, failed_attempts: int) -> float:
        d = self.backoff_s * self.backoff_multiplier ** max(0, failed_attempts - 1)
        return min(d, self.max_backoff_s)


NO_RETRY = RetryPolicy(max_attempts=1)


async def call_with_retries(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: float,
    on_timeout: Callable[[], ModelError],
    map_exc: Callable[[BaseException], ModelError],
) -> T:
    """Run `attempt(n)` (n = 1, 2, ...) until it succeeds, fails for good, or `deadline`
    (monotonic seconds) passes. Every attempt runs under the remaining budget; a retry waits
    the policy's backoff only if enough budget is left after it."""
    n = 0
    while True:
        n += 1
        remaining = deadline - now()
        if remaining <= 0:
            raise on_timeout()
        try:
            async with asyncio.timeout(remaining):
                return await attempt(n)
        except TimeoutError as e:
            raise on_timeout() from e
        except Exception as e:
            err = map_exc(e)
            if err is not e:
                err.__cause__ = e
        delay = policy.delay(n)
        if (
            not err.retryable
            or n >= policy.max_attempts
            or deadline - now() - delay < policy.min_attempt_s
        ):
            raise err
        await asyncio.sleep(delay)
