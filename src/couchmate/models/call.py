"""What one model call is asked (CallOptions) and what a finished one returns (Completion)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from couchmate.types import Timing


@dataclass(slots=True)
class Completion:
    """A finished reply. Marks: call, prepared, request_sent, (first_token,) done."""

    text: str
    finish_reason: str | None
    timing: Timing
    attempts: int
    images: int = 0
    prepare_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def ttft_s(self) -> float | None:
        """Streamed replies only (a whole reply has no first-token mark)."""
        ms = self.timing.span_ms("call", "first_token")
        return None if ms is None else ms / 1000.0

    @property
    def duration_s(self) -> float | None:
        ms = self.timing.span_ms("call", "done")
        return None if ms is None else ms / 1000.0


@dataclass(slots=True)
class CallOptions:
    """Per-call knobs; None takes the role's setting."""

    budget_s: float | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: Sequence[str] = ()
