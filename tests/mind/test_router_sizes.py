"""The router with TTFT by prompt size: a CPU model gets a short prompt and makes budgets a
single TTFT figure said it could not; a question waits for the model up to the patience."""

from __future__ import annotations

import pytest

from couchmate.mind.moments import Moment
from couchmate.mind.router import BackendView, RouterPolicy, route
from couchmate.models.health import BackendHealth, HealthOptions


def cpu_model(path="fast") -> BackendView:
    """SmolLM2-135M on one CPU core, as BackendHealth learns it from its calls."""
    h = BackendHealth(path, HealthOptions(prior_ttft_s=1.0))
    for _ in range(10):
        for n in (60, 200, 450, 800):
            h.record_ttft(0.1 + 0.005 * n, tokens=n)
    return BackendView.from_health(path, h.snapshot(), prior_s=1.0, vision=False)


GPU = BackendView("fast", True, 0.05, per_token_s=0.00005)


def q(text="what should I do now?", *, small=80, full=900, difficulty=0.1) -> Moment:
    return Moment(
        "player_message",
        0.0,
        1.0,
        question=text,
        difficulty=difficulty,
        min_tokens=small,
        full_tokens=full,
    )


def test_a_cpu_model_answers_a_question_with_a_prompt_sized_for_it():
    """The user's failure: one TTFT figure for 600–900-token prompts (2.7 s, p95 higher)
    against a 2.5 s budget sent every question to the canned reply. Sized for the model,
    the question goes to it with a prompt it can start on within about a second and a half."""
    b = cpu_model()
    d = route(q(), {"fast": b})
    assert d.path == "fast", d.reason
    assert 80 <= d.prompt_tokens < 300, d
    assert d.expected_s <= RouterPolicy().quick_s
    # Its full-size figure alone (what the old router saw) is over the old 2.5 s budget.
    assert b.ttft_at(900) > 2.5


def test_a_fast_model_gets_the_whole_prompt():
    d = route(q(), {"fast": GPU})
    assert d.path == "fast" and d.prompt_tokens == 900 and not d.reflex_first


@pytest.mark.parametrize(("patience", "path"), [(8.0, "fast"), (3.0, "reflex")])
def test_a_question_waits_for_the_model_up_to_the_patience(patience, path):
    slow = BackendView("fast", True, 5.0)  # 5 s to start even on the smallest prompt
    d = route(q(), {"fast": slow}, RouterPolicy(answer_patience_s=patience))
    assert d.path == path, d.reason
    if path == "fast":
        assert d.reflex_first  # a short acknowledgement while the answer comes
        assert d.model_budget_s == patience
        assert "patience 8.00s" in d.reason
    else:
        assert "> patience 3.00s" in d.reason


def test_event_moments_size_their_prompt_to_the_follow_up_budget():
    death = Moment("death", 0.0, 1.0, min_tokens=120, full_tokens=700)
    d = route(death, {"fast": cpu_model()})
    # 0.3 s is too short for a CPU model: a reflex line now, the model's line after.
    assert d.path == "fast" and d.reflex_first and d.model_budget_s == 3.0
    assert d.expected_s + 0.2 <= 3.0 and d.prompt_tokens < 300


def test_a_greeting_fits_with_a_short_prompt_where_the_full_one_would_not():
    hello = Moment("greeting", 0.0, 0.75, min_tokens=40, full_tokens=900)
    b = cpu_model()
    assert b.ttft_at(900) + 0.2 > 3.0  # the full prompt misses even the follow-up budget
    d = route(hello, {"fast": b})
    assert d.path == "fast" and d.prompt_tokens < 300


def test_pictures_only_when_they_fit_the_window():
    scene = Moment("scene_change", 0.0, 0.6, novel=True, min_tokens=100, full_tokens=400)
    fits = BackendView("smart", True, 0.2, vision=True, per_token_s=0.0005, image_tokens=1200)
    assert route(scene, {"smart": fits}).wants_images
    slow = BackendView("smart", True, 0.2, vision=True, per_token_s=0.004, image_tokens=1200)
    d = route(scene, {"smart": slow})
    assert d.path == "smart" and not d.wants_images
