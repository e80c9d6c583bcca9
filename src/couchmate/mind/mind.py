"""The Mind: game updates and player messages in, well-timed in-character lines out.

    mind = Mind.from_settings(settings, backends=Backends.from_settings(settings))
    lines = mind.on_update(state, events, clip)          # sync, sub-millisecond: reflex lines
    async for line in mind.on_player_message("how do I beat this boss?"):
        ...                                              # pieces of the answer as they come
    await mind.run_voice(speaker_say)                    # one line at a time, cuts, staleness

Every line goes through the director's queue; `next_line()` / `wait_line()` hand out the
one to play now and `line_done()` frees the voice. When a line pre-empts the playing one,
`on_cut(line)` is called (run_voice cancels the playing task itself). Model calls run in
tasks the Mind owns and cancels in `aclose()`; nothing here blocks the event loop.

Timings on each line: the event's marks (evented defaults to when the mind got it),
decided (the router chose the path), first_token (model: first streamed token; reflex:
when the line's text was ready). The voice marks first_audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from couchmate.config import Settings
from couchmate.errors import BudgetExceeded, ModelError
from couchmate.mind.backends import ClipLike, ModelBackend, backend_map, backend_views
from couchmate.mind.dialogue import Conversation, Piece, stream_reply, task_for
from couchmate.mind.director import Director, DirectorPolicy
from couchmate.mind.guard import Guard
from couchmate.mind.memory_slot import Happening, MemorySlot, NoMemory, Recollection
from couchmate.mind.moments import (
    Moment,
    line_kind,
    moment_from_event,
    moment_happening,
    synthetic_event,
)
from couchmate.mind.offline_answer import contradicts, is_question, remembered_note, state_fact
from couchmate.mind.persona import Persona, PersonaBook, load_persona
from couchmate.mind.prompt import Identity, PromptBuilder, PromptLimits, prompt_tokens
from couchmate.mind.reflex import Reflex, slot_values
from couchmate.mind.router import Decision, Router, RouterPolicy, question_difficulty
from couchmate.models.prompt import Prompt
from couchmate.types import Event, Frame, GameState, Line, now

log = logging.getLogger(__name__)

SCENE_KINDS = ("scene_change", "level_change")
#: a retried answer is sampled at these temperatures in turn (the first try at the server's
#: default; a server gives the same prompt the same reply otherwise)
RETRY_TEMPERATURES = (1.0, 0.6, 0.3)
#: moments worth handing to long-term memory (besides every critical one)
MEMORABLE = frozenset({"level_change", "game_over"})


class Mind:
    def __init__(
        self,
        persona: Persona,
        *,
        lang: str = "en",
        user: Identity | None = None,
        talkativeness: int = 2,
        do_not_disturb: bool = False,
        spoilers: bool = False,
        backends: Any = None,
        memory: MemorySlot | None = None,
        clock: Callable[[], float] = now,
        seed: int = 0,
        router_policy: RouterPolicy | None = None,
        director_policy: DirectorPolicy | None = None,
        prompt_limits: PromptLimits | None = None,
        memory_tokens: int = 300,
        memory_timeout_s: float = 0.15,
        max_tokens: int = 80,
        on_cut: Callable[[Line], None] | None = None,
        warm_up: bool = False,
    ):
        self.persona = persona
        self.lang = persona.lang(lang)
        self.user = user or Identity()
        self.clock = clock
        self.backends: dict[str, ModelBackend] = backend_map(backends)
        self.memory: MemorySlot = memory or NoMemory()
        self.reflex = Reflex(persona, seed=seed)
        # Model text passes the guard before the voice (echoes, self-talk, repeats, length).
        self.guard = Guard(display_name=persona.display_name, wpm=persona.voice(self.lang).wpm)
        self.router = Router(router_policy or RouterPolicy())
        self.director = Director(
            talkativeness=talkativeness,
            do_not_disturb=do_not_disturb,
            clock=clock,
            policy=director_policy or DirectorPolicy(),
        )
        self.prompts = PromptBuilder(
            persona, lang=self.lang, user=self.user, spoilers=spoilers, limits=prompt_limits
        )
        self.conversation = Conversation()
        self.memory_tokens = memory_tokens
        self.memory_timeout_s = memory_timeout_s
        self.max_tokens = max_tokens
        self.on_cut = on_cut
        self.state: GameState | None = None
        self.screen_text: str | Sequence[str] = ""
        self.clip: ClipLike | Sequence[Frame] | None = None
        self.recent: deque[Event] = deque(maxlen=16)
        self.decisions: deque[tuple[Moment, Decision]] = deque(maxlen=256)
        self.model_errors: deque[str] = deque(maxlen=32)
        #: model calls cut by our own deadline (a budget or the patience): not errors
        self.budget_misses = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._moment_tasks: dict[int, asyncio.Task[Any]] = {}  # by id(event)
        # Moments cut short (the Event objects themselves: holding them keeps ids unique).
        self._preempted: deque[Event] = deque(maxlen=64)
        self._answering: dict[int, Event] = {}  # player messages whose answer is streaming
        self._ready = asyncio.Event()
        self._playing: asyncio.Task[Any] | None = None
        self._warm_up = warm_up
        self._warming: asyncio.Task[Any] | None = None
        #: priorities of the moments whose model request is being made, per path
        self._in_flight: dict[str, list[float]] = {}
        #: the reply streams open now, per path
        self._open: dict[str, list[Any]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        backends: Any = None,
        memory: MemorySlot | None = None,
        book: PersonaBook | None = None,
        **kwargs: Any,
    ) -> Mind:
        p = settings.persona
        persona = book.get(p.name) if book is not None else load_persona(p.name)
        kwargs.setdefault("memory_tokens", settings.memory.token_budget)
        kwargs.setdefault("warm_up", True)
        patience = settings.mind.answer_patience_s
        kwargs.setdefault("router_policy", RouterPolicy(answer_patience_s=patience))
        return cls(
            persona,
            lang=p.language or settings.user.language,
            user=Identity(settings.user.id, settings.user.name),
            talkativeness=p.talkativeness,
            do_not_disturb=p.do_not_disturb,
            spoilers=p.spoilers,
            backends=backends,
            memory=memory,
            **kwargs,
        )

    # --- settings that change while playing ---------------------------------------------

    @property
    def talkativeness(self) -> int:
        return self.director.talkativeness

    @talkativeness.setter
    def talkativeness(self, level: int) -> None:
        self.director.talkativeness = level

    @property
    def do_not_disturb(self) -> bool:
        return self.director.do_not_disturb

    @do_not_disturb.setter
    def do_not_disturb(self, on: bool) -> None:
        self.director.do_not_disturb = on
        if on:
            self.director.clear(unprompted_only=True)  # nothing unprompted waits to be said

    # --- input ------------------------------------------------------------------------

    def on_update(
        self,
        state: GameState | None,
        events: Sequence[Event] = (),
        clip: ClipLike | Sequence[Frame] | None = None,
        *,
        screen_text: str | Sequence[str] = "",
    ) -> list[Line]:
        """Take in what the watcher saw. Returns the reflex lines queued now; model lines
        follow from tasks (and reach the queue when they stream in). Never blocks."""
        self._start_warm_up()
        received = self.clock()
        if state is not None:
            self.state = state
        if clip is not None:
            self.clip = clip
        if screen_text:
            self.screen_text = screen_text
        out: list[Line] = []
        for e in events:
            e.timing.marks.setdefault("evented", received)
            self.director.observe(e)
            self.recent.append(e)
        for e in sorted(events, key=lambda ev: -moment_from_event(ev, state).priority):
            novel = False
            if e.kind in SCENE_KINDS:
                novel = self._novel(e)
            lull, _why = self.director.in_lull()
            moment = moment_from_event(e, self.state, novel=novel, lull=lull)
            if moment.critical or e.kind in MEMORABLE:
                self._record(moment_happening(moment))
            if not self.director.consider(moment).speak:
                continue
            out += self._start(moment)
        due = self.director.lull_due()
        if due is not None:
            _, why = self.director.in_lull()
            lull = Moment(
                "lull", self.clock(), 0.5, event=synthetic_event("lull", self.clock()), lull=True
            )
            lull.tags["why"] = why
            out += self._start(lull)
        return out

    def greet(self) -> list[Line]:
        """A hello at the start of a session (unless muted)."""
        self._start_warm_up()
        t = self.clock()
        m = Moment("greeting", t, 0.75, event=synthetic_event("greeting", t))
        if not self.director.consider(m).speak:
            return []
        return self._start(m)

    async def on_player_message(self, text: str) -> AsyncIterator[Line]:
        """Answer the player at once: a reflex acknowledgement first when the model is slow
        to start, then the model's answer piece by piece; a reflex answer when no model can
        answer within the patience (`mind.answer_patience_s`). A question about a HUD value
        ("what is my health?") is answered from the state at once; the model adds to it."""
        self._start_warm_up()
        t = self.clock()
        event = synthetic_event("player_message", t, text=text)
        event.timing.mark("evented", t)
        lull, _ = self.director.in_lull()
        moment = Moment(
            "player_message",
            t,
            1.0,
            event=event,
            state=self.state,
            lull=lull,
            question=text,
            difficulty=question_difficulty(text),
            critical=True,
        )
        self.director.answer(moment)
        # A new question makes the answer still coming to an older one moot.
        for old in self.director.drop_where(lambda ln: line_kind(ln) == "player_message"):
            self._preempted.append(old.event)  # type: ignore[arg-type]
        self._preempted.extend(ev for ev in self._answering.values() if ev is not event)
        playing = self.director.speaking
        if playing is not None and line_kind(playing) == "player_message":
            self._cut(playing)
        self._answering[id(event)] = event
        self.conversation.add_user(text)
        self._record(Happening("user_turn", text, provenance={"t": t}))
        fact = state_fact(text, moment.state)
        if fact is not None:
            moment.tags["hud"] = fact.hint()  # the model is told the value, too
        decision = self._decide(moment)
        said = ""
        if decision.path == "reflex" or decision.reflex_first or fact is not None:
            kind, extra = "thinking", {}
            if fact is not None:
                kind, extra = "state_answer", {"answer": fact.sentence(self.lang)}
            elif decision.path == "reflex":
                kind, extra = await self._offline_answer(text)
            line = self._reflex_line(moment, decision, kind, extra)
            if line is not None:
                said = line.text if fact is not None else ""
                yield line
        try:
            if decision.path != "reflex":
                lines = self._model_lines(
                    moment, decision, said_first=said, fallback_said=bool(said)
                )
                async for line in lines:
                    yield line
        finally:
            self._answering.pop(id(event), None)

    # --- output: the speaking side -------------------------------------------------------

    def next_line(self) -> Line | None:
        """The line to play now (None while one plays or nothing is on time)."""
        return self.director.next_line()

    def line_done(self, line: Line) -> None:
        self.director.finished(line)
        self._ready.set()

    async def wait_line(self) -> Line:
        """Wait until a line is ready to play and hand it out."""
        while True:
            line = self.next_line()
            if line is not None:
                return line
            self._ready.clear()
            await self._ready.wait()

    async def run_voice(self, say: Callable[[Line], Awaitable[None]]) -> None:
        """Play lines one at a time with `say(line)` until cancelled. A pre-empting line
        cancels the playing `say` task (the speaker should stop audio on CancelledError)."""
        while True:
            line = await self.wait_line()
            self._playing = asyncio.create_task(say(line))
            try:
                await asyncio.shield(self._playing)
            except asyncio.CancelledError:
                if self._playing.cancelled() and not _current_cancelling():
                    pass  # cut: go on with the next line
                else:
                    self._playing.cancel()
                    raise
            except Exception:
                log.exception("the voice failed on %r; going on", line.text)
            finally:
                self._playing = None
                self.line_done(line)

    async def warm_up(self, budget_s: float = 60.0) -> None:
        """Have each model server read the system message once. Servers keep the previous
        request's prefix, and the system message is the same in every request, so after
        this a moment pays only for its own part of the prompt (SmolLM2 on this CPU: ~8 s
        cold for the ~350-token system message under load, ~0.1 s once read). Its time is
        the TTFT fit's first sample: reading tokens is most of it."""
        for path, backend in self.backends.items():
            prompt = Prompt(system=self.prompts.system, user="Hi!")
            opened = self._open.setdefault(path, [])
            try:
                async with backend.stream(prompt, budget_s=budget_s, max_tokens=4) as reply:
                    opened.append(reply)  # a request that cannot wait ends it cleanly
                    try:
                        async for _ in reply:
                            pass
                    finally:
                        opened.remove(reply)
            except ModelError as e:
                log.info("warming up model %s failed: %s", path, e.message)

    def _start_warm_up(self) -> None:
        """Once, with an event loop running: warm the model servers up in the background."""
        if self._warm_up and self._warming is None and self.backends:
            self._warming = self._spawn(self.warm_up())

    async def _warmed(self, within_s: float) -> None:
        """Wait (at most `within_s`) for the warm-up: a request sent meanwhile would queue
        behind it at the server and its time would not be the model's."""
        task = self._warming
        if task is None or task.done() or within_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), within_s)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {
            "router": self.router.stats.as_dict(),
            "director": self.director.stats.as_dict(),
            "guard": self.guard.stats.as_dict(),
            "model_errors": list(self.model_errors),
            "budget_misses": self.budget_misses,
        }

    # --- internals ------------------------------------------------------------------------

    def _decide(self, moment: Moment) -> Decision:
        if self.backends and (moment.kind == "player_message" or moment.spec.model_worthy):
            self._size(moment)
        views = backend_views(self.backends)
        if moment.kind != "player_message":
            # A single-slot server (llama.cpp, Ollama on a CPU) answers one request at a
            # time: a line for an event would queue behind one being made for a moment as
            # important, and push the player's next answer back. A question waits its turn.
            for path, priorities in self._in_flight.items():
                if not priorities or max(priorities) < moment.priority:
                    continue
                for other in self._same_server(path):
                    if other in views:
                        views[other] = replace(views[other], available=False, note="busy")
        decision = self.router.decide(moment, views)
        moment.decided_at = self.clock()
        self.decisions.append((moment, decision))
        return decision

    def _start(self, moment: Moment) -> list[Line]:
        """Route an approved moment: queue its reflex line, start its model line."""
        decision = self._decide(moment)
        out: list[Line] = []
        said = ""
        if decision.path == "reflex" or decision.reflex_first:
            line = self._reflex_line(moment, decision, moment.kind)
            if line is not None:
                out.append(line)
                said = line.text
        if decision.path != "reflex":
            if decision.reflex_first and not self.director.allow_follow_up(moment):
                return out
            task = self._spawn(self._drain(moment, decision, said, fallback_said=bool(said)))
            if task is None and not said:
                # No event loop (a synchronous replay): the model cannot run; say the reflex.
                line = self._reflex_line(moment, decision, moment.kind)
                if line is not None:
                    line.reason = decision.reason + "; no event loop: reflex"
                    out.append(line)
            elif task is not None and moment.event is not None:
                self._moment_tasks[id(moment.event)] = task
                task.add_done_callback(
                    lambda _t, k=id(moment.event): self._moment_tasks.pop(k, None)
                )
        return out

    async def _drain(self, moment: Moment, decision: Decision, said: str, **kw: Any) -> None:
        async for _line in self._model_lines(moment, decision, said_first=said, **kw):
            pass

    async def _offline_answer(self, text: str) -> tuple[str, dict[str, str]]:
        """No model can answer: acknowledge a statement; read out the HUD value asked
        about; answer a question from memory when a remembered fact fits; else the
        persona's honest fallback."""
        fact = state_fact(text, self.state)
        if fact is not None:
            return "state_answer", {"answer": fact.sentence(self.lang)}
        if not is_question(text):
            # "noted" lines promise to remember; with no memory nothing is kept, and the
            # personas have no neutral acknowledgement, so the honest fallback it is.
            if isinstance(self.memory, NoMemory):
                return "fallback_answer", {}
            return "noted", {}
        if self.lang == "en":
            note = remembered_note((await self._recall(text, [])).sources)
            if note:
                return "remembered", {"memory": note}
        return "fallback_answer", {}

    async def _recall(
        self, query: str, topics: list[str], *, tokens: int | None = None
    ) -> Recollection:
        """What memory holds for `query` (within `tokens`, else the memory token budget),
        or nothing: a slow or broken memory must not hold up nor break the answer."""
        budget = self.memory_tokens if tokens is None else tokens
        try:
            async with asyncio.timeout(self.memory_timeout_s):
                return await self.memory.recall(self.user.id, query, topics, budget)
        except TimeoutError:
            log.info("memory recall took over %.2fs; answering without it", self.memory_timeout_s)
        except Exception:
            log.exception("memory recall failed; answering without it")
        return Recollection()

    def _reflex_line(
        self, moment: Moment, decision: Decision, kind: str, extra: dict[str, str] | None = None
    ) -> Line | None:
        values = slot_values(moment.state or self.state, player=self.user.name)
        values.update(extra or {})
        if kind == "state_answer":  # the value itself, in the player's language
            text: str | None = values["answer"]
        else:
            # Only lines whose presuppositions hold ("That last fight…" after a fight).
            must_use, seen = next(iter(extra or {}), ""), self.director.seen()
            text = self.reflex.pick(kind, self.lang, values, must_use=must_use, seen=seen)
        if text is None:
            return None
        line = self._line(text, moment, "reflex", decision.reason)
        line.timing.mark("first_token", self.clock())
        self._offer(line)
        if kind != "thinking":  # filler, not part of the conversation
            self.conversation.add_companion(text)
        return line

    def _line(self, text: str, moment: Moment, path: Any, reason: str) -> Line:
        timing = moment.event.timing.copy() if moment.event is not None else None
        line = Line(
            text=text,
            lang=self.lang,
            path=path,
            reason=reason,
            event=moment.event,
            persona=self.persona.name,
            priority=moment.priority,
            deadline=moment.deadline,
        )
        if timing is not None:
            line.timing = timing
        decided = moment.decided_at if moment.decided_at is not None else self.clock()
        line.timing.marks.setdefault("decided", decided)
        return line

    def _offer(self, line: Line) -> None:
        offer = self.director.offer(line)
        if offer.cut is not None:
            self._cut(offer.cut)
        # A moment whose lines were pre-empted or cut is over: stop its model reply too
        # (closing the stream stops the server generating).
        for old in (*offer.dropped, offer.cut):
            if old is not None and old.event is not None and old.event is not line.event:
                self._preempted.append(old.event)
                task = self._moment_tasks.pop(id(old.event), None)
                if task is not None:
                    task.cancel()
        self._ready.set()

    def _cut(self, line: Line) -> None:
        """Tell the voice to stop `line` now (on_cut, and run_voice's playing task)."""
        if self.on_cut is not None:
            self.on_cut(line)
        if self._playing is not None and not self._playing.done():
            self._playing.cancel()

    async def _model_lines(
        self, moment: Moment, decision: Decision, *, said_first: str, fallback_said: bool = False
    ) -> AsyncIterator[Line]:
        """The model's lines for a moment, trying the decision's fallback chain inside the
        budget; reflex when every model fails (unless a reflex line was already said). The
        chosen model's request gets the whole window, or, when another model follows it in
        the chain, about twice its expected start, so the next one still has time. A line
        that gives a HUD value the player asked about wrongly is not said."""
        end = moment.t + (decision.model_budget_s or decision.budget_s)
        prompt = None
        guarded = ""
        fact = state_fact(moment.question, moment.state) if moment.question else None
        models_after = sum(p != "reflex" for p in decision.fallback)
        paths: deque[Any] = deque((decision.path, *decision.fallback))
        temperature: float | None = None
        retries = iter(RETRY_TEMPERATURES)
        while paths:
            path = paths.popleft()
            if path == "reflex":
                break
            backend = self.backends.get(path)
            left = end - self.clock()
            if backend is None or left <= 0.05:
                continue
            if prompt is None:
                prompt = await self._prompt(moment, decision, said_first)
                await self._warmed(end - self.clock() - 0.5)
                left = end - self.clock()
                if models_after and decision.expected_s > 0:
                    left = min(left, 2.0 * decision.expected_s + 0.5)
            pieces: list[str] = []
            misstated = 0
            guard = self.guard.reply(moment.kind, prompt, self._recent_said())
            last: Piece | None = None
            making = self._in_flight.setdefault(path, [])
            making.append(moment.priority)
            await self._close_replies(path)
            opened = self._open.setdefault(path, [])
            mine: list[Any] = []
            register = _registrar(mine, opened)

            try:
                async for last in stream_reply(
                    backend,
                    prompt,
                    budget_s=max(0.05, left),
                    max_tokens=self.max_tokens,
                    temperature=temperature,
                    opened=register,
                ):
                    if any(ev is moment.event for ev in self._preempted):
                        break  # a more urgent moment took over: stop generating
                    for text in guard.feed(last.text):
                        if fact is not None and contradicts(text, fact):
                            log.info("dropped a model line that misstates %s: %r", fact.kind, text)
                            misstated += 1
                            continue
                        pieces.append(text)
                        yield self._model_line(text, last, moment, path, decision)
                    if guard.stopped:
                        break  # the rest of this reply is not said: stop generating
                else:
                    # The reply ended: a piece held back to judge with the next is said now.
                    for text in guard.finish() if last is not None else ():
                        if fact is not None and contradicts(text, fact):
                            misstated += 1
                            continue
                        pieces.append(text)
                        yield self._model_line(text, last, moment, path, decision)
            except ModelError as e:
                if isinstance(e, BudgetExceeded):
                    self.budget_misses += 1  # our own deadline: not the backend's fault
                else:
                    self.model_errors.append(f"{path}: {e.message}")
                log.info("model %s failed for %s: %s", path, moment.kind, e.message)
                if pieces:
                    self._said(" ".join(pieces), moment)
                    return  # part of the answer is out; do not start another
                continue
            finally:
                making.remove(moment.priority)
                for reply in mine:
                    opened.remove(reply)
            if pieces:
                self._said(" ".join(pieces), moment)
                return
            if last is not None and last.request_sent is not None and moment.event is not None:
                # The unsaid reply's time was the model's: a line that follows counts its
                # request from here, so our overhead stays ours.
                moment.event.timing.marks.setdefault("request_sent", last.request_sent)
            retry = None
            if (guard.stopped or misstated) and self._may_retry(moment, decision, end):
                retry = next(retries, None)
            if retry is not None:
                # A player waits for an answer and there is time: ask again, sampled
                # differently.
                guarded = guard.reason or guarded
                temperature = retry
                paths.appendleft(path)
                continue
            if guard.stopped:
                guarded = guard.reason
                break  # the model's line was unfit to say: the reflex line it is
        if not fallback_said:
            kind, extra = moment.kind, {}
            if moment.kind == "player_message":
                # The same answer the player gets with no model at all, memory included.
                kind, extra = await self._offline_answer(moment.question)
            failed = f"guard: {guarded}" if guarded else "models failed"
            reason = f"{decision.reason}; {failed}: reflex"
            line = self._reflex_line(moment, decision, kind, extra)
            if line is not None:
                line.reason = reason
                yield line

    async def _close_replies(self, path: str) -> None:
        """End the replies still streaming on `path` before a new request goes out. Only
        a moment that outranks them gets here (see `_decide`), and a single-slot server
        (llama.cpp's interrupts the reply in progress for a new request) would cut them
        mid-stream anyway — an error on the backend's record, for our own doing. Closed
        by us, they end cleanly with what they said."""
        for other in self._same_server(path):
            for reply in list(self._open.get(other, ())):
                with contextlib.suppress(Exception):
                    await reply.aclose()

    def _same_server(self, path: str) -> list[str]:
        """`path` and the other roles served by the same server (one slot for both)."""
        url = getattr(self.backends.get(path), "base_url", None)
        return [
            p
            for p, b in self.backends.items()
            if p == path or (url is not None and getattr(b, "base_url", None) == url)
        ]

    def _may_retry(self, moment: Moment, decision: Decision, end: float) -> bool:
        """A question whose model reply was unfit to say may ask again while the time left
        holds about two more of the model's starts."""
        left = end - self.clock()
        return moment.kind == "player_message" and left > 2.0 * max(0.2, decision.expected_s)

    def _model_line(
        self, text: str, piece: Piece, moment: Moment, path: Any, decision: Decision
    ) -> Line:
        line = self._line(text, moment, path, decision.reason)
        line.timing.marks.setdefault("first_token", piece.first_token)
        if piece.request_sent is not None:
            line.timing.marks.setdefault("request_sent", piece.request_sent)
        line.timing.mark("text_ready", piece.ready or self.clock())
        self._offer(line)
        return line

    def _recent_said(self) -> list[str]:
        """The companion's recent lines (reflex and model), for the guard's repeat rule."""
        return [t.text for t in self.conversation.turns if t.role == "assistant"]

    def _said(self, text: str, moment: Moment) -> None:
        self.conversation.add_companion(text)
        self._record(Happening("companion_turn", text, provenance={"moment": moment.kind}))

    def _size(self, moment: Moment) -> None:
        """The smallest and fullest prompt this moment could send, for the router."""
        memory = 0 if isinstance(self.memory, NoMemory) else self.memory_tokens
        moment.min_tokens, moment.full_tokens = self.prompts.sizes(
            task_for(moment),
            user_text=moment.question,
            state=moment.state or self.state,
            events=list(self.recent),
            history=self._history_for(moment),
            memory_tokens=memory,
            screen_text=self.screen_text,
        )

    async def _prompt(self, moment: Moment, decision: Decision, said_first: str) -> Any:
        """The request, sized for the model the router chose (`decision.prompt_tokens`):
        memory is recalled only for the room the prompt has for it."""
        size = decision.prompt_tokens or None
        room = (
            self.memory_tokens
            if size is None
            else min(self.memory_tokens, size - moment.min_tokens)
        )
        memory = ""
        if room >= 40 and not isinstance(self.memory, NoMemory):
            query = moment.question or moment.kind
            topics = [self.state.game] if self.state is not None and self.state.game else []
            memory = (await self._recall(query, topics, tokens=room)).text
        images = self._images() if decision.wants_images else []
        prompt = self.prompts.build(
            task_for(moment, said_first=said_first),
            user_text=moment.question,
            state=moment.state or self.state,
            events=list(self.recent),
            history=self._history_for(moment),
            memory=memory,
            screen_text=self.screen_text,
            images=images,
            now=moment.t,
            max_tokens=size,
        )
        log.debug(
            "prompt for %s: %d new tokens (sized %s)", moment.kind, prompt_tokens(prompt), size
        )
        return prompt

    def _novel(self, e: Event) -> bool:
        """A scene the player has not been in: by the caller's fingerprint when the event
        has one, else by the newest keyframe's perceptual hash."""
        fp = e.data.get("fingerprint") or e.data.get("scene") or e.data.get("level")
        if fp is not None:
            return self.router.novel(str(fp))
        frames = self._frames(1)
        return self.router.novel_image(frames[-1].image) if frames else False

    def _frames(self, n: int) -> list[Frame]:
        clip = self.clip
        if clip is None:
            return []
        if hasattr(clip, "clip"):
            return clip.clip(max_frames=n)
        return list(clip)[-n:]

    def _history_for(self, moment: Moment) -> list[Any]:
        turns = self.conversation.window()
        if moment.kind == "player_message":
            # The question itself goes in as the user's words, not as history.
            q = moment.question.strip()
            for i in range(len(turns) - 1, -1, -1):
                if turns[i].role == "user" and turns[i].text == q:
                    return turns[:i] + turns[i + 1 :]
        return turns

    def _images(self) -> list[Any]:
        return [f.image for f in self._frames(8)]

    def _record(self, happening: Happening) -> None:
        self._spawn(self._record_async(happening))

    async def _record_async(self, happening: Happening) -> None:
        try:
            await self.memory.record(self.user.id, happening)
        except Exception:
            log.exception("memory record failed; the conversation goes on")

    def _spawn(self, coro: Any) -> asyncio.Task[Any] | None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()  # no loop (a sync replay): model lines are not possible here
            return None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _registrar(*lists: list[Any]) -> Callable[[Any], None]:
    """A callback that appends its argument to each of `lists`."""

    def register(item: Any) -> None:
        for items in lists:
            items.append(item)

    return register


def _current_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


__all__ = ["ClipLike", "Mind", "ModelBackend"]
