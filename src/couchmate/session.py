"""A Session wires one user's companion: watch a source, decide with the mind, speak.

```
source ─▶ WatchPipeline ─updates─▶ Mind.on_update ─lines─▶ director queue ─▶ Speaker
                                        ▲  player messages (ask)               │
                              memory ◀──┴── turns, moments, summary            ▼
                                                                   transcript + subtitles + WAV
```

The CLI hosts one session; a server would host one per connected user. Nothing global
holds the user's state: settings, memory, backends and the voice are passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from couchmate.config import Settings
from couchmate.errors import CouchmateError, SourceError
from couchmate.mind.memory_slot import Happening, MemorySlot
from couchmate.mind.mind import Mind
from couchmate.sources.base import Source
from couchmate.transcript import TranscriptWriter, Utterance
from couchmate.types import Line, now
from couchmate.voice.base import VoiceSpec
from couchmate.voice.build import build_speaker
from couchmate.voice.speaker import Speaker
from couchmate.watch.pipeline import WatchPipeline, WatchStats, WatchUpdate

log = logging.getLogger(__name__)

#: how long a session lets the line being spoken finish after the watching stops
DRAIN_S = 4.0


@dataclass(slots=True)
class SessionReport:
    seconds: float
    utterances: list[Utterance] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    watch: WatchStats | None = None
    mind: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    folder: Path | None = None

    def lines(self) -> list[Utterance]:
        """The first utterance of each line: a streamed reply is spoken clause by clause,
        but it is one line (per moment and path; "Ouch!" then the analysis are two)."""
        first: dict[tuple[int, str], Utterance] = {}
        for u in self.utterances:
            first.setdefault((id(u.line.event), u.line.path), u)
        return list(first.values())

    @property
    def unprompted(self) -> list[Utterance]:
        return [u for u in self.lines() if _kind(u.line) != "player_message"]

    def reactions(self) -> Counter[str]:
        return Counter(_kind(u.line) for u in self.lines())

    def latency_ms(self, start: str = "evented", end: str = "first_audio") -> dict[str, list]:
        out: dict[str, list[float]] = {}
        for u in self.lines():
            ms = u.line.timing.span_ms(start, end)
            if ms is not None:
                out.setdefault(u.line.path, []).append(ms)
        return out


def _kind(line: Line) -> str:
    return line.event.kind if line.event is not None else "none"


class Session:
    """One companion for one user on one source."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        *,
        profile: Any = None,
        folder: Path | str | None = None,
        audio_out: Path | str | None = None,
        record_watch: bool = True,
        mute: bool | None = None,
        backends: Any = None,
        memory: MemorySlot | None = None,
        speaker: Speaker | None = None,
        mind: Mind | None = None,
        greet: bool = True,
    ):
        self.settings = settings
        self.source = source
        self.folder = Path(folder) if folder is not None else None
        self.pipeline = WatchPipeline(source, profile, settings.watch)
        self.mind = mind or Mind.from_settings(
            settings, backends=backends, memory=memory, on_cut=self._cut
        )
        if mind is not None:
            mind.on_cut = self._cut
        if audio_out is None and self.folder is not None:
            audio_out = self.folder / "audio"
        self.speaker = speaker or build_speaker(settings.voice, audio_out=audio_out, mute=mute)
        self.memory = memory
        self.greet = greet
        self._record_watch = record_watch
        self._recorder: Any = None
        self._transcript: TranscriptWriter | None = None
        self._events: Counter[str] = Counter()
        self._utterances: list[Utterance] = []
        self._answers: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._on_line: Callable[[Utterance], None] | None = None
        self._on_update: Callable[[WatchUpdate], Awaitable[None] | None] | None = None
        self.t0 = now()

    # --- the player's side ----------------------------------------------------------------

    def ask(self, text: str) -> asyncio.Task[list[Line]]:
        """The player said something: answer at once (the lines play through the voice)."""

        async def answer() -> list[Line]:
            return [line async for line in self.mind.on_player_message(text)]

        task = asyncio.get_running_loop().create_task(answer(), name="session-answer")
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return task

    # --- running ----------------------------------------------------------------------------

    async def run(
        self,
        seconds: float | None = None,
        *,
        on_update: Callable[[WatchUpdate], Awaitable[None] | None] | None = None,
        on_line: Callable[[Utterance], None] | None = None,
    ) -> SessionReport:
        """Watch, talk and listen until the source ends, `seconds` pass or `stop()` is called.

        A start that fails (a bad profile, a source that dies before its first frame) raises
        its CouchmateError before anything is said or written; a source that dies later ends
        the session with a report whose `error` says why."""
        self._on_update, self._on_line = on_update, on_line
        self.t0 = now()
        await self.pipeline.start()
        watching = asyncio.get_running_loop().create_task(
            self.pipeline.run(self._update, seconds=seconds), name="session-watch"
        )
        try:
            await self._until_watching(watching)
        except BaseException:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
            raise
        if self.folder is not None:
            self._transcript = TranscriptWriter(self.folder, self.t0)
        error = ""
        voice = asyncio.get_running_loop().create_task(self.mind.run_voice(self._say))
        try:
            if self.greet and not self._stopping:
                self.mind.greet()
            stats = await watching
        except CouchmateError as e:
            # The source died or the profile failed: keep what was said, report why.
            log.warning("watching stopped: %s", e.message)
            error = e.message
            stats = self.pipeline.stats()
        finally:
            await self._drain(voice)
            if self._recorder is not None:
                await self._recorder.close(self.pipeline.stats())
                self._recorder = None
        await self._remember_summary(stats)
        return SessionReport(
            seconds=now() - self.t0,
            utterances=list(self._utterances),
            events=Counter(self._events),
            watch=stats,
            mind=self.mind.stats(),
            error=error,
            folder=self.folder,
        )

    def stop(self) -> None:
        """End the session now, as a user's Ctrl-C does: the line being spoken is cut, the
        watching ends, and `run()` still returns its report and stores the summary."""
        self._stopping = True
        cur = self.speaker.current
        if cur is not None:
            self.speaker.cut(cur)
        self.pipeline.request_stop()

    async def _until_watching(self, watching: asyncio.Task[WatchStats]) -> None:
        """Until the first frame: a source that ends before it raises its error here."""
        first = asyncio.get_running_loop().create_task(self.pipeline.wait_first_frame())
        try:
            await asyncio.wait({first, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            first.cancel()
        if not first.done():  # watching ended before any frame
            watching.result()  # raises the error that ended it
            if not self._stopping:
                raise SourceError(
                    f"{self.source.name} ended before its first frame",
                    hint="check the source: a video that decodes, a folder with images",
                )

    async def aclose(self) -> None:
        await self.pipeline.stop()
        await self.mind.aclose()
        await self.speaker.aclose()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- internals ----------------------------------------------------------------------------

    async def _update(self, u: WatchUpdate) -> None:
        for e in u.events:
            self._events[e.kind] += 1
        screen_text = ""
        if u.state is not None:
            text = u.state.value("text")
            screen_text = text if isinstance(text, str) else ""
        self.mind.on_update(u.state, u.events, self.pipeline.clip, screen_text=screen_text)
        if self._recorder is None and self.folder is not None and self._record_watch:
            from couchmate.watch.record import SessionRecorder

            self._recorder = SessionRecorder(
                self.folder / "watch",
                source=self.source.name,
                image_format="jpg",
                max_image_mb=self.settings.watch.record_images_mb,
            )
        if self._recorder is not None:
            self._recorder.write(u)
        if self._on_update is not None:
            r = self._on_update(u)
            if r is not None:
                await r

    async def _say(self, line: Line) -> None:
        persona = self.mind.persona
        voice = VoiceSpec.from_persona(persona.voice(line.lang), line.lang)
        spoken = None
        try:
            spoken = await self.speaker.say(line.text, voice, line)
        finally:
            self._log_utterance(line, spoken)

    def _log_utterance(self, line: Line, spoken: Any) -> None:
        start = line.timing.get("first_audio")
        if start is None:
            return  # never heard (stale, cut before it started, or the engine failed)
        end = spoken.ended if spoken is not None and spoken.ended else now()
        cut = spoken is None or spoken.cut
        audio = None
        if spoken is not None and spoken.audio is not None and spoken.audio.path is not None:
            audio = self._audio_ref(spoken.audio.path)
        u = Utterance(line, start, end, cut=cut, audio=audio)
        self._utterances.append(u)
        if self._transcript is not None:
            self._transcript.add(u)
        if self._on_line is not None:
            self._on_line(u)

    def _audio_ref(self, path: Path) -> str:
        """The WAV as the transcript names it: relative to the session folder, so the folder
        can move with its audio; a WAV folder elsewhere gets a `../` path (or an absolute one
        where no relative path exists, e.g. another Windows drive) that still resolves."""
        if self.folder is None:
            return str(path)
        try:
            return os.path.relpath(path, self.folder)
        except ValueError:
            return str(path.resolve())

    def _cut(self, line: Line) -> None:
        """The mind wants `line` silenced now (a more urgent line pre-empts it)."""
        cur = self.speaker.current
        if cur is not None and cur.line is line:
            self.speaker.cut(cur)

    async def _drain(self, voice: asyncio.Task[None]) -> None:
        """Let the line being spoken (and an answer being given) finish, then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0 if self._stopping else DRAIN_S):
                if self._answers:
                    await asyncio.wait(set(self._answers))
                current = self.speaker.current
                if current is not None:
                    await current.wait()
        for task in (*self._answers, voice):
            task.cancel()
        for task in (*self._answers, voice):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _remember_summary(self, stats: WatchStats) -> None:
        """A session summary goes to long-term memory (the moments went in as they came)."""
        if self.memory is None or not self._events:
            return
        game = stats.profile or self.source.name
        counts = ", ".join(f"{k} ×{n}" for k, n in self._events.most_common(6))
        minutes = (now() - self.t0) / 60
        text = f"Played {game} for {minutes:.1f} min: {counts}."
        happening = Happening("summary", text, topics=[game], importance=0.6)
        try:
            async with asyncio.timeout(5):
                await self.memory.record(self.settings.user.id, happening)
        except Exception:
            log.exception("could not store the session summary; the session is over anyway")
