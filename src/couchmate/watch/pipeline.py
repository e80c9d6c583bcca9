"""The watching pipeline: capture → change gate → reader → events, one direction, never waiting.

```
source ─▶ [capture q] ─▶ gate (thread) ─▶ [reader q] ─▶ reader + events (thread) ─▶ [output q]
          newest wins     │ clip buffer    newest wins                               newest wins
                          └─ scene_change / idle signals ───────────────────────────▶
```

Each queue is bounded and the newest item wins (drops are counted per queue), so capture
never waits on perception and perception never waits on whoever consumes the updates.
Every item carries its own timing marks: captured (source), keyframed (gate), read_start and
read (reader), evented (events).

One `WatchPipeline` serves one stream; nothing global holds its state. It owns its tasks
(cancelled on `stop()`) and its worker threads. A source that dies ends the pipeline after
what it already captured has gone through: `updates()` then raises the SourceError. A reader
that fails on one frame drops that frame, counts it, logs it and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from couchmate.config import WatchSettings
from couchmate.errors import CouchmateError, SourceError
from couchmate.sources.base import Source
from couchmate.types import Event, Frame, GameState, now
from couchmate.watch.clip import ClipBuffer
from couchmate.watch.keyframes import GateDecision, KeyframeGate
from couchmate.watch.queues import LatestQueue, QueueClosed
from couchmate.watch.updates import (
    SIGNAL_KINDS,
    SPANS,
    Rate,
    ReaderFactory,
    StateReader,
    WatchStats,
    WatchUpdate,
)

log = logging.getLogger(__name__)

__all__ = [
    "SIGNAL_KINDS",
    "SPANS",
    "ReaderFactory",
    "StateReader",
    "WatchPipeline",
    "WatchStats",
    "WatchUpdate",
    "resolve_profile",
]

GENERIC = "generic"
MAX_CONFIRM = 3


def _default_reader(profile: Any) -> StateReader:
    from couchmate.watch.reader import Reader

    return Reader(profile)


def resolve_profile(spec: Any) -> Any:
    """A Profile from a name, a path or a Profile (None and "auto" are handled by the caller)."""
    from couchmate.watch.profile import load_profile

    if isinstance(spec, str | Path):
        return load_profile(str(spec))
    return spec


class WatchPipeline:
    """Capture → gate → reader → events for one source.

    `profile`: "auto"/None (the source's hint, else detection on the first keyframe, again
    after a scene change while the profile is generic), a profile name or path, or a Profile.
    `reader`: builds the reader for a profile (default: couchmate.watch.reader.Reader).
    `keep_all`: every frame is a keyframe (the gate still raises its signals); for replays
    of frames that were keyframes already. `lossless`: queues wait instead of dropping, for
    offline inputs where every frame should be read (always so for an `offline` source).
    `on_keyframe`: called on the event loop with every frame the gate passes, before the
    reader queue (which may still drop it).
    """

    def __init__(
        self,
        source: Source,
        profile: Any = "auto",
        settings: WatchSettings | None = None,
        *,
        reader: ReaderFactory | None = None,
        keep_all: bool = False,
        lossless: bool = False,
        output_size: int = 256,
        gate: KeyframeGate | None = None,
        on_keyframe: Callable[[Frame, GateDecision], None] | None = None,
        window: int = 512,
    ):
        self.source = source
        self.settings = settings or WatchSettings()
        self._profile_spec = self.settings.profile if profile is None else profile
        self._reader_factory = reader or _default_reader
        self.keep_all = keep_all
        self._on_keyframe = on_keyframe
        self.lossless = lossless = lossless or source.offline
        # An offline source is read in lockstep: the gate waits for each keyframe's read
        # (which may switch the profile or ask for a confirming frame) before it looks at
        # the next frame, so the same file gives the same keyframes and events every run.
        self._lockstep = source.offline
        self._read_done = asyncio.Event()
        self._read_done.set()
        q = self.settings.queue_size
        self._capture_q: LatestQueue[Frame] = LatestQueue(q, name="capture", lossless=lossless)
        self._reader_q: LatestQueue[tuple[Frame, GateDecision]] = LatestQueue(
            self.settings.reader_queue_size, name="reader", lossless=lossless
        )
        self._out_q: LatestQueue[WatchUpdate] = LatestQueue(
            output_size, name="output", lossless=lossless
        )
        self.gate = gate or KeyframeGate(max_interval_s=self.settings.keyframe_max_interval_s)
        self.clip = ClipBuffer(self.settings.clip_seconds)
        self.profile: Any = None
        self.profile_name = ""
        self.error: CouchmateError | None = None
        self._reader: StateReader | None = None
        self._events: Any = None
        self._redetect = False
        self._confirm_next = False
        self._confirm_streak = 0
        self._gate_regions: Any = None
        self._gate_regions_version = 0
        self._gate_regions_applied = 0
        self._gate_pool = ThreadPoolExecutor(1, thread_name_prefix="watch-gate")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="watch-reader")
        self._supervisor: asyncio.Task[None] | None = None
        self._counts = {"captured": 0, "keyframes": 0, "states": 0, "events": 0, "errors": 0}
        self._reasons: dict[str, int] = {}
        self._capture_rate = Rate()
        self._key_rate = Rate()
        self._last_frame_t: float | None = None
        self._first_frame = asyncio.Event()
        self._spans: dict[str, deque[float]] = {k: deque(maxlen=window) for k in SPANS}
        self._spans["capture_to_event"] = deque(maxlen=window)
        self._last_state: GameState | None = None
        self._last_events: deque[Event] = deque(maxlen=20)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Resolve a named profile and start the stages. Raises a UserError for a bad profile."""
        if self._supervisor is not None:
            return
        spec = self._profile_spec
        if spec not in (None, "auto"):
            await self._use_profile(await self._in_reader(resolve_profile, spec))
        elif self.source.profile_hint:
            await self._use_profile(
                await self._in_reader(resolve_profile, self.source.profile_hint)
            )
        self._supervisor = asyncio.create_task(self._supervise(), name="watch-pipeline")

    async def stop(self) -> None:
        """Cancel every stage, close the source, free the worker threads. Idempotent."""
        sup, self._supervisor = self._supervisor, None
        if sup is not None and not sup.done():
            sup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sup
        self._out_q.close(self.error)
        self.source.close()
        self._gate_pool.shutdown(wait=False, cancel_futures=True)
        self._reader_pool.shutdown(wait=False, cancel_futures=True)

    def request_stop(self) -> None:
        """End `run()`/`updates()` normally after what is already queued: a user's stop, not
        an error, so the run returns its stats and the caller writes its report."""
        self._out_q.close(self.error)

    async def wait_first_frame(self) -> None:
        """Until the source has given its first frame (watching has really begun)."""
        await self._first_frame.wait()

    async def __aenter__(self) -> WatchPipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _supervise(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._capture(), name="watch-capture")
                tg.create_task(self._gate_stage(), name="watch-gate")
                tg.create_task(self._reader_stage(), name="watch-reader")
        except* CouchmateError as eg:
            self._fail(eg.exceptions[0])
        except* Exception as eg:
            log.exception("watch pipeline crashed", exc_info=eg.exceptions[0])
            err = eg.exceptions[0]
            self._fail(CouchmateError(f"the watch pipeline failed: {type(err).__name__}: {err}"))

    def _fail(self, err: BaseException) -> None:
        if isinstance(err, CouchmateError) and self.error is None:
            self.error = err
        self._out_q.close(self.error)

    # ----------------------------------------------------------------- consumers

    async def updates(self) -> AsyncIterator[WatchUpdate]:
        """Updates until the source ends; then returns, or raises the error that ended it."""
        if self._supervisor is None and not self._out_q.closed:
            await self.start()
        while True:
            try:
                yield await self._out_q.get()
            except QueueClosed as closed:
                if closed.error is not None:
                    raise closed.error from None
                return

    async def run(
        self,
        on_update: Callable[[WatchUpdate], Awaitable[None] | None] | None = None,
        *,
        seconds: float | None = None,
        first_frame_timeout_s: float = 60.0,
    ) -> WatchStats:
        """Consume updates (calling `on_update`) until the source ends or `seconds` pass.

        The `seconds` clock starts at the first captured frame: starting an engine or
        loading OCR models is not watching time. A source that gives no frame within
        `first_frame_timeout_s` ends the run with a SourceError instead of hanging.
        """

        async def consume() -> None:
            async with contextlib.aclosing(self.updates()) as updates:
                async for u in updates:
                    if on_update is not None:
                        r = on_update(u)
                        if r is not None:
                            await r

        consumer = asyncio.create_task(consume(), name="watch-run")
        first = asyncio.create_task(self._first_frame.wait(), name="watch-first-frame")
        try:
            done, _ = await asyncio.wait(
                {consumer, first},
                timeout=first_frame_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                raise SourceError(
                    f"no frame from {self.source.name!r} within {first_frame_timeout_s:.0f} s",
                    hint="is the game running and the source spec right?",
                )
            if consumer not in done:
                await asyncio.wait({consumer}, timeout=seconds)
            if consumer.done():
                consumer.result()  # the source's error, if it died
        finally:
            for task in (consumer, first):
                task.cancel()
            await asyncio.gather(consumer, first, return_exceptions=True)
            await self.stop()
        return self.stats()

    @property
    def reader(self) -> StateReader | None:
        """The reader of the current profile (None before one is chosen)."""
        return self._reader

    @property
    def last_state(self) -> GameState | None:
        return self._last_state

    @property
    def last_events(self) -> list[Event]:
        return list(self._last_events)

    def stats(self) -> WatchStats:
        from couchmate.bench.stats import percentiles

        t = now()
        c = self._counts
        return WatchStats(
            captured=c["captured"],
            keyframes=c["keyframes"],
            states=c["states"],
            events=c["events"],
            reader_errors=c["errors"],
            dropped={q.name: q.dropped for q in (self._capture_q, self._reader_q, self._out_q)},
            reasons=dict(self._reasons),
            capture_fps=round(self._capture_rate.rate(t), 2),
            keyframes_per_s=round(self._key_rate.rate(t), 2),
            frame_age_s=0.0 if self._last_frame_t is None else round(t - self._last_frame_t, 3),
            latency_ms={k: percentiles(v) for k, v in self._spans.items()},
            profile=self.profile_name,
            error="" if self.error is None else self.error.message,
        )

    # ----------------------------------------------------------------- stages

    async def _capture(self) -> None:
        frames = self.source.frames()
        n = 0
        try:
            async for frame in frames:
                if "captured" not in frame.timing.marks:
                    frame.timing.mark("captured")
                n += 1
                self._counts["captured"] = n
                self._last_frame_t = now()
                self._first_frame.set()
                self._capture_rate.tick(self._last_frame_t)
                await self._capture_q.put(frame)
        except CouchmateError as e:
            self._capture_q.close(self._died(e, n))
            return
        except Exception as e:
            log.warning("source %s failed", self.source.name, exc_info=True)
            self._capture_q.close(self._died(e, n))
            return
        finally:
            with contextlib.suppress(Exception):
                await frames.aclose()  # type: ignore[attr-defined]
        self._capture_q.close()

    def _died(self, e: BaseException, n: int) -> SourceError:
        name = self.source.name or type(self.source).__name__
        detail = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        err = SourceError(
            f"source {name!r} stopped after {n} frames: {detail}",
            hint=getattr(e, "hint", None)
            or "check the source (file complete? window open? engine installed?)",
        )
        err.__cause__ = e
        self.error = self.error or err
        return err

    async def _gate_stage(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await self._capture_q.get()
                decision = await loop.run_in_executor(self._gate_pool, self._gate_one, frame)
                signals = self._signals(frame, decision)
                if signals:
                    self._counts["events"] += len(signals)
                    self._last_events.extend(signals)
                    await self._emit(
                        WatchUpdate(frame, None, signals, decision, self.profile_name, self.stats())
                    )
                if not (decision.keep or self.keep_all):
                    continue
                if decision.scene_change and self.profile_name in ("", GENERIC):
                    self._redetect = True
                self._counts["keyframes"] += 1
                reason = decision.reason or "all"
                self._reasons[reason] = self._reasons.get(reason, 0) + 1
                self._key_rate.tick(now())
                if self._on_keyframe is not None:
                    self._on_keyframe(frame, decision)
                if self._lockstep:
                    self._read_done.clear()
                    await self._reader_q.put((frame, decision))
                    await self._read_done.wait()
                else:
                    await self._reader_q.put((frame, decision))
        except QueueClosed as closed:
            self._reader_q.close(closed.error)

    def _gate_one(self, frame: Frame) -> GateDecision:
        if self._gate_regions_applied != self._gate_regions_version:
            self._gate_regions_applied = self._gate_regions_version
            self.gate.set_regions(self._gate_regions)
        # The reader holds a changed value until a second frame confirms it: pass the
        # next frame even if it looks the same, or the change would wait for `interval`.
        force = "confirm" if self._confirm_next else ""
        self._confirm_next = False
        decision = self.gate.check(frame, force=force)
        if decision.reason == "hud":
            # A changed HUD value needs a second frame to be confirmed: send the next one
            # now rather than after this read (which may be slower than a frame).
            self._confirm_next = True
        if decision.keep or self.keep_all:
            frame.timing.mark("keyframed")
            self.clip.add(frame)
        return decision

    def _signals(self, frame: Frame, d: GateDecision) -> list[Event]:
        from couchmate.watch.events import make_event

        found: list[tuple[str, dict[str, Any]]] = []
        if d.scene_change:
            found.append(("scene_change", {"distance": round(d.scene_distance, 3)}))
        if d.idle:
            found.append(("idle", {"seconds": self.gate.idle_after_s}))
        return [
            make_event(
                kind,
                frame.t,
                None,
                data,
                profile=self.profile,
                game=self.profile_name,
                timing=frame.timing,
                frame_index=frame.index,
            )
            for kind, data in found
        ]

    async def _reader_stage(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._read_done.set()
                frame, decision = await self._reader_q.get()
                frame.timing.mark("read_start")
                if self.profile is None or self._redetect:
                    await self._detect(frame)
                try:
                    state, events = await loop.run_in_executor(
                        self._reader_pool, self._read_one, frame
                    )
                except Exception as e:
                    self._counts["errors"] += 1
                    n = self._counts["errors"]
                    if n & (n - 1):  # log the 1st, 2nd, 4th, 8th... failure, not every frame
                        continue
                    log.warning(
                        "reader failed on frame %d (%d failures so far): %s: %s",
                        frame.index,
                        n,
                        type(e).__name__,
                        e,
                    )
                    continue
                self._account(state, events)
                self._after_read(decision)
                await self._emit(
                    WatchUpdate(frame, state, events, decision, self.profile_name, self.stats())
                )
        except QueueClosed as closed:
            self._read_done.set()
            self._out_q.close(closed.error or self.error)

    def _read_one(self, frame: Frame) -> tuple[GameState, list[Event]]:
        assert self._reader is not None
        state = self._reader.read(frame)
        for k, v in frame.timing.marks.items():
            state.timing.marks.setdefault(k, v)
        if "read" not in state.timing.marks:
            state.timing.mark("read")
        events = list(self._events.update(state)) if self._events is not None else []
        for ev in events:
            for k, v in state.timing.marks.items():
                ev.timing.marks.setdefault(k, v)
            if "evented" not in ev.timing.marks:
                ev.timing.mark("evented")
        return state, events

    def _after_read(self, decision: GateDecision) -> None:
        """Ask the gate for a confirming frame while the reader holds a changed value, at
        most MAX_CONFIRM frames in a row (a field that never reads the same twice must not
        turn every frame into a keyframe)."""
        if not getattr(self._reader, "pending", False):
            self._confirm_streak = 0
            return
        self._confirm_streak = self._confirm_streak + 1 if decision.reason == "confirm" else 0
        self._confirm_next = self._confirm_streak < MAX_CONFIRM

    def _account(self, state: GameState, events: list[Event]) -> None:
        self._counts["states"] += 1
        self._counts["events"] += len(events)
        self._last_state = state
        self._last_events.extend(events)
        for name, (a, b) in SPANS.items():
            span = state.timing.span_ms(a, b)
            if span is not None:
                self._spans[name].append(span)
        for ev in events:
            span = ev.timing.span_ms("captured", "evented")
            if span is not None:
                self._spans["capture_to_event"].append(span)

    async def _emit(self, update: WatchUpdate) -> None:
        await self._out_q.put(update)

    # ----------------------------------------------------------------- profiles

    async def _detect(self, frame: Frame) -> None:
        self._redetect = False
        from couchmate.watch.detect import detect_profile

        try:
            profile = await self._in_reader(detect_profile, frame)
        except Exception as e:
            log.warning("profile detection failed: %s: %s", type(e).__name__, e)
            if self.profile is not None:
                return
            raise
        if self.profile is None or getattr(profile, "name", "") != self.profile_name:
            await self._use_profile(profile)

    async def _use_profile(self, profile: Any) -> None:
        """Switch reader, event engine and HUD regions to `profile` (built off the loop)."""
        from couchmate.watch.events import EventEngine

        reader = await self._in_reader(self._reader_factory, profile)
        warm = getattr(reader, "warm", None)
        if warm is not None:  # load OCR models now, not on the first keyframe
            await self._in_reader(warm)
        self._reader = reader
        self._events = EventEngine(profile)
        self.profile = profile
        self.profile_name = str(getattr(profile, "name", "") or GENERIC)
        self._gate_regions = getattr(profile, "regions", None)
        self._gate_regions_version += 1
        log.info("watching with profile %s", self.profile_name)

    async def _in_reader(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, fn, *args)
