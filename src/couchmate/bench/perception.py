"""`couchmate bench perception`: the watching pipeline against the engine's ground truth.

How it measures (and what that means):

1. Ours: the engine source runs in real time (as a player sees it) through `WatchPipeline`
   with the source's profile. Every field of every GameState is compared (exact match) with
   the truth of the frame it was read from: `FieldReading.t`, the latest frame whose pixels
   showed that value (`fields[f].accuracy`). `accuracy_at_state` compares with the frame the
   state was made from instead; it is lower by the frames where a changed value waits for
   the reader's confirming frame. `accuracy_held` compares every captured frame (not only
   keyframes) with the latest state made from it or an earlier frame: lower again by the
   frames a change takes to reach a state, and by any change the gate let pass unread. A
   profile field is compared with the truth key of the same name (`TRUTH_KEYS` lists the
   exceptions); fields the engine has no truth for are not scored, and a field missing from
   a state counts as a miss (the first states of a run: nothing is confirmed yet).
   `fields[f].misses` lists the wrong readings (up to MAX_MISSES: frame, what was read,
   the raw text, the truth).
2. Events: the truth of every captured frame (not only the keyframes) is turned into a
   GameState with confidence 1 and fed to a fresh `EventEngine` with the SAME profile
   rules (guards, cooldowns, `guard_for_s`). Those are the expected events; the pipeline's
   events are matched to them one to one by kind within `tolerance_s` (±0.5 s by default,
   nearest first) → precision, recall, F1, per kind in `by_kind`; `missed` and `spurious`
   list the unmatched events (seconds from the first frame, frame, the field's change), and
   `matched_dt_ms` how late the matched ones came. So F1 measures reading, keyframing,
   dropping and debouncing together, against an ideal observer that reads every frame
   perfectly. Gate signals (scene_change, idle) have no truth and are left out. A minute
   of Doom has 15 to 20 events: report several seeds, not one run.
3. Latency: per stage from each item's own marks (gate = captured→keyframed, reader_queue =
   keyframed→read_start, read = read_start→read, events = read→evented), capture_to_state
   for every state and capture_to_event for every event. `reader` has the reader's own
   counters: OCR calls (recogniser invocations) per state, boxes read, skipped (unchanged)
   and read from the glyph cache.
4. Baseline, side by side in the same process: the very keyframes our gate passed (the same
   images, at their original pace) go through the same pipeline with `NaiveOcrReader`
   (full-frame rapidocr on every keyframe, no profile; see bench/naive_ocr.py). Its fields
   are scored the same way; `speedup_p50` = baseline capture_to_state p50 / ours.
5. Truth alignment: a status bar can show the previous tic's values. On ViZDoom frames
   (three seeded minutes of the arena, every change of health, armor, ammo, frags and the
   ammo table checked by reading the frames before and after it) a change shows on the
   frame of the engine's change or on the next one: the status bar takes the player's
   values when the player thinks, so a hit from an actor that thinks later in the tic (and
   most firing) shows a frame late. Which of the two cannot be told from the engine's
   variables. `HUD_LAG_FRAMES` shifts these keys' truth by one frame: frame i is compared
   with the truth of frame i - 1. That scores both cases right, because readings are
   scored at `FieldReading.t`: a value seen first on frame i is committed on a later frame
   j > i and scored against the truth of j - 1 >= i, and an old value still read on frame
   i where the screen already changed is not possible (the screen showed the new value).
   Expected events use the same shifted truth (a frame, 29 ms, inside the tolerance).
   `truth_lag_frames` in the result says what was used; `run(truth_lag=0)` turns it off
   (strict per-frame truth).
6. `gate_ms_1280x720`: the change gate's own cost per frame, one thread, on the captured
   keyframes resized to 1280x720 (with the profile's HUD regions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console

from couchmate.bench.naive_ocr import BASELINE_FIELDS, NaiveOcrReader
from couchmate.bench.stats import latency_rows, match_in_time, percentiles, prf, print_table, table
from couchmate.config import WatchSettings
from couchmate.errors import UserError
from couchmate.sources.base import SOURCES, Source, open_source, parse_spec
from couchmate.types import Event, FieldReading, Frame, GameState, Timing, now
from couchmate.watch.keyframes import GateDecision, gate_cost_ms
from couchmate.watch.pipeline import SIGNAL_KINDS, WatchPipeline, WatchUpdate

log = logging.getLogger(__name__)

#: profile field → engine truth key (dotted for nested values), where they differ; a field
#: not listed is compared with the truth key of its own name.
TRUTH_KEYS: dict[str, str] = {
    # Doom's small ammo table right of the face: truth["ammo_table"][...]
    "bullets": "ammo_table.bullets",
    "shells": "ammo_table.shells",
    "rockets": "ammo_table.rockets",
    "cells": "ammo_table.cells",
    # Pong's right (green) score is the player's: the Atari source's `score`
    "player_score": "score",
}
#: source kind → truth key → frames the screen shows it late (see point 5 above)
HUD_LAG_FRAMES: dict[str, dict[str, int]] = {
    "doom": {
        **dict.fromkeys(("health", "armor", "ammo", "frags"), 1),
        **{f"ammo_table.{k}": 1 for k in ("bullets", "shells", "rockets", "cells")},
    },
}
#: events the gate raises from pixels alone; the engine has no truth for them
SIGNALS = SIGNAL_KINDS
#: latency entries reported per stage: name → (from mark, to mark)
STAGES = {
    "gate": ("captured", "keyframed"),
    "reader_queue": ("keyframed", "read_start"),
    "read": ("read_start", "read"),
    "capture_to_state": ("captured", "read"),
}
_GATE_SAMPLE = 120
MAX_MISSES = 25  # wrong readings listed per field in the result
_MISSING = object()  # keyframes resized to 1280x720 for the gate's cost figure


class _Tap(Source):
    """The engine source, passed through unchanged, remembering each frame's truth."""

    def __init__(self, inner: Source):
        super().__init__()
        self.inner = inner
        self.kind = inner.kind
        self.profile_hint = inner.profile_hint
        self.has_truth = inner.has_truth
        self.fps = inner.fps
        self.truth: dict[int, tuple[float, dict[str, Any]]] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    async def frames(self) -> AsyncIterator[Frame]:
        async for f in self.inner.frames():
            if f.truth is not None:
                self.truth[f.index] = (f.t, f.truth)
            yield f

    def close(self) -> None:
        self.inner.close()
        super().close()


class _Replay(Source):
    """Frames kept in memory, handed out again at their original pace (for the baseline)."""

    kind = "bench-replay"

    def __init__(self, frames: list[Frame], name: str):
        super().__init__()
        self._frames = frames
        self._name = name
        self.has_truth = True

    @property
    def name(self) -> str:
        return self._name

    async def frames(self) -> AsyncIterator[Frame]:
        if not self._frames:
            return
        t0 = self._frames[0].t
        start = now()
        for f in self._frames:
            delay = start + (f.t - t0) - now()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = Frame(
                image=f.image, t=f.t, source=f.source, index=f.index, timing=Timing(), truth=f.truth
            )
            frame.timing.mark("captured")
            yield frame


def _truth_value(truth: dict[str, Any], field: str) -> Any:
    """The engine's value for a profile field, or _MISSING when the engine has none."""
    value: Any = truth
    for part in TRUTH_KEYS.get(field, field).split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _profile_fields(profile: Any, size: tuple[int, int]) -> list[str]:
    names = [r[0] for r in profile.regions(*size)]
    return list(dict.fromkeys(names))


def _field_accuracy(
    states: list[GameState], truth: dict[int, tuple[float, dict[str, Any]]], fields: list[str]
) -> dict[str, dict[str, float]]:
    """Per field: `accuracy` against the frame the reading came from, `accuracy_at_state`
    against the frame the state was made from (lower when the reader holds a changed value
    for confirmation; the lag is what event latency measures)."""
    by_time = {t: (i, tr) for i, (t, tr) in truth.items()}
    out: dict[str, dict[str, Any]] = {}
    for name in fields:
        hits = hits_now = n = 0
        misses: list[dict[str, Any]] = []
        for st in states:
            now_truth = truth.get(st.frame_index)
            want = _MISSING if now_truth is None else _truth_value(now_truth[1], name)
            if want is _MISSING:
                continue
            n += 1
            reading = st.fields.get(name)
            if reading is None:
                if len(misses) < MAX_MISSES:
                    misses.append({"frame": st.frame_index, "read": "<missing>", "truth": want})
                continue
            hits_now += int(reading.value == want)
            seen_i, seen = by_time.get(reading.t, (st.frame_index, None))
            then = want if seen is None else _truth_value(seen, name)
            if reading.value == then:
                hits += 1
            elif len(misses) < MAX_MISSES:
                misses.append(
                    {
                        "frame": st.frame_index,
                        "read_frame": seen_i,
                        "read": reading.value,
                        "raw": reading.raw,
                        "confidence": round(reading.confidence, 3),
                        "truth": then,
                    }
                )
        if n:
            out[name] = {
                "accuracy": round(hits / n, 4),
                "accuracy_at_state": round(hits_now / n, 4),
                "accuracy_held": _held_accuracy(states, truth, name),
                "n": n,
                "misses": misses,
            }
    return out


def _held_accuracy(
    states: list[GameState], truth: dict[int, tuple[float, dict[str, Any]]], name: str
) -> float | None:
    """Every captured frame against the latest state made from it or an earlier frame
    (what a consumer holds then, reading time aside)."""
    made = sorted(states, key=lambda st: st.frame_index)
    hits = n = k = 0
    current: GameState | None = None
    for i in sorted(truth):
        while k < len(made) and made[k].frame_index <= i:
            current = made[k]
            k += 1
        want = _truth_value(truth[i][1], name)
        if current is None or want is _MISSING:
            continue
        n += 1
        reading = current.fields.get(name)
        hits += int(reading is not None and reading.value == want)
    return round(hits / n, 4) if n else None


def _truth_events(
    profile: Any, truth: dict[int, tuple[float, dict[str, Any]]], fields: list[str]
) -> list[Event]:
    from couchmate.watch.events import EventEngine

    engine = EventEngine(profile)
    out: list[Event] = []
    name = str(getattr(profile, "name", ""))
    for index in sorted(truth):
        t, tr = truth[index]
        st = GameState(game=name, t=t, frame_index=index)
        for f in fields:
            value = _truth_value(tr, f)
            if value is not _MISSING:
                st.fields[f] = FieldReading(value, 1.0, t, str(value))
        out.extend(e for e in engine.update(st) if e.kind not in SIGNALS)
    return out


def _latency(states: list[GameState], events: list[Event]) -> dict[str, dict[str, float]]:
    lat = {
        name: percentiles(st.timing.span_ms(a, b) for st in states)
        for name, (a, b) in STAGES.items()
    }
    lat["events"] = percentiles(e.timing.span_ms("read", "evented") for e in events)
    lat["capture_to_event"] = percentiles(e.timing.span_ms("captured", "evented") for e in events)
    return lat


def _event_row(e: Event, t0: float) -> dict[str, Any]:
    d = e.data
    return {
        "kind": e.kind,
        "t_s": round(e.t - t0, 3),
        "frame": e.frame_index,
        "change": [d.get("field"), d.get("from"), d.get("to")],
        "also": [[a.get("field"), a.get("from"), a.get("to")] for a in d.get("also", [])],
    }


def _event_scores(
    ours: list[Event], expected: list[Event], tolerance_s: float, t0: float = 0.0
) -> dict[str, Any]:
    pairs = match_in_time(
        [(e.kind, e.t) for e in ours], [(e.kind, e.t) for e in expected], tolerance_s
    )
    got_p = {i for i, _ in pairs}
    got_e = {j for _, j in pairs}
    scores: dict[str, Any] = prf(len(pairs), len(ours), len(expected))
    kinds = sorted({e.kind for e in ours} | {e.kind for e in expected})
    by_kind = {}
    for k in kinds:
        got = sum(1 for e in ours if e.kind == k)
        want = sum(1 for e in expected if e.kind == k)
        tp = sum(1 for i, _ in pairs if ours[i].kind == k)
        by_kind[k] = {**prf(tp, got, want), "pipeline": got, "truth": want}
    scores.update(
        n_pipeline=len(ours),
        n_truth=len(expected),
        tolerance_s=tolerance_s,
        by_kind=by_kind,
        # what went wrong, one row per event (t_s: seconds from the first captured frame)
        missed=[_event_row(e, t0) for j, e in enumerate(expected) if j not in got_e],
        spurious=[_event_row(e, t0) for i, e in enumerate(ours) if i not in got_p],
        matched_dt_ms=percentiles((ours[i].t - expected[j].t) * 1000.0 for i, j in pairs),
    )
    return scores


async def _collect(pipeline: WatchPipeline) -> tuple[list[WatchUpdate], str]:
    updates: list[WatchUpdate] = []
    error = ""
    try:
        async with pipeline:
            async for u in pipeline.updates():
                updates.append(u)
    except UserError:
        raise
    except Exception as e:  # a source dying mid-run: score what was read, say so
        error = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        log.warning("bench run ended early: %s", error)
    return updates, error


def _shift(
    truth: dict[int, tuple[float, dict[str, Any]]], lags: dict[str, int]
) -> dict[int, tuple[float, dict[str, Any]]]:
    """Frame i (its time) with each lagged truth key (dotted for nested values) taken from
    frame i - lag: what the frame's status bar shows."""
    if not any(lags.values()):
        return truth
    out = {}
    for i, (t, tr) in truth.items():
        shown = dict(tr)
        for key, lag in lags.items():
            earlier = truth.get(i - lag)
            if lag <= 0 or earlier is None:
                continue
            *parents, leaf = key.split(".")
            src, dst = earlier[1], shown
            for part in parents:
                if not isinstance(src, dict) or not isinstance(dst.get(part), dict):
                    break
                src = src.get(part)
                dst[part] = dict(dst[part])  # a copy: frame i's own truth stays as it was
                dst = dst[part]
            else:
                if isinstance(src, dict) and leaf in src:
                    dst[leaf] = src[leaf]
        out[i] = (t, shown)
    return out


async def _run(
    source: str,
    frames: int,
    baseline: bool,
    seed: int,
    tolerance_s: float,
    truth_lag: int | None,
) -> dict[str, Any]:
    if not SOURCES.get(parse_spec(source)[0]).has_truth:
        raise UserError(
            f"{source!r} has no ground truth", hint="use an engine source: doom or atari:GAME"
        )
    inner = open_source(source, realtime=True, seed=seed, max_frames=frames)
    family = inner.kind
    tap = _Tap(inner)
    keyframes: list[Frame] = []

    def keep(frame: Frame, _: GateDecision) -> None:
        keyframes.append(frame)

    settings = WatchSettings()
    ours = WatchPipeline(tap, "auto", settings, on_keyframe=keep)
    updates, error = await _collect(ours)
    stats = ours.stats()
    profile = ours.profile
    if profile is None or not updates:
        raise UserError(f"nothing was read from {source!r}", hint=error or None)
    states = [u.state for u in updates if u.state is not None]
    events = [e for u in updates if u.state is not None for e in u.events if e.kind not in SIGNALS]
    size = keyframes[0].size
    fields = _profile_fields(profile, size)
    lags = dict(HUD_LAG_FRAMES.get(family, {}))
    if truth_lag is not None:
        lags = dict.fromkeys(lags, truth_lag)
    truth = _shift(tap.truth, lags)
    expected = _truth_events(profile, truth, fields)
    t0 = min(t for t, _ in truth.values())

    result: dict[str, Any] = {
        "source": inner.name,
        "profile": ours.profile_name,
        "seed": seed,
        "frames": frames,
        "captured": stats.captured,
        "states": len(states),
        "truth_lag_frames": lags,
        "fields": _field_accuracy(states, truth, fields),
        "events": _event_scores(events, expected, tolerance_s, t0),
        "latency_ms": _latency(states, events),
        "keyframe_ratio": round(stats.keyframes / max(1, stats.captured), 4),
        "reader": _reader_stats(ours.reader, len(states)),
        "dropped": stats.dropped_total,
        "dropped_by_queue": stats.dropped,
        "keyframe_reasons": stats.reasons,
        "reader_errors": stats.reader_errors,
        "capture_fps": round(stats.captured / max(1e-6, _duration(states)), 2),
        "gate_ms_1280x720": gate_cost_ms(
            [f.image for f in keyframes[:_GATE_SAMPLE]], regions=profile.regions
        ),
        "error": error,
    }
    if baseline:
        result["baseline"] = await _baseline(
            family, profile, keyframes, truth, fields, expected, tolerance_s, t0, inner.name
        )
        ours_p50 = result["latency_ms"]["capture_to_state"]["p50"]
        base_p50 = result["baseline"]["latency_ms"]["capture_to_state"]["p50"]
        result["baseline"]["speedup_p50"] = round(base_p50 / ours_p50, 2) if ours_p50 else None
    _print(result)
    return result


def _reader_stats(reader: Any, states: int) -> dict[str, Any]:
    """The reader's own counters (OCR calls: recogniser invocations), per state read."""
    st = getattr(reader, "stats", None)
    if st is None:
        return {}
    out = {
        k: getattr(st, k)
        for k in ("frames", "ocr_calls", "boxes_read", "boxes_skipped", "cache_reads")
        if hasattr(st, k)
    }
    out["per_kind"] = dict(getattr(st, "per_kind", {}))
    out["ocr_calls_per_keyframe"] = round(out.get("ocr_calls", 0) / max(1, states), 3)
    return out


def _duration(states: list[GameState]) -> float:
    if len(states) < 2:
        return 1.0
    return max(1e-6, states[-1].t - states[0].t)


async def _baseline(
    family: str,
    profile: Any,
    keyframes: list[Frame],
    truth: dict[int, tuple[float, dict[str, Any]]],
    fields: list[str],
    expected: list[Event],
    tolerance_s: float,
    t0: float,
    name: str,
) -> dict[str, Any]:
    pipeline = WatchPipeline(
        _Replay(keyframes, f"{name} (baseline replay)"),
        profile,
        WatchSettings(),
        reader=lambda _profile: NaiveOcrReader(family, str(getattr(profile, "name", ""))),
        keep_all=True,
    )
    updates, error = await _collect(pipeline)
    stats = pipeline.stats()
    states = [u.state for u in updates if u.state is not None]
    events = [e for u in updates if u.state is not None for e in u.events if e.kind not in SIGNALS]
    return {
        "reader": "rapidocr full frame (det+rec), no profile",
        "attempts": list(BASELINE_FIELDS.get(family, ())),
        "keyframes": len(keyframes),
        "states": len(states),
        "fields": _field_accuracy(states, truth, fields),
        "events": _event_scores(events, expected, tolerance_s, t0),
        "latency_ms": _latency(states, events),
        "dropped": stats.dropped_total,
        "reader_errors": stats.reader_errors,
        "error": error,
    }


def _print(r: dict[str, Any]) -> None:
    console = Console(stderr=True)
    b = r.get("baseline", {})
    print_table(
        table(
            f"perception: {r['source']} (profile {r['profile']}), {r['captured']} frames, "
            f"{r['states']} states",
            ["field", "accuracy", "n", "baseline accuracy", "baseline n"],
            [
                [k, v["accuracy"], v["n"], *_pair(b.get("fields", {}).get(k))]
                for k, v in r["fields"].items()
            ],
        ),
        console,
    )
    ev, bev = r["events"], b.get("events", {})
    print_table(
        table(
            f"events (±{ev['tolerance_s']} s vs truth through the same rules)",
            ["", "precision", "recall", "f1", "pipeline", "truth"],
            [
                ["ours", ev["precision"], ev["recall"], ev["f1"], ev["n_pipeline"], ev["n_truth"]],
                *(
                    [
                        [
                            "baseline",
                            bev["precision"],
                            bev["recall"],
                            bev["f1"],
                            bev["n_pipeline"],
                            bev["n_truth"],
                        ]
                    ]
                    if bev
                    else []
                ),
            ],
        ),
        console,
    )
    rows = latency_rows(r["latency_ms"])
    if b:
        rows += [[f"baseline {row[0]}", *row[1:]] for row in latency_rows(b["latency_ms"])]
    print_table(table("latency (ms)", ["stage", "p50", "p95", "max", "n"], rows), console)
    g = r["gate_ms_1280x720"]
    console.print(
        f"keyframe ratio {r['keyframe_ratio']:.3f}, dropped {r['dropped']} "
        f"{r['dropped_by_queue']}, reader errors {r['reader_errors']}; gate at 1280x720 "
        f"p50 {g['p50']} ms p95 {g['p95']} ms (CPU p50 {g['cpu']['p50']} ms p95 "
        f"{g['cpu']['p95']} ms)" + (f"; speedup p50 {b.get('speedup_p50')}x" if b else "")
    )


def _pair(v: dict[str, float] | None) -> list[Any]:
    return [None, None] if v is None else [v["accuracy"], v["n"]]


def run(
    source: str = "doom",
    frames: int = 600,
    baseline: bool = True,
    seed: int = 0,
    *,
    tolerance_s: float = 0.5,
    truth_lag: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark (prints its tables) and return the JSON-able result.

    `truth_lag`: None uses HUD_LAG_FRAMES for the source; a number replaces each of its lags
    (0: compare every frame with its own engine truth).
    """
    if frames < 1:
        raise UserError("--frames must be at least 1")
    return asyncio.run(_run(source, frames, baseline, seed, tolerance_s, truth_lag))
