"""One error family. Each error knows whether retrying can help and what the user can do.

The CLI prints `message` and `hint` on one line each; `--debug` adds the traceback.
"""

from __future__ import annotations


class CouchmateError(Exception):
    """Base of every error couchmate raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class UserError(CouchmateError):
    """The user asked for something that cannot work as asked (bad path, unknown name)."""


class ConfigError(UserError):
    """A settings file or environment variable is invalid."""


class ProfileError(UserError):
    """A game profile file is invalid. Names the file and, where known, the line."""

    def __init__(
        self, message: str, *, path: str, line: int | None = None, hint: str | None = None
    ):
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = path
        self.line = line


class PersonaError(UserError):
    """A persona pack is invalid."""


class SourceError(CouchmateError):
    """A frame source failed to open or died while running."""


class BadFrameError(SourceError):
    """One frame or image could not be decoded; the source skips it and goes on."""

    retryable = True


class ModelError(CouchmateError):
    """A model backend call failed. `status` is the HTTP status when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ):
        if retryable is None:
            retryable = status is None or status in (408, 409, 429) or status >= 500
        super().__init__(message, hint=hint, retryable=retryable)
        self.status = status


class BackendUnavailable(ModelError):
    """The backend's circuit breaker is open: do not call it now."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint, retryable=False)


class BudgetExceeded(ModelError):
    """A model call had no (first) token within the caller's time budget."""

    def __init__(self, message: str, *, budget_s: float, hint: str | None = None):
        super().__init__(message, hint=hint, retryable=True)
        self.budget_s = budget_s


class StreamCut(ModelError):
    """A streamed reply broke off after some text arrived; `partial` is that text."""

    def __init__(
        self,
        message: str,
        *,
        partial: str,
        status: int | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ):
        super().__init__(message, status=status, hint=hint, retryable=retryable)
        self.partial = partial


class MemoryStoreError(CouchmateError):
    """The memory store failed (corrupt file, lost connection, ...)."""


class VoiceError(CouchmateError):
    """A TTS engine failed or is missing."""
