"""The director, on an injected clock: thresholds, cooldown, rate cap, intensity, lulls,
do-not-disturb, answering at once, and the queue (pre-emption, cuts, staleness)."""

from __future__ import annotations

import random

import pytest

from couchmate.mind.director import TALK, Director
from couchmate.mind.moments import Moment, moment_from_event
from couchmate.types import Line
from tests.mind.support import FakeClock, event


def director(level=2, dnd=False):
    clock = FakeClock()
    return Director(talkativeness=level, do_not_disturb=dnd, clock=clock), clock


def consider(d, clock, kind, salience=0.7, **data):
    e = event(kind, clock.t, salience, **data)
    d.observe(e)
    return d.consider(moment_from_event(e, None))


@pytest.mark.parametrize(
    ("level", "salience", "speaks"),
    [
        (0, 0.99, False),
        (1, 0.6, False),
        (1, 0.75, True),
        (2, 0.4, False),
        (2, 0.5, True),
        (3, 0.3, True),
        (3, 0.2, False),
    ],
)
def test_salience_threshold_by_talkativeness(level, salience, speaks):
    d, clock = director(level)
    assert consider(d, clock, "kill", salience).speak is speaks


def test_talkativeness_0_and_dnd_are_silent_even_for_deaths_but_answer_the_player():
    for d, _clock in (director(0), director(2, dnd=True)):
        v = consider(d, _clock, "death", 1.0)
        assert not v.speak and v.reason in ("talkativeness_0", "do_not_disturb")
        _clock.advance(60)
        assert d.lull_due() is None
        ans = d.answer(Moment("player_message", _clock.t, 1.0, critical=True))
        assert ans.speak and ans.priority == 1.0


def test_cooldown_holds_ordinary_moments_but_not_critical_ones():
    d, clock = director(2)
    assert consider(d, clock, "kill").speak
    clock.advance(1.0)
    v = consider(d, clock, "kill")
    assert not v.speak and v.reason.startswith("cooldown")
    assert consider(d, clock, "death", 1.0).speak  # critical: right away
    clock.advance(TALK[2].cooldown_s + 0.1)
    # Two approved lines used both burst tokens; the bucket refills at 1/8 s.
    clock.advance(8.0)
    assert consider(d, clock, "kill").speak


def test_intense_action_holds_all_but_critical():
    d, clock = director(3)
    for _ in range(4):
        e = event("damage_taken", clock.t, 0.3)
        d.observe(e)
        clock.advance(0.5)
    v = consider(d, clock, "kill", 0.8)
    assert not v.speak and v.reason.startswith("intense")
    assert consider(d, clock, "low_health", 0.8, health=12).speak  # very low health: critical
    clock.advance(10)
    assert consider(d, clock, "kill", 0.8).speak  # calm again


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spam_limit_at_talkativeness_2(seed):
    """A busy minute of play: ≤ 1 unprompted line per 8 s on average, deaths included."""
    rng = random.Random(seed)
    d, clock = director(2)
    t0 = clock.t
    approved = []
    kinds = ["kill", "damage_taken", "pickup", "score_up", "low_health", "death"]
    while clock.t - t0 < 60.0:
        clock.advance(rng.uniform(0.3, 2.0))
        kind = rng.choice(kinds)
        v = consider(d, clock, kind, rng.uniform(0.5, 1.0), health=rng.choice([50, 15]))
        if v.speak:
            approved.append(clock.t)
            if d.allow_follow_up(Moment(kind, clock.t, critical=kind == "death")):
                approved.append(clock.t)
        if d.lull_due() is not None:
            approved.append(clock.t)
    assert 3 <= len(approved) <= 60 / 8, approved
    # …and in any 60 s window, never more than the cap.
    assert all(sum(1 for u in approved if t <= u < t + 60) <= 7 for t in approved)


def test_lulls_place_commentary_spaced_out():
    d, clock = director(2)
    consider(d, clock, "kill", 0.8)
    clock.advance(1.0)
    assert d.lull_due() is None  # action just happened
    e = event("death", clock.t, 1.0)
    d.observe(e)
    d.consider(moment_from_event(e, None))
    clock.advance(1.0)
    assert d.in_lull() == (False, "")  # the death screen starts after 1.5 s
    clock.advance(6.0)
    assert d.in_lull() == (True, "death screen")
    v = d.lull_due()
    assert v is not None and v.speak and "death screen" in v.reason
    clock.advance(5.0)
    assert d.lull_due() is None  # commentary is spaced by lull_every_s
    clock.advance(TALK[2].lull_every_s)
    assert d.lull_due() is not None
    # Play resumes: no more lull.
    d.observe(event("kill", clock.t, 0.5))
    assert d.in_lull()[0] is False
    # A menu is a lull at once; a long quiet stretch is one too.
    d.observe(event("scene_change", clock.t, 0.4, scene="menu"))
    assert d.in_lull() == (True, "menu screen")
    d2, clock2 = director(2)
    d2.observe(event("pickup", clock2.t, 0.3))  # quiet counts once something happened
    clock2.advance(11)
    assert d2.in_lull()[0] and "quiet" in d2.in_lull()[1]


def line(text, priority, *, deadline=None, event_=None):
    return Line(text=text, priority=priority, deadline=deadline, event=event_)


def test_queue_one_at_a_time_priority_preemption_and_cut():
    d, clock = director(2)
    e_pick, e_death, e_talk = (event(k, clock.t) for k in ("pickup", "death", "lull"))
    comment = line("what a place", 0.2, event_=e_talk)
    assert d.offer(comment).queued
    assert d.next_line() is comment
    assert d.next_line() is None  # never two lines at once
    pick = line("nice find", 0.3, event_=e_pick)
    offer = d.offer(pick)
    assert offer.queued and offer.cut is None  # 0.3 does not outrank 0.2 by the margin
    death = line("oh no", 0.9, event_=e_death)
    follow = line("that imp got you", 0.9, event_=e_death)
    offer = d.offer(death)
    assert offer.cut is comment  # the session cuts the commentary
    assert offer.dropped == (pick,)  # the queued lower line of another moment is pre-empted
    d.offer(follow)
    d.finished(comment)
    assert d.next_line() is death
    d.finished(death)
    assert d.next_line() is follow  # same moment: kept, in order
    assert d.stats.preempted == 1 and d.stats.cut == 1


def test_stale_lines_are_dropped_never_played_late():
    d, clock = director(2)
    first = line("playing", 0.5)
    d.offer(first)
    assert d.next_line() is first
    late = line("ouch", 0.4, deadline=clock.t + 1.5)
    d.offer(late)
    clock.advance(2.0)  # the moment passes while the first line plays
    d.finished(first)
    assert d.next_line() is None
    assert d.stats.dropped_stale == 1
    assert not d.offer(line("too late", 0.4, deadline=clock.t - 0.1)).queued
    assert d.stats.dropped_stale == 2


def test_player_answer_cuts_commentary_but_not_a_death_reaction():
    d, clock = director(2)
    d.offer(line("idle chatter", 0.2, event_=event("lull", clock.t)))
    playing = d.next_line()
    answer = line("the key is behind you", 1.0, event_=event("player_message", clock.t))
    assert d.offer(answer).cut is playing
    d.finished(playing)
    assert d.next_line() is answer
    d.finished(answer)
    d.offer(line("oh no", 0.9, event_=event("death", clock.t)))
    playing = d.next_line()
    assert d.offer(line("sure", 1.0, event_=event("player_message", clock.t))).cut is None


def test_a_long_grind_is_a_lull_but_busy_action_is_not():
    d, clock = director(2)
    for _ in range(25):  # 50 s of steady, unremarkable action
        d.observe(event("pickup", clock.t, 0.3))
        clock.advance(2.0)
    assert d.in_lull()[0] and "grinding" in d.in_lull()[1]
    d.observe(event("kill", clock.t, 0.8))  # something notable: not a grind any more
    assert d.in_lull()[0] is False
