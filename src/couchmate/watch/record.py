"""Session folders: what `couchmate watch --record DIR` writes and `couchmate replay DIR` plays.

```
DIR/meta.json           source, profile, start time, versions; counts when closed
DIR/states.jsonl        one GameState per line, with its timings (ms after capture)
DIR/events.jsonl        one Event per line, with its timings
DIR/keyframes/NNNNNN.png  the keyframe each state was read from (NNNNNN = frame index)
```

Lines are flushed one by one, so a crash loses at most the line being written; a reader
skips a corrupt or truncated line with a warning. Times are stored relative to the first
keyframe (`t_rel`, seconds) so a replay can run on its own clock. Engine ground truth
(`Frame.truth`), when the source has it, is kept with each state for offline benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, TypeVar

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from couchmate.errors import UserError
from couchmate.sources.base import Source
from couchmate.types import Event, FieldReading, Frame, GameState, Timing, now
from couchmate.watch.pipeline import WatchStats, WatchUpdate

log = logging.getLogger(__name__)

FORMAT = 1
ImageFormat = Literal["png", "jpg"]
_MAX_PENDING_WRITES = 64  # past this backlog, keyframe images are skipped (JSON lines are not)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionMeta(_Record):
    format: int = FORMAT
    source: str
    profile: str = ""
    started_at: float  # wall-clock seconds
    ended_at: float | None = None
    image_format: ImageFormat = "png"
    versions: dict[str, str] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    error: str = ""


class FieldRecord(_Record):
    value: Any = None
    confidence: float = 0.0
    raw: str = ""


class StateRecord(_Record):
    frame_index: int
    t_rel: float
    game: str
    fields: dict[str, FieldRecord]
    timing_ms: dict[str, float] = Field(default_factory=dict)
    keyframe: str | None = None
    reason: str = ""
    truth: dict[str, Any] | None = None


class EventRecord(_Record):
    kind: str
    t_rel: float
    salience: float
    data: dict[str, Any] = Field(default_factory=dict)
    game: str = ""
    frame_index: int = 0
    timing_ms: dict[str, float] = Field(default_factory=dict)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("couchmate", "rapidocr", "onnxruntime", "vizdoom", "ale-py"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _jsonable(value: Any) -> Any:
    """Numpy scalars and other odd values made JSON-safe (values only, never pickled)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class SessionRecorder:
    """Writes a session folder from a pipeline's updates, off the event loop."""

    def __init__(
        self,
        folder: Path | str,
        *,
        source: str,
        profile: str = "",
        image_format: ImageFormat = "png",
        max_image_mb: float | None = None,
    ):
        self.folder = Path(folder)
        # Keyframes come several a second: uncapped, a session folder grew ~40 MB a minute.
        self._max_image_bytes = None if max_image_mb is None else int(max_image_mb * 1e6)
        self._image_bytes = 0  # the writer thread's alone
        if (self.folder / "meta.json").exists():
            raise UserError(
                f"{self.folder} already holds a recording",
                hint="record into a new or empty folder",
            )
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"{self.folder} is a file, not a folder", hint="pick a folder path")
        self._made_folder = not self.folder.exists()
        try:
            (self.folder / "keyframes").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {self.folder}: {e.strerror}") from e
        self.image_format: ImageFormat = image_format
        self.meta = SessionMeta(
            source=source,
            profile=profile,
            started_at=time.time(),
            image_format=image_format,
            versions=_versions(),
        )
        self._write_meta()
        self._states = (self.folder / "states.jsonl").open("a", encoding="utf-8")
        self._events = (self.folder / "events.jsonl").open("a", encoding="utf-8")
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="watch-record")
        # Written by one thread each, so no lock: pending = submitted - completed.
        self._submitted = 0
        self._completed = 0
        self._t0: float | None = None
        self.counts = {
            "states": 0,
            "events": 0,
            "keyframes": 0,
            "images_skipped": 0,
            "images_capped": 0,
        }
        self._closed = False
        #: close() removed the recording: the watching failed before anything was read
        self.discarded = False

    def _write_meta(self) -> None:
        tmp = self.folder / "meta.json.tmp"
        tmp.write_text(self.meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.folder / "meta.json")

    def write(self, update: WatchUpdate) -> None:
        """Queue one update for writing; returns at once (the writer has its own thread)."""
        if self._closed:
            return
        if self._t0 is None:
            self._t0 = update.keyframe.t
        if update.profile and not self.meta.profile:
            self.meta.profile = update.profile
            self._pool.submit(self._write_meta)  # a crash later still leaves the profile
        image = None
        if update.state is not None:
            if self._submitted - self._completed < _MAX_PENDING_WRITES:
                image = update.keyframe.image
            else:
                self.counts["images_skipped"] += 1
        self._submitted += 1
        self._pool.submit(self._write_logged, update, image)

    def _write_logged(self, update: WatchUpdate, image: np.ndarray | None) -> None:
        try:
            self._write_sync(update, image)
        except Exception as e:  # a full disk must not end the session
            log.warning("recording: a write failed: %s: %s", type(e).__name__, e)
        finally:
            self._completed += 1

    def _write_sync(self, update: WatchUpdate, image: np.ndarray | None) -> None:
        t0 = self._t0 or 0.0
        frame = update.keyframe
        state = update.state
        if state is not None:
            name = None
            if image is not None and self._over_cap():
                image = None
            if image is not None:
                name = f"keyframes/{frame.index:06d}.{self.image_format}"
                params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if self.image_format == "png" else []
                ok, buf = cv2.imencode(
                    "." + self.image_format, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params
                )
                if ok:
                    (self.folder / name).write_bytes(buf.tobytes())
                    self.counts["keyframes"] += 1
                    self._image_bytes += buf.nbytes
                else:
                    name = None
            rec = StateRecord(
                frame_index=state.frame_index or frame.index,
                t_rel=round(state.t - t0, 4),
                game=state.game,
                fields={
                    k: FieldRecord(value=_jsonable(f.value), confidence=f.confidence, raw=f.raw)
                    for k, f in state.fields.items()
                },
                timing_ms=state.timing.as_ms("captured"),
                keyframe=name,
                reason=update.decision.reason if update.decision else "",
                truth=_jsonable(frame.truth) if frame.truth is not None else None,
            )
            self._states.write(rec.model_dump_json() + "\n")
            self._states.flush()
            self.counts["states"] += 1
        for ev in update.events:
            erec = EventRecord(
                kind=ev.kind,
                t_rel=round(ev.t - t0, 4),
                salience=ev.salience,
                data=_jsonable(ev.data),
                game=ev.game,
                frame_index=ev.frame_index,
                timing_ms=ev.timing.as_ms("captured"),
            )
            self._events.write(erec.model_dump_json() + "\n")
            self._events.flush()
            self.counts["events"] += 1

    def _over_cap(self) -> bool:
        if self._max_image_bytes is None or self._image_bytes < self._max_image_bytes:
            return False
        if not self.counts["images_capped"]:
            log.warning(
                "recording: keyframe images reached %.0f MB (watch.record_images_mb); "
                "states and events go on being written",
                self._max_image_bytes / 1e6,
            )
        self.counts["images_capped"] += 1
        return True

    async def close(self, stats: WatchStats | None = None) -> None:
        """Finish pending writes and complete meta.json (end time, counts, error)."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)
        self._pool.shutdown(wait=True)
        self._states.close()
        self._events.close()
        self.meta.ended_at = time.time()
        self.meta.counts = dict(self.counts)
        if stats is not None:
            self.meta.counts.update(
                captured=stats.captured,
                dropped=stats.dropped_total,
                reader_errors=stats.reader_errors,
            )
            self.meta.error = stats.error
        if not self.counts["states"]:
            self._discard()  # nothing was read (the watching failed or never began)
            return
        self._write_meta()

    def _discard(self) -> None:
        for name in ("states.jsonl", "events.jsonl", "meta.json", "meta.json.tmp"):
            (self.folder / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: something else is in there
            (self.folder / "keyframes").rmdir()
            if self._made_folder:
                self.folder.rmdir()
        self.discarded = True


T = TypeVar("T", bound=BaseModel)


class Recording:
    """A session folder, read back. Corrupt or truncated lines are skipped with a warning."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not self.folder.is_dir():
            raise UserError(f"no recording at {self.folder}", hint="pass a `watch --record` folder")
        if not meta_path.is_file():
            raise UserError(
                f"{self.folder} is not a recording (no meta.json)",
                hint="pass a folder written by `couchmate watch --record DIR`",
            )
        try:
            self.meta = SessionMeta.model_validate_json(meta_path.read_text(encoding="utf-8"))
        except (ValidationError, UnicodeDecodeError) as e:
            raise UserError(f"{meta_path} is damaged: {e}", hint="record the session again") from e
        self.skipped: dict[str, int] = {"states.jsonl": 0, "events.jsonl": 0}
        if not self._has_a_state():
            why = f": {self.meta.error}" if self.meta.error else ""
            raise UserError(
                f"{self.folder} recorded nothing{why}",
                hint="record the session again (`couchmate watch --source … --record DIR`)",
            )

    def _has_a_state(self) -> bool:
        """One readable state line is enough (damaged ones are counted when read for real)."""
        path = self.folder / "states.jsonl"
        if not path.exists():
            return False
        with path.open("rb") as fh:
            for raw in fh:
                with contextlib.suppress(ValidationError, ValueError):
                    if raw.strip():
                        StateRecord.model_validate_json(raw)
                        return True
        return False

    def _lines(self, name: str, model: type[T]) -> Iterator[T]:
        path = self.folder / name
        if not path.exists():
            return
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    yield model.model_validate_json(raw)
                except (ValidationError, ValueError) as e:
                    self.skipped[name] += 1
                    first = str(e).splitlines()[0]
                    log.warning("%s:%d: skipped a damaged line (%s)", path, lineno, first)

    def state_records(self) -> list[StateRecord]:
        return list(self._lines("states.jsonl", StateRecord))

    def event_records(self) -> list[EventRecord]:
        return list(self._lines("events.jsonl", EventRecord))

    def states(self, t0: float = 0.0) -> list[GameState]:
        """The recorded states as GameStates, on a clock that starts at `t0`."""
        out = []
        for r in self.state_records():
            t = t0 + r.t_rel
            fields = {k: FieldReading(f.value, f.confidence, t, f.raw) for k, f in r.fields.items()}
            out.append(GameState(game=r.game, t=t, fields=fields, frame_index=r.frame_index))
        return out

    def events(self, t0: float = 0.0) -> list[Event]:
        return [
            Event(
                kind=r.kind,
                t=t0 + r.t_rel,
                salience=r.salience,
                data=r.data,
                game=r.game,
                frame_index=r.frame_index,
            )
            for r in self.event_records()
        ]


class ReplaySource(Source):
    """The keyframes of a recording as a frame source, at their recorded pace or `fast`.

    Frame times are `start + t_rel` either way (so time-based rules decide as they did
    live); `captured` is marked when a frame is handed out. A missing or unreadable image is
    skipped with a warning.
    """

    kind = "replay"

    def __init__(self, recording: Recording | Path | str, *, fast: bool = False):
        super().__init__()
        self.recording = recording if isinstance(recording, Recording) else Recording(recording)
        self.fast = fast
        self.offline = fast
        self.profile_hint = self.recording.meta.profile or None
        self.has_truth = True
        self.skipped_images = 0
        self._closed = False

    @property
    def name(self) -> str:
        return f"replay:{self.recording.folder}"

    def _load(self, rel: str) -> np.ndarray | None:
        data = np.fromfile(self.recording.folder / rel, dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    async def frames(self) -> AsyncIterator[Frame]:
        records = [r for r in self.recording.state_records() if r.keyframe]
        start = now()
        try:
            for r in records:
                if self._closed:
                    return
                if not self.fast:
                    delay = start + r.t_rel - now()
                    if delay > 0:
                        await asyncio.sleep(delay)
                try:
                    image = await self.in_worker(self._load, r.keyframe)
                except OSError as e:
                    image = None
                    log.warning("replay: cannot read %s: %s", r.keyframe, e)
                if image is None:
                    self.skipped_images += 1
                    log.warning("replay: skipped unreadable keyframe %s", r.keyframe)
                    continue
                frame = Frame(
                    image=image,
                    t=start + r.t_rel,
                    source=self.name,
                    index=r.frame_index,
                    timing=Timing(),
                    truth=r.truth,
                )
                frame.timing.mark("captured")
                yield frame
        finally:
            self.close()

    def close(self) -> None:
        self._closed = True
        super().close()
