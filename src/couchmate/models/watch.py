"""Tell the user once when a backend starts failing, and once when it answers again.

Every call a `ChatBackend` makes ends in exactly one of `succeeded()` or `failed(error)` on
its `FailureWatch` (a cancelled call tells it nothing). The watch turns that stream of
outcomes into state changes and gives each subscriber one `BackendEvent` per change:

- the first failed call (anything but our own deadline cutting it) → FAILING, with the
  error's message and hint; later failures (and a stall turning into a failure) say
  nothing until the backend recovers;
- `stall_after` calls in a row cut by their deadline before any first token → STALLED:
  a server that accepts requests and never answers fails only by our budgets;
- the first call that succeeds after either → RECOVERED.

A backend that flaps (fails again within `quiet_s` of recovering) changes state silently,
and the recovery from a silent failure is silent too: the player hears about a flaky server
once a minute at most, not on every other request. Calls refused by the open circuit
breaker (BackendUnavailable) never reach the network and are no news either.

A subscriber that raises is logged and skipped: a broken status panel must not break the
model call that reported to it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from couchmate.errors import BackendUnavailable, BudgetExceeded, ModelError
from couchmate.types import now

log = logging.getLogger(__name__)


class BackendEventKind(StrEnum):
    FAILING = "failing"
    STALLED = "stalled"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class BackendEvent:
    """One change in how a backend is doing, worded for the player."""

    backend: str
    kind: BackendEventKind
    message: str
    hint: str = ""
    t: float = field(default_factory=now)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def warning(self) -> bool:
        return self.kind is not BackendEventKind.RECOVERED

    @property
    def line(self) -> str:
        """The message and its hint on one line, as a notice panel shows it."""
        return f"{self.message} — {self.hint}" if self.hint else self.message


Subscriber = Callable[[BackendEvent], None]


def short_reason(error: BaseException) -> str:
    """A few words for a status panel: "connection refused", "HTTP 500", "no reply in 0.8 s"."""
    if isinstance(error, BudgetExceeded):
        return f"no reply in {error.budget_s:.1f} s"
    status = getattr(error, "status", None)
    if status is not None:
        return f"HTTP {status}"
    text = str(error)
    for marker in ("could not be reached: ", "the connection broke ("):
        if marker in text:
            text = text.split(marker, 1)[1].rstrip(")")
            break
    else:
        if text.startswith("model '"):
            text = text.split("' ", 1)[-1]
    return text if len(text) <= 48 else text[:47] + "…"


class FailureWatch:
    """Failing / stalled / recovered transitions of one backend, each told once."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str = "",
        stall_after: int = 3,
        quiet_s: float = 60.0,
        clock: Callable[[], float] = now,
    ):
        self.name = name
        self.base_url = base_url
        self.stall_after = stall_after
        self.quiet_s = quiet_s
        self._clock = clock
        self.subscribers: list[Subscriber] = []
        self.state: BackendEventKind | None = None  # None: answering
        self.reason = ""  # short_reason() of what made it fail
        self.events: list[BackendEvent] = []  # everything told, oldest first
        self._stalls = 0
        self._told = False  # the current failing state was announced
        self._recovered_at: float | None = None

    @property
    def failing(self) -> bool:
        return self.state is not None

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(event)` on every change from now on; returns the unsubscribe."""
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    # -- outcomes, from ChatBackend / ChatStream --

    def succeeded(self) -> None:
        self._stalls = 0
        if self.state is None:
            return
        told, self._told = self._told, False
        self.state, self.reason = None, ""
        self._recovered_at = self._clock()
        if told:
            self._tell(BackendEventKind.RECOVERED, f"model {self.name!r} is answering again")

    def failed(self, error: BaseException) -> None:
        if isinstance(error, BackendUnavailable):
            return
        if isinstance(error, BudgetExceeded):
            self._stalls += 1
            if self.state is None and self._stalls >= self.stall_after:
                where = f" at {self.base_url}" if self.base_url else ""
                self._enter(
                    BackendEventKind.STALLED,
                    short_reason(error),
                    f"model {self.name!r} gave no first token in {self._stalls} calls in a row "
                    f"(each cut at its budget, last {error.budget_s:.1f} s)",
                    f"the server{where} is stuck or too slow for these moments; a smaller "
                    "model, a GPU or max_images = 0 helps",
                )
            return
        self._stalls = 0
        if self.state is not None:  # already told (or flapping): only the reason changes
            self.state, self.reason = BackendEventKind.FAILING, short_reason(error)
            return
        hint = error.hint if isinstance(error, ModelError) and error.hint else ""
        self._enter(
            BackendEventKind.FAILING, short_reason(error), f"{error}; talking on without it", hint
        )

    def mark_failing(self, reason: str) -> None:
        """The start-up probe found it failing and has told the user: no second warning."""
        self.state, self.reason, self._told = BackendEventKind.FAILING, reason, True

    # -- internals --

    def _enter(self, kind: BackendEventKind, reason: str, message: str, hint: str) -> None:
        self.state, self.reason = kind, reason
        flapping = (
            self._recovered_at is not None and self._clock() - self._recovered_at < self.quiet_s
        )
        self._told = not flapping
        if self._told:
            self._tell(kind, message, hint)

    def _tell(self, kind: BackendEventKind, message: str, hint: str = "") -> None:
        event = BackendEvent(self.name, kind, message, hint, t=self._clock())
        self.events.append(event)
        for callback in list(self.subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("a backend event subscriber failed on %s", event.line)
