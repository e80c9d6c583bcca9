"""The router: a table of moments × backend health → path, reflex-first, fallback, reason."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from couchmate.mind.moments import Moment
from couchmate.mind.router import (
    BackendView,
    Router,
    RouterPolicy,
    question_difficulty,
    route,
)
from couchmate.models.health import BackendHealth, HealthOptions

FAST_GPU = BackendView("fast", True, 0.08)
SMART_GPU = BackendView("smart", True, 0.4, vision=True)
FAST_CPU = BackendView("fast", True, 0.9)
SMART_CPU = BackendView("smart", True, 2.6, vision=True)
SMART_SLOW = BackendView("smart", True, 4.5, vision=True)
FAST_DOWN = BackendView("fast", False, 0.08, note="circuit open")
SMART_DOWN = BackendView("smart", False, 0.4, note="circuit open")
FAST_FLAKY = BackendView("fast", True, 0.08, error_rate=0.6)


def m(kind, *, salience=0.7, novel=False, lull=False, difficulty=0.0, question=""):
    return Moment(
        kind, 0.0, salience, novel=novel, lull=lull, difficulty=difficulty, question=question
    )


@dataclass
class Case:
    name: str
    moment: Moment
    backends: tuple[BackendView, ...]
    path: str
    reflex_first: bool
    fallback: tuple[str, ...]
    reason_has: str


CASES = [
    Case("no models: reflex", m("death", salience=1.0), (), "reflex", False, (), "not configured"),
    Case(
        "kill is a reflex moment",
        m("kill"),
        (FAST_GPU, SMART_GPU),
        "reflex",
        False,
        (),
        "reflex moment",
    ),
    Case(
        "death, GPU: smart analysis needs > 0.3 s → reflex first, smart follow-up",
        m("death", salience=1.0),
        (FAST_GPU, SMART_GPU),
        "smart",
        True,
        ("fast", "reflex"),
        "fits follow-up",
    ),
    Case(
        "death, low salience: fast fits 0.3 s directly",
        m("death", salience=0.6),
        (FAST_GPU, SMART_GPU),
        "fast",
        False,
        ("reflex",),
        "fast ~0.08s fits 0.30s",
    ),
    Case(
        "death, CPU models: reflex now, fast follow-up (smart too slow for 3 s)",
        m("death", salience=1.0),
        (FAST_CPU, SMART_SLOW),
        "fast",
        True,
        ("reflex",),
        "smart ~4.50s > 0.30s",
    ),
    Case(
        "death, smart down: fast",
        m("death", salience=1.0),
        (FAST_CPU, SMART_DOWN),
        "fast",
        True,
        ("reflex",),
        "smart circuit open",
    ),
    Case(
        "death, everything down: reflex",
        m("death", salience=1.0),
        (FAST_DOWN, SMART_DOWN),
        "reflex",
        False,
        (),
        "fast circuit open",
    ),
    Case(
        "a flaky backend goes last",
        m("player_message"),
        (FAST_FLAKY, SMART_GPU),
        "smart",
        False,
        ("fast", "reflex"),
        "fast flaky (error rate 60%): last",
    ),
    Case(
        "…but is not locked out",
        m("player_message"),
        (FAST_FLAKY,),
        "fast",
        False,
        ("reflex",),
        "flaky",
    ),
    Case(
        "simple question: fast (smart fits the patience too, so it is the fallback)",
        m("player_message", difficulty=0.1),
        (FAST_CPU, SMART_CPU),
        "fast",
        False,
        ("smart", "reflex"),
        "simple question",
    ),
    Case(
        "hard question: smart fits 3 s, slow start → thinking line first",
        m("player_message", difficulty=0.8),
        (FAST_CPU, SMART_CPU),
        "smart",
        True,
        ("fast", "reflex"),
        "hard question",
    ),
    Case(
        "hard question, slow smart model: waited for (patience 8 s), thinking line first",
        m("player_message", difficulty=0.8),
        (FAST_CPU, SMART_SLOW),
        "smart",
        True,
        ("fast", "reflex"),
        "smart ~4.50s fits patience 8.00s",
    ),
    Case(
        "hard question, smart slower than the patience: fast",
        m("player_message", difficulty=0.8),
        (FAST_CPU, BackendView("smart", True, 9.0)),
        "fast",
        False,
        ("reflex",),
        "smart ~9.00s > patience 8.00s",
    ),
    Case(
        "question, no model: reflex fallback answer",
        m("player_message", difficulty=0.9),
        (),
        "reflex",
        False,
        (),
        "reflex",
    ),
    Case(
        "new scene: smart (vision)",
        m("scene_change", novel=True),
        (FAST_CPU, SMART_CPU),
        "smart",
        True,
        ("fast", "reflex"),
        "new scene",
    ),
    Case(
        "scene seen before: reflex",
        m("scene_change", novel=False),
        (FAST_GPU, SMART_GPU),
        "reflex",
        False,
        (),
        "seen before",
    ),
    Case(
        "lull commentary: smart",
        m("lull"),
        (FAST_CPU, SMART_CPU),
        "smart",
        True,
        ("fast", "reflex"),
        "commentary",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_route_table(case):
    d = route(case.moment, {b.path: b for b in case.backends})
    assert (d.path, d.reflex_first, d.fallback) == (case.path, case.reflex_first, case.fallback), d
    assert case.reason_has in d.reason, d.reason
    assert d.budget_s == case.moment.first_budget_s
    if d.path != "reflex":
        assert d.fallback[-1] == "reflex"
        # The chosen model is expected to start inside the budget it was given.
        assert d.expected_s + 0.2 <= d.model_budget_s + 1e-9


def test_route_is_pure():
    backends = {"fast": FAST_CPU, "smart": SMART_CPU}
    moment = m("death", salience=1.0)
    assert route(moment, backends) == route(moment, backends)


def test_images_only_for_vision_backends_on_visual_moments():
    d = route(m("scene_change", novel=True), {"smart": SMART_CPU})
    assert d.wants_images
    d = route(m("scene_change", novel=True), {"smart": BackendView("smart", True, 1.0)})
    assert d.path == "smart" and not d.wants_images
    d = route(m("player_message", difficulty=0.9), {"smart": SMART_CPU})
    assert not d.wants_images


def test_policy_changes_the_ack_threshold():
    d = route(m("player_message"), {"fast": FAST_CPU}, RouterPolicy(ack_after_s=0.5))
    assert d.path == "fast" and d.reflex_first
    d = route(m("player_message"), {"fast": FAST_CPU}, RouterPolicy(ack_after_s=2.0))
    assert not d.reflex_first


def test_health_snapshots_feed_the_router():
    """Real BackendHealth: the fitted TTFT line decides; an open breaker routes around."""
    clock = [0.0]
    health = BackendHealth(
        "fast",
        HealthOptions(failure_threshold=2, cooldown_s=10, prior_ttft_s=1.0),
        clock=lambda: clock[0],
    )
    view = BackendView.from_health("fast", health.snapshot(), prior_s=1.0, vision=False)
    # The prior before any sample (cautious: its default spread), growing with size.
    assert 1.0 <= view.ttft_at(500) <= 1.5 and view.ttft_at(100) < view.ttft_at(500)
    for _ in range(10):
        for n in (50, 400):
            health.record_ttft(0.05 + 0.002 * n, tokens=n)
    view = BackendView.from_health("fast", health.snapshot(), prior_s=1.0, vision=False)
    assert view.ttft_at(400) == pytest.approx(0.85, rel=0.25)
    assert view.ttft_at(50) < 0.4
    for _ in range(2):
        health.record_failure(health.acquire(), RuntimeError("refused"))
    view = BackendView.from_health("fast", health.snapshot(), prior_s=1.0, vision=False)
    d = route(m("player_message"), {"fast": view})
    assert d.path == "reflex" and "circuit open" in d.reason


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("hi!", 0.0, 0.0),
        ("lol", 0.0, 0.0),
        ("谢谢", 0.0, 0.0),
        ("what's that?", 0.05, 0.3),
        ("how do I beat the boss on this level?", 0.5, 1.0),
        ("为什么我总是在这个关卡死掉？应该怎么打这个boss？", 0.5, 1.0),
        ("このボスはどうやって倒せばいい？", 0.5, 1.0),
        (
            "which weapon should I use against the cyberdemon, and where is the secret key?",
            0.7,
            1.0,
        ),
    ],
)
def test_question_difficulty(text, low, high):
    assert low <= question_difficulty(text) <= high


def test_router_remembers_scenes_and_records_decisions():
    r = Router(max_scenes=2)
    assert r.novel("e1m1") and not r.novel("e1m1")
    assert not r.novel(None) and not r.novel("")
    r.novel("e1m2")
    r.novel("e1m3")  # evicts e1m1 (least recently seen)
    assert r.novel("e1m1")
    # Without a name: a perceptual hash of the keyframe, tolerant of small changes.
    rng = np.random.default_rng(0)
    room = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8).repeat(10, 0).repeat(10, 1)
    other = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8).repeat(10, 0).repeat(10, 1)
    assert r.novel_image(room)
    noisy = np.clip(room.astype(int) + rng.integers(-6, 7, room.shape), 0, 255).astype(np.uint8)
    noisy[-60:] = 0  # a HUD strip changed
    assert not r.novel_image(noisy)
    assert r.novel_image(other)
    d = r.decide(m("death", salience=1.0), {"fast": FAST_CPU})
    assert r.stats.paths["fast"] == 1 and r.stats.reflex_first == 1
    assert r.log[-1].reason == d.reason and r.log[-1].kind == "death"
