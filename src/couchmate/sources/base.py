"""What a frame source is, and how a spec string like "atari:pong" becomes one.

A source has one job: `frames()` yields RGB frames with monotonic timestamps. Blocking work
(an engine step, a decode, a screen grab) runs in the source's own single worker thread so
the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from couchmate.errors import UserError
from couchmate.registry import Registry
from couchmate.types import Frame

T = TypeVar("T")


class Source(ABC):
    """A stream of frames. Subclasses implement `frames()`; `close()` frees what they hold."""

    #: registry name ("doom", "video", ...)
    kind: str = ""
    #: the game profile this source is known to show (engines know; a screen does not)
    profile_hint: str | None = None
    #: nominal frames per second, when the source has one
    fps: float | None = None
    #: True when frames carry engine ground truth in `Frame.truth`
    has_truth: bool = False
    #: a file read as fast as it decodes (`--fast`): it has no clock of its own, so the
    #: pipeline makes it wait for the reader instead of dropping frames (which would make
    #: every run see different frames)
    offline: bool = False

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    @property
    def name(self) -> str:
        return self.kind

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> Source:
        """Build from the part of the spec after "kind:" (may be empty) plus CLI options."""
        return cls(arg, **options) if arg else cls(**options)

    @abstractmethod
    def frames(self) -> AsyncIterator[Frame]:
        """Yield frames until the source ends (or forever). Ends cleanly on close()."""

    async def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking `fn` on this source's own thread (engines want one thread)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"src-{self.kind}")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def __aenter__(self) -> Source:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


#: name → Source subclass. Plugins register under the "couchmate.sources" entry-point group.
SOURCES: Registry[type[Source]] = Registry("source", "couchmate.sources")
SOURCES.register("screen", "couchmate.sources.screen:ScreenSource")
SOURCES.register("video", "couchmate.sources.video:VideoSource")
SOURCES.register("dir", "couchmate.sources.folder:FolderSource")
SOURCES.register("doom", "couchmate.sources.doom:DoomSource")
SOURCES.register("atari", "couchmate.sources.atari:AtariSource")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split "kind:arg" (arg may itself hold colons, e.g. a Windows path).

    A bare existing path is taken as a video file or an image folder.
    """
    kind, sep, arg = spec.partition(":")
    if sep and kind in SOURCES:
        return kind, arg
    if not sep and kind in SOURCES:
        return kind, ""
    p = Path(spec)
    if p.is_dir():
        return "dir", spec
    if p.is_file():
        return "video", spec
    return kind, arg  # SOURCES.get() below names the unknown kind and lists known ones


def open_source(spec: str, **options: Any) -> Source:
    """Build a source from a spec string; options go to the source's constructor."""
    kind, arg = parse_spec(spec)
    return SOURCES.get(kind).from_spec(arg, **options)


def source_options(
    spec: str, defaults: dict[str, Any] | None = None, **given: Any
) -> dict[str, Any]:
    """The options the user gave (None = not given), checked against what this kind of
    source takes — a flag that does not apply is a UserError, not a TypeError later —
    plus the settings-derived `defaults` this kind of source takes."""
    kind, _ = parse_spec(spec)
    params = inspect.signature(SOURCES.get(kind).__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    out = {k: v for k, v in (defaults or {}).items() if k in params or takes_any}
    for name, value in given.items():
        if value is None:
            continue
        if name not in params and not takes_any:
            flag = {"realtime": "--realtime/--fast"}.get(name, "--" + name.replace("_", "-"))
            raise UserError(f"{flag} does not apply to the {kind} source")
        out[name] = value
    return out


def open_source_checked(spec: str, defaults: dict[str, Any] | None = None, **given: Any) -> Source:
    """open_source() for user input: unset options dropped, inapplicable ones refused."""
    return open_source(spec, **source_options(spec, defaults, **given))
