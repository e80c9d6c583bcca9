"""`couchmate bench router --session DIR`: replay a recorded session through the mind.

The recorded states and events (a `watch --record` folder, or the `watch/` folder inside
a demo or play session) go through a fresh Mind in time order, and every line it decides
to say plays on a simulated voice, so cooldowns, pre-emption and staleness act as live.
Reported: the path mix (reflex / fast / smart) and the router's reasons, budget misses
(a line whose first token came after its moment's first-reaction budget, plus lines the
director dropped as stale), and latency per path (event → first token).

Without configured models the replay runs in virtual time (instant, deterministic); with
models it runs in real time against them, at the recorded pace.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from couchmate.bench.local_models import models_for_bench
from couchmate.bench.stats import percentiles, print_table
from couchmate.errors import UserError
from couchmate.types import now


def recording_folder(session: Path) -> Path:
    """The watch recording inside `session` (itself, or its watch/ subfolder)."""
    for folder in (session, session / "watch"):
        if (folder / "meta.json").is_file():
            return folder
    raise UserError(
        f"{session} holds no recorded session (no meta.json)",
        hint="record one with `couchmate watch --record DIR` or `couchmate demo --out DIR`",
    )


def run(session: Path, *, model_server: str = "none", seed: int = 0) -> dict[str, Any]:
    return asyncio.run(_run(Path(session), model_server, seed))


async def _run(session: Path, model_server: str, seed: int) -> dict[str, Any]:
    from couchmate import config
    from couchmate.watch.record import Recording

    recording = Recording(recording_folder(session))
    if not recording.state_records() and not recording.event_records():
        raise UserError(f"{session}: the recording has no states or events")
    settings = config.load().settings
    with models_for_bench(settings, model_server) as which:
        return await _replay(settings, recording, which, seed)


async def _replay(settings: Any, recording: Any, which: str, seed: int) -> Any:
    from couchmate.mind.mind import Mind
    from couchmate.mind.replay import ReplayClock, replay, updates_from
    from couchmate.models.backends import Backends

    backends = Backends.from_settings(settings)
    realtime = bool(backends.all())
    # Real time: the recorded times move onto the live clock, so staleness and budgets hold.
    t0 = now() + 0.2 if realtime else 0.0
    updates = updates_from(recording.states(t0), recording.events(t0))
    clock = None if realtime else ReplayClock(updates[0].t)
    kwargs: dict[str, Any] = {"seed": seed}
    if clock is not None:
        kwargs["clock"] = clock
    mind = Mind.from_settings(settings, backends=backends, **kwargs)
    try:
        report = await replay(updates, mind, clock=clock, realtime=realtime)
    finally:
        await mind.aclose()
        await backends.aclose()
    return _summarise(report, mind, which, recording)


def _summarise(report: Any, mind: Any, models: str, recording: Any) -> dict[str, Any]:
    decisions = {id(m.event): d for m, d in mind.decisions if m.event is not None}
    reasons = Counter(d.reason.split(";")[0] for _, d in mind.decisions)
    latency: dict[str, list[float]] = {}
    misses = Counter[str]()
    for s in report.spoken:
        line = s.line
        t0 = line.timing.get("evented")
        first = line.timing.get("first_token")
        if t0 is None or first is None:
            continue
        latency.setdefault(line.path, []).append((first - t0) * 1000.0)
        d = decisions.get(id(line.event))
        if d is None:
            continue
        # A model line that follows a reflex line answers to the follow-up budget.
        follow = line.path != "reflex" and d.reflex_first
        budget = d.model_budget_s if follow else d.budget_s
        if first - t0 > budget:
            misses[line.path] += 1
    # A streamed reply is spoken clause by clause; it is still one line of the companion's.
    said: dict[tuple[int, str], str] = {}
    for s in report.spoken:
        kind = s.line.event.kind if s.line.event is not None else "none"
        said.setdefault((id(s.line.event), s.line.path), kind)
    unprompted = sum(1 for kind in said.values() if kind != "player_message")
    summary = report.summary()
    director = mind.director.stats.as_dict()
    result = {
        "session": str(recording.folder),
        "models": models,
        "mode": "virtual time" if models == "none" else "real time",
        "seconds": summary["seconds"],
        "lines": len(said),
        "pieces": summary["lines"],
        "unprompted": unprompted,
        "seconds_per_unprompted_line": round(summary["seconds"] / unprompted, 2)
        if unprompted
        else None,
        "paths": dict(Counter(path for _, path in said)),
        "reasons": dict(reasons.most_common()),
        "budget_misses": {
            "late_first_token": dict(misses),
            "dropped_stale": director["dropped_stale"],
            "total": sum(misses.values()) + director["dropped_stale"],
        },
        "latency_ms": {path: percentiles(v) for path, v in sorted(latency.items())},
        "cut": summary["cut"],
        "director": director,
        "events": dict(Counter(e.kind for e in recording.events())),
    }
    _print(result)
    return result


def _print(r: dict[str, Any]) -> None:
    t = Table(
        title=f"router replay of {r['session']} (models: {r['models']}; {r['mode']}, "
        f"{r['seconds']:.0f} s)"
    )
    for col in ("path", "lines", "event→first token p50", "p95", "late"):
        t.add_column(col, justify="left" if col == "path" else "right")
    late = r["budget_misses"]["late_first_token"]
    for path, n in sorted(r["paths"].items()):
        p = r["latency_ms"].get(path, {"p50": 0.0, "p95": 0.0})
        t.add_row(path, str(n), f"{p['p50']:.1f} ms", f"{p['p95']:.1f} ms", str(late.get(path, 0)))
    print_table(t)
    why = Table(title="why (router's first reason)")
    why.add_column("reason")
    why.add_column("moments", justify="right")
    for reason, n in r["reasons"].items():
        why.add_row(reason, str(n))
    print_table(why)
    per = r["seconds_per_unprompted_line"]
    print_table(
        _kv(
            "summary",
            {
                "events in the recording": sum(r["events"].values()),
                "lines (unprompted)": f"{r['lines']} ({r['unprompted']})",
                "seconds per unprompted line": "–" if per is None else f"{per:.1f}",
                "budget misses (late + stale)": r["budget_misses"]["total"],
                "cut": r["cut"],
            },
        )
    )


def _kv(title: str, rows: dict[str, Any]) -> Table:
    t = Table(title=title, show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    for k, v in rows.items():
        t.add_row(k, str(v))
    return t
