"""The Speaker: says lines one at a time, sentence by sentence, and can cut one short.

The mind starts a line as soon as it has decided to speak and hands over its sentences as
they come (a streamed model answer arrives clause by clause); the speaker synthesizes and
plays each one in order, while the next is still being written. Lines never overlap: a
line waits until the one before it has played out or been cut. `cut()` stops the current
line mid-sentence (kills the synthesis, silences the sink) and drops its queued sentences.

    async with Speaker(engine, sink) as speaker:
        utt = speaker.start(voice, line)
        utt.add("Oh no,")
        utt.add("not the lava again!")
        utt.close()
        spoken = await utt.wait()   # spoken.first_audio, spoken.cut, ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from contextlib import aclosing
from dataclasses import dataclass

from couchmate.errors import VoiceError
from couchmate.types import Line
from couchmate.voice.base import TTSEngine, VoiceSpec
from couchmate.voice.sinks import AudioSink, LineAudio

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Spoken:
    """What became of one line."""

    key: str
    line: Line | None = None
    #: monotonic time its first sample started playing (None: nothing was heard)
    first_audio: float | None = None
    #: monotonic time it finished or was cut
    ended: float | None = None
    sentences_played: int = 0  # sentences that were (at least partly) heard
    sentences_dropped: int = 0  # sentences cut before any of them was heard
    cut: bool = False
    stale: bool = False  # its deadline passed while it waited: never started
    error: str | None = None  # the engine failed (logged); the speaker went on
    audio: LineAudio | None = None


class Utterance:
    """One line on its way out. Add sentences, then close; wait for the outcome."""

    def __init__(self, speaker: Speaker, voice: VoiceSpec, line: Line | None, key: str):
        self.voice = voice
        self.line = line
        self.key = key
        self._speaker = speaker
        self._sentences: deque[str] = deque()
        self._more = asyncio.Event()  # set when a sentence is added or the line closes
        self._closed = False
        self._cut = False
        self._first_audio: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self._done: asyncio.Future[Spoken] = asyncio.get_running_loop().create_future()

    def add(self, sentence: str) -> None:
        """Queue one more sentence (or clause). Ignored once the line is closed or cut."""
        if self._closed or self._cut:
            return
        if sentence.strip():
            self._sentences.append(sentence)
            self._more.set()

    def close(self) -> None:
        """No more sentences: the line ends after the ones already added."""
        self._closed = True
        self._more.set()

    async def _next_sentence(self) -> str | None:
        while not self._sentences:
            if self._closed:
                return None
            self._more.clear()
            await self._more.wait()
        return self._sentences.popleft()

    def cut(self) -> None:
        """Stop this line now (or, if it has not started, make sure it never does)."""
        self._speaker.cut(self)

    @property
    def done(self) -> bool:
        return self._done.done()

    async def first_audio(self) -> float | None:
        """When the first sample started (None if the line ended without being heard)."""
        return await asyncio.shield(self._first_audio)

    async def wait(self) -> Spoken:
        return await asyncio.shield(self._done)

    def _pending(self) -> int:
        return len(self._sentences)

    def _finish(self, spoken: Spoken) -> None:
        self._cut = self._cut or spoken.cut
        if not self._first_audio.done():
            self._first_audio.set_result(spoken.first_audio)
        if not self._done.done():
            self._done.set_result(spoken)


class Speaker:
    """Plays lines in order through `engine` into `sink`; owns the task that does it."""

    def __init__(self, engine: TTSEngine, sink: AudioSink, *, lookahead_s: float = 0.25) -> None:
        self.engine = engine
        self.sink = sink
        # Audio is handed to the sink at most this far ahead of what is being heard, so a
        # cut drops whole sentences that were synthesized but not yet due.
        self.lookahead_s = lookahead_s
        self._queue: asyncio.Queue[Utterance] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._current: Utterance | None = None
        self._current_task: asyncio.Task[Spoken] | None = None
        self._count = 0

    # --- the interface ----------------------------------------------------------------------

    def start(self, voice: VoiceSpec, line: Line | None = None, *, key: str = "") -> Utterance:
        """Queue a new line; it plays after the lines before it. Add sentences to it."""
        self._count += 1
        if not key:
            key = line.text if line is not None else f"line-{self._count}"
        utt = Utterance(self, voice, line, key)
        self._queue.put_nowait(utt)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="speaker")
        return utt

    async def say(
        self, sentences: str | Iterable[str], voice: VoiceSpec, line: Line | None = None
    ) -> Spoken:
        """Queue a whole line and wait until it has been said (or cut).

        Cancelling the task that awaits this cuts the line: the shape Mind.run_voice
        expects of its `say(line)` callback.
        """
        sentences = [sentences] if isinstance(sentences, str) else list(sentences)
        utt = self.start(voice, line, key="" if line else "".join(sentences))
        for s in sentences:
            utt.add(s)
        utt.close()
        try:
            return await utt.wait()
        except asyncio.CancelledError:
            utt.cut()
            raise

    def cut(self, utterance: Utterance | None = None) -> None:
        """Cut `utterance` (default: the one playing now). A queued one will never start."""
        utt = utterance or self._current
        if utt is None or utt._cut:
            return
        utt._cut = True
        if utt is self._current and self._current_task is not None:
            self._current_task.cancel()
        else:  # still waiting its turn: it is over now; the worker will skip it
            utt._finish(
                Spoken(key=utt.key, line=utt.line, cut=True, sentences_dropped=utt._pending())
            )

    def clear(self) -> None:
        """Drop every line still waiting its turn (the current one plays on)."""
        while not self._queue.empty():
            utt = self._queue.get_nowait()
            utt._cut = True
            utt._finish(
                Spoken(key=utt.key, line=utt.line, cut=True, sentences_dropped=utt._pending())
            )

    @property
    def current(self) -> Utterance | None:
        return self._current

    @property
    def busy(self) -> bool:
        return self._current is not None or not self._queue.empty()

    async def aclose(self) -> None:
        self.clear()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self.sink.aclose()
        await self.engine.aclose()

    async def __aenter__(self) -> Speaker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the worker -----------------------------------------------------------------------

    async def _run(self) -> None:
        me = asyncio.current_task()
        while True:
            utt = await self._queue.get()
            if utt.done:
                continue
            if utt._cut or (utt.line is not None and utt.line.stale()):
                utt._finish(
                    Spoken(
                        key=utt.key,
                        line=utt.line,
                        cut=utt._cut,
                        stale=not utt._cut,
                        sentences_dropped=utt._pending(),
                    )
                )
                continue
            self._current = utt
            self._current_task = asyncio.get_running_loop().create_task(self._play(utt))
            try:
                spoken = await self._current_task
            except asyncio.CancelledError:
                if me is not None and me.cancelling():
                    utt._finish(Spoken(key=utt.key, line=utt.line, cut=True))
                    raise
                spoken = Spoken(key=utt.key, line=utt.line, cut=True)
            finally:
                self._current = self._current_task = None
            utt._finish(spoken)
            if me is not None and me.cancelling():
                # aclose() cancelled us while the line was playing; _play swallowed it.
                raise asyncio.CancelledError

    async def _play(self, utt: Utterance) -> Spoken:
        spoken = Spoken(key=utt.key, line=utt.line)
        heard = True  # whether any of the sentence in progress has been handed over
        try:
            await self.sink.begin(utt.key)
            while (sentence := await utt._next_sentence()) is not None:
                heard = False
                async with aclosing(self.engine.synthesize(sentence, utt.voice)) as stream:
                    async for chunk in stream:
                        # Only this speaker writes to the sink, so one wait is enough.
                        if (early := self.sink.queued_s - self.lookahead_s) > 0:
                            await asyncio.sleep(early)
                        t = await self.sink.write(chunk)
                        if not heard:
                            heard = True
                            spoken.sentences_played += 1
                        if spoken.first_audio is None:
                            spoken.first_audio = t
                            if utt.line is not None:
                                utt.line.timing.mark("first_audio", t)
                            utt._first_audio.set_result(t)
            await self.sink.drain()
            spoken.audio = await self.sink.end(cut=False)
        except asyncio.CancelledError:
            # cut() (or shutdown): silence now, drop the rest of the line.
            spoken.cut = True
            await self._abort(spoken, utt, unheard=not heard)
        except VoiceError as e:
            log.warning("voice: could not say %r: %s", utt.key[:60], e.message)
            spoken.error = e.message
            await self._abort(spoken, utt, unheard=not heard)
        spoken.ended = spoken.audio.ended if spoken.audio else None
        return spoken

    async def _abort(self, spoken: Spoken, utt: Utterance, *, unheard: bool) -> None:
        utt._cut = True
        spoken.sentences_dropped = utt._pending() + int(unheard)
        await self.sink.stop()
        spoken.audio = await self.sink.end(cut=True)
