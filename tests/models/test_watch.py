"""FailureWatch: one warning when a backend starts failing, one line when it recovers."""

from __future__ import annotations

from couchmate.errors import BackendUnavailable, BudgetExceeded, ModelError
from couchmate.models.watch import BackendEventKind, FailureWatch, short_reason
from tests.mind.support import FakeClock

REFUSED = ModelError(
    "model 'fast' could not be reached: connection refused",
    hint="is the model server running at http://127.0.0.1:9/v1? (connection refused)",
)


def _watch(clock: FakeClock | None = None) -> tuple[FailureWatch, list]:
    watch = FailureWatch("fast", base_url="http://127.0.0.1:9/v1", clock=clock or FakeClock())
    events: list = []
    watch.subscribe(events.append)
    return watch, events


def test_many_failures_one_warning_then_one_recovery_line():
    watch, events = _watch()
    for _ in range(10):
        watch.failed(REFUSED)
    watch.failed(BackendUnavailable("model backend 'fast' is paused after 3 failures"))
    assert [e.kind for e in events] == [BackendEventKind.FAILING]
    warning = events[0]
    assert warning.warning and warning.backend == "fast"
    assert "connection refused" in warning.message and "talking on" in warning.message
    assert warning.hint == REFUSED.hint and REFUSED.hint in warning.line
    assert watch.failing and watch.reason == "connection refused"
    watch.succeeded()
    watch.succeeded()
    assert [e.kind for e in events] == [BackendEventKind.FAILING, BackendEventKind.RECOVERED]
    assert not events[1].warning and not watch.failing and watch.reason == ""
    assert events[0].id != events[1].id


def test_a_flapping_backend_is_not_announced_again_within_the_quiet_time():
    clock = FakeClock()
    watch, events = _watch(clock)
    watch.failed(REFUSED)
    watch.succeeded()
    clock.advance(5)
    watch.failed(ModelError("model 'fast' failed with HTTP 503: busy", status=503))
    assert watch.failing and watch.reason == "HTTP 503"  # the panel still shows it
    watch.succeeded()
    assert len(events) == 2  # the second outage and its recovery were silent
    clock.advance(watch.quiet_s + 1)
    watch.failed(REFUSED)
    assert [e.kind for e in events][-1] is BackendEventKind.FAILING and len(events) == 3


def test_calls_cut_by_their_budget_warn_once_as_a_stall():
    watch, events = _watch()
    cut = BudgetExceeded("model 'fast' gave no first token within 0.80s", budget_s=0.8)
    watch.failed(cut)
    watch.failed(cut)
    assert events == [] and not watch.failing  # a slow call or two is no news
    watch.failed(cut)
    assert [e.kind for e in events] == [BackendEventKind.STALLED]
    assert "3 calls in a row" in events[0].message and events[0].hint
    watch.failed(cut)
    watch.failed(REFUSED)  # a stuck server that then dies: still the one warning
    assert len(events) == 1 and watch.reason == "connection refused"
    watch.succeeded()
    assert events[-1].kind is BackendEventKind.RECOVERED


def test_a_success_between_budget_cuts_resets_the_stall_count():
    watch, events = _watch()
    cut = BudgetExceeded("no first token", budget_s=0.8)
    for _ in range(5):
        watch.failed(cut)
        watch.failed(cut)
        watch.succeeded()
    assert events == []


def test_the_probes_finding_is_not_warned_twice():
    watch, events = _watch()
    watch.mark_failing("connection refused")
    watch.failed(REFUSED)
    assert events == [] and watch.failing
    watch.succeeded()
    assert [e.kind for e in events] == [BackendEventKind.RECOVERED]


def test_a_subscriber_that_raises_does_not_break_the_call_or_the_others():
    watch, events = _watch()

    def broken(event):
        raise RuntimeError("panel gone")

    watch.subscribers.insert(0, broken)
    watch.failed(REFUSED)
    assert len(events) == 1


def test_short_reasons_fit_a_panel():
    assert short_reason(REFUSED) == "connection refused"
    assert short_reason(ModelError("model 'fast' failed with HTTP 500: x", status=500)) == (
        "HTTP 500"
    )
    assert short_reason(BudgetExceeded("x", budget_s=1.25)) == "no reply in 1.2 s"
    broke = ModelError("model 'fast': the connection broke (peer closed connection)")
    assert short_reason(broke) == "peer closed connection"
    assert len(short_reason(ModelError("model 'fast' " + "x" * 300))) <= 48
