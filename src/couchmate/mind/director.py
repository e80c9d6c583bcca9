"""The director: whether and when the companion speaks, and which line plays next.

Deterministic given its clock (inject one). Two halves:

Gate (unprompted lines). A moment is spoken when, in this order: do-not-disturb is off and
talkativeness > 0; its salience reaches the level's threshold (critical moments pass);
the action is not intense (≥ `intense_events` action events in `intense_window_s`) unless the
moment is critical; the cooldown since the last unprompted line has passed (critical
passes); a rate token is left (critical passes); and the hard cap — at most `window_cap`
unprompted lines in any `window_s` — holds for everyone. Capacity is reserved when a moment
is approved, so a line that is later dropped still counted: the cap errs on the quiet side.
Lulls (death screen, idle, menus/loading, a long quiet stretch) are where commentary and
questions go (`lull_due`). A screen where nothing has happened yet (a black window, a game
not started) is no lull: the quiet, grind and idle lulls wait for the first event, so there
is nothing to comment on and nothing to fill. What has happened also decides which lines fit
(`seen()`: a persona line tagged `after: [fight]` needs a recent fight). The player is
answered at once, always (`answer`).

Queue (what plays). One line at a time. `offer` puts a line in a priority queue; a line of
higher priority pre-empts queued lower ones of other moments (dropped, counted) and, when
it outranks the line now playing by more than `cut_margin`, the result says to cut it (the session
tells the voice). `next_line` hands out the best line that is still on time; lines past
their deadline are dropped and counted, never played late.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from couchmate.mind.moments import ACTION_KINDS, LULL_SCENES, Moment
from couchmate.types import Event, Line, now

#: events that are a fight, for lines that presuppose one (persona `after: [fight]`)
FIGHT_KINDS = frozenset({"kill", "damage_taken", "death", "life_lost", "low_health"})


@dataclass(frozen=True, slots=True)
class Talk:
    """How much a talkativeness level says."""

    min_salience: float
    cooldown_s: float
    rate_per_s: float  # token refill: the sustained rate of unprompted lines
    burst: float  # tokens a quiet stretch can save up
    window_cap: int  # hard cap: unprompted lines in any `window_s`
    lull_every_s: float  # spacing of commentary in lulls


TALK: dict[int, Talk] = {
    0: Talk(math.inf, math.inf, 0.0, 0.0, 0, math.inf),
    1: Talk(0.7, 10.0, 1 / 15, 1.0, 4, 90.0),
    # At 2: on average at most one unprompted line per 8 s: the cap allows 7 per minute.
    2: Talk(0.45, 4.0, 1 / 8, 2.0, 7, 40.0),
    3: Talk(0.25, 2.0, 1 / 4, 3.0, 15, 20.0),
}


@dataclass(frozen=True, slots=True)
class DirectorPolicy:
    window_s: float = 60.0
    intense_window_s: float = 4.0
    intense_events: int = 3
    #: no action for this long is a lull ("long quiet stretch")
    quiet_lull_s: float = 10.0
    #: steady action with nothing notable (salience < notable_salience) this long: a grind
    grind_lull_s: float = 45.0
    notable_salience: float = 0.6
    #: a death/game over turns into a lull (the death screen) after this long
    death_screen_after_s: float = 1.5
    #: wait this long into a lull before commenting
    lull_settle_s: float = 1.0
    #: a fight this long ago is still "that last fight" for the lines that mention one
    fight_memory_s: float = 120.0
    #: a new line must outrank the playing one by this much to cut it
    cut_margin: float = 0.1
    max_queue: int = 16


DEFAULT_POLICY = DirectorPolicy()


@dataclass(frozen=True, slots=True)
class Verdict:
    speak: bool
    reason: str
    priority: float = 0.0
    deadline: float | None = None
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Offer:
    """What `offer` did: queued or not, what it pre-empted, and whether to cut the voice."""

    queued: bool
    reason: str
    dropped: tuple[Line, ...] = ()
    cut: Line | None = None


@dataclass(slots=True)
class DirectorStats:
    approved: int = 0
    answered: int = 0
    held: Counter[str] = field(default_factory=Counter)
    played: int = 0
    dropped_stale: int = 0
    preempted: int = 0
    cut: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "answered": self.answered,
            "held": dict(self.held),
            "played": self.played,
            "dropped_stale": self.dropped_stale,
            "preempted": self.preempted,
            "cut": self.cut,
        }


class Director:
    def __init__(
        self,
        *,
        talkativeness: int = 2,
        do_not_disturb: bool = False,
        clock: Callable[[], float] = now,
        policy: DirectorPolicy = DEFAULT_POLICY,
    ):
        self.clock = clock
        self.policy = policy
        self.stats = DirectorStats()
        self.do_not_disturb = do_not_disturb
        self._tokens = 0.0
        self.talkativeness = talkativeness
        self._tokens = self._talk.burst
        t = clock()
        self._tokens_t = t
        self._last_spoke: float = -math.inf
        self._spoken: deque[float] = deque()  # times of approved unprompted lines
        self._action: deque[float] = deque()  # times of recent action events
        self._last_action: float = t
        self._last_notable: float = t
        self._lull_since: float | None = None
        self._lull_why = ""
        self._active = False  # any event but idle: the game has shown something
        self._played = False  # an action event (persona tag "play")
        self._last_fight: float = -math.inf
        self._last_lull_line: float = -math.inf
        self._heap: list[tuple[float, int, Line]] = []
        self._seq = itertools.count()
        self.speaking: Line | None = None
        self._cutting: Line | None = None  # a cut was asked for this line already

    # --- settings -----------------------------------------------------------------------

    @property
    def talkativeness(self) -> int:
        return self._level

    @talkativeness.setter
    def talkativeness(self, level: int) -> None:
        self._level = max(0, min(3, int(level)))
        self._talk = TALK[self._level]
        self._tokens = min(self._tokens, self._talk.burst)

    # --- what is going on -----------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Every event, spoken or not: feeds the intensity estimate and lull detection."""
        t = event.t
        if not self._active and event.kind != "idle":
            # The first sign of a game: the quiet and grind clocks start here, not at launch.
            self._active = True
            self._last_action = self._last_notable = t
        if event.kind in FIGHT_KINDS:
            self._last_fight = t
        if event.kind in ACTION_KINDS:
            self._played = True
            if self._lull_since is not None or t - self._last_action >= self.policy.quiet_lull_s:
                self._last_notable = t  # play resumes after a lull: the grind clock restarts
            self._action.append(t)
            self._last_action = t
        if event.salience >= self.policy.notable_salience:
            self._last_notable = t
        if event.kind in ("death", "game_over", "life_lost"):
            self._enter_lull(t + self.policy.death_screen_after_s, "death screen")
        elif event.kind == "idle" and self._active:
            self._enter_lull(t, "idle")
        elif event.kind == "scene_change" and str(event.data.get("scene", "")) in LULL_SCENES:
            self._enter_lull(t, f"{event.data['scene']} screen")
        elif event.kind in ACTION_KINDS:
            self._lull_since = None  # play has resumed

    def intensity(self) -> int:
        """Action events in the last `intense_window_s`."""
        t = self.clock()
        while self._action and self._action[0] < t - self.policy.intense_window_s:
            self._action.popleft()
        return len(self._action)

    def in_lull(self) -> tuple[bool, str]:
        t = self.clock()
        if self._lull_since is not None and t >= self._lull_since:
            return True, self._lull_why
        if not self._active:
            return False, ""  # nothing has happened yet: a blank screen is not a lull
        if t - self._last_action >= self.policy.quiet_lull_s:
            return True, f"quiet for {t - self._last_action:.0f}s"
        if t - self._last_notable >= self.policy.grind_lull_s:
            return True, f"grinding for {t - self._last_notable:.0f}s"
        return False, ""

    def seen(self) -> frozenset[str]:
        """What has happened, as the persona's `after` tags: "play" once any action was
        seen, "fight" while a fight is at most `fight_memory_s` old."""
        tags = {"play"} if self._played else set()
        if self.clock() - self._last_fight <= self.policy.fight_memory_s:
            tags.add("fight")
        return frozenset(tags)

    def _enter_lull(self, at: float, why: str) -> None:
        if self._lull_since is None or at < self._lull_since:
            self._lull_since, self._lull_why = at, why

    # --- the gate -----------------------------------------------------------------------

    def consider(self, moment: Moment) -> Verdict:
        """Should this moment get an unprompted line? Approval reserves the capacity."""
        why = self._blocked(moment, moment.critical)
        if why:
            self.stats.held[why.split(":", 1)[0]] += 1
            return Verdict(False, why, moment.priority, moment.deadline, moment.critical)
        self._reserve()
        self.stats.approved += 1
        return Verdict(True, "approved", moment.priority, moment.deadline, moment.critical)

    def allow_follow_up(self, moment: Moment) -> bool:
        """A second, richer line for a moment already approved (the model's analysis).

        It is another unprompted line: it needs a spare token (critical moments only room
        under the cap)."""
        t = self.clock()
        self._refill(t)
        if self._muted() or not self._under_cap(t):
            return False
        if not moment.critical and self._tokens < 1.0:
            return False
        self._reserve()
        return True

    def lull_due(self) -> Verdict | None:
        """Commentary or a question to fill a lull, when one is due; reserves capacity."""
        if self._muted():
            return None
        lull, why = self.in_lull()
        if not lull:
            return None
        t = self.clock()
        since = self._lull_since if self._lull_since is not None else t - self.policy.lull_settle_s
        if t - since < self.policy.lull_settle_s:
            return None
        if t - self._last_lull_line < self._talk.lull_every_s:
            return None
        if self.speaking is not None or self._heap:
            return None
        m = Moment(kind="lull", t=t, salience=0.5, lull=True)
        blocked = self._blocked(m, critical=False, check_salience=False)
        if blocked:
            return None
        self._reserve()
        self._last_lull_line = t
        self.stats.approved += 1
        return Verdict(True, f"lull: {why}", m.priority, m.deadline)

    def answer(self, moment: Moment) -> Verdict:
        """The player spoke: answer at once, whatever the settings."""
        self.stats.answered += 1
        return Verdict(True, "answering the player", 1.0, moment.deadline, True)

    def _muted(self) -> bool:
        return self.do_not_disturb or self._level == 0

    def _blocked(self, m: Moment, critical: bool, *, check_salience: bool = True) -> str:
        if self.do_not_disturb:
            return "do_not_disturb"
        if self._level == 0:
            return "talkativeness_0"
        t = self.clock()
        self._refill(t)
        if check_salience and not critical and m.salience < self._talk.min_salience:
            return f"salience: {m.salience:.2f} < {self._talk.min_salience:.2f}"
        if not critical:
            n = self.intensity()
            if n >= self.policy.intense_events:
                return f"intense: {n} events in {self.policy.intense_window_s:.0f}s"
            if t - self._last_spoke < self._talk.cooldown_s:
                return f"cooldown: {t - self._last_spoke:.1f}s < {self._talk.cooldown_s:.1f}s"
            if self._tokens < 1.0:
                return f"rate: {self._tokens:.2f} tokens"
        if not self._under_cap(t):
            return f"cap: {len(self._spoken)} lines in {self.policy.window_s:.0f}s"
        return ""

    def _refill(self, t: float) -> None:
        dt = max(0.0, t - self._tokens_t)
        self._tokens = min(self._talk.burst, self._tokens + dt * self._talk.rate_per_s)
        self._tokens_t = t

    def _under_cap(self, t: float) -> bool:
        while self._spoken and self._spoken[0] <= t - self.policy.window_s:
            self._spoken.popleft()
        return len(self._spoken) < self._talk.window_cap

    def _reserve(self) -> None:
        t = self.clock()
        self._tokens = max(0.0, self._tokens - 1.0)
        self._last_spoke = t
        self._spoken.append(t)

    # --- the queue ----------------------------------------------------------------------

    def offer(self, line: Line) -> Offer:
        """Queue `line`. Higher priority pre-empts queued lower lines of other moments and
        may ask to cut the line now playing."""
        t = self.clock()
        if line.stale(t):
            self.stats.dropped_stale += 1
            return Offer(False, "stale on arrival")
        dropped: list[Line] = []
        kept: list[tuple[float, int, Line]] = []
        for item in self._heap:
            q = item[2]
            if q.priority < line.priority and not _same_moment(q, line):
                dropped.append(q)
            else:
                kept.append(item)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
            self.stats.preempted += len(dropped)
        if len(self._heap) >= self.policy.max_queue:
            worst = max(self._heap)
            if worst[2].priority >= line.priority:
                return Offer(False, "queue full", tuple(dropped))
            self._heap.remove(worst)
            heapq.heapify(self._heap)
            dropped.append(worst[2])
            self.stats.preempted += 1
        heapq.heappush(self._heap, (-line.priority, next(self._seq), line))
        cut = None
        cur = self.speaking
        if (
            cur is not None
            and cur is not self._cutting
            and not _same_moment(cur, line)
            and line.priority > cur.priority + self.policy.cut_margin
        ):
            cut = self._cutting = cur
            self.stats.cut += 1
        return Offer(True, "queued", tuple(dropped), cut)

    def next_line(self) -> Line | None:
        """The line to play now, or None (nothing on time, or a line is still playing)."""
        if self.speaking is not None:
            return None
        t = self.clock()
        while self._heap:
            _, _, line = heapq.heappop(self._heap)
            if line.stale(t):
                self.stats.dropped_stale += 1
                continue
            self.speaking = line
            self.stats.played += 1
            return line
        return None

    def finished(self, line: Line) -> None:
        """The voice is done with `line` (played out or cut)."""
        if self.speaking is line:
            self.speaking = None
            self._cutting = None

    def pending(self) -> list[Line]:
        return [item[2] for item in sorted(self._heap)]

    def drop_where(self, pred: Callable[[Line], bool]) -> list[Line]:
        """Remove queued lines for which `pred` is true; returns them (counted pre-empted)."""
        dropped = [x[2] for x in self._heap if pred(x[2])]
        if dropped:
            self._heap = [x for x in self._heap if not pred(x[2])]
            heapq.heapify(self._heap)
            self.stats.preempted += len(dropped)
        return dropped

    def clear(self, *, unprompted_only: bool = False) -> None:
        """Forget queued lines (all, or all but answers to the player)."""
        if unprompted_only:
            self._heap = [x for x in self._heap if x[2].priority >= 1.0]
            heapq.heapify(self._heap)
        else:
            self._heap.clear()


def _same_moment(a: Line, b: Line) -> bool:
    return a.event is not None and a.event is b.event
