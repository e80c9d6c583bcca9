"""Measure the HUD reader on real engine frames, offline: every generated frame is read
(the engine's own time is not counted), which isolates the reader from the pipeline.

Per game: field accuracy (the value in each state against the engine's value at the
frame the value was last seen in, FieldReading.t, as the perception bench scores),
read() latency p50/p95 with and without the unchanged-box skip, OCR calls and boxes read
per frame, event F1 against the same rules over the engine's values, and a naive reader's
latency (full-frame rapidocr detection + recognition) on a sample of the same frames.

    .venv/bin/python scripts/measure_reader.py --frames 300 --json /tmp/reader.json
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from couchmate.types import Event, Frame
from couchmate.watch.events import EventEngine
from couchmate.watch.ocr import shared_ocr
from couchmate.watch.profile import load_profile
from couchmate.watch.reader import Reader
from couchmate.watch.testing import (
    ATARI_PROFILES,
    atari_frames,
    doom_frames,
    event_scores,
    fresh,
    truth_events,
)

GAMES = "doom,doom-deathmatch,pong,breakout,ms_pacman,space_invaders"


def run_one(profile: str, frames: list[Frame], skip: bool) -> dict[str, Any]:
    prof = load_profile(profile)
    reader = Reader(prof, skip_unchanged=skip)
    reader.warm()
    engine = EventEngine(prof)
    by_t = {f.t: f.truth for f in frames}
    lat: list[float] = []
    hits: dict[str, list[bool]] = {}
    events: list[Event] = []
    for f in frames:
        f = fresh(f)
        t0 = time.perf_counter()
        state = reader.read(f)
        lat.append((time.perf_counter() - t0) * 1000)
        events += engine.update(state)
        for name in prof.fields:
            if name not in f.truth:
                continue
            r = state.fields.get(name)
            truth = by_t[r.t] if r is not None else f.truth
            if name == "ammo" and truth.get("switching"):
                continue
            hits.setdefault(name, []).append(r is not None and r.value == truth[name])
    n = len(frames)
    return {
        "profile": profile,
        "skip_unchanged": skip,
        "frames": n,
        "read_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "read_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "read_ms_max": round(float(np.max(lat)), 2),
        "ocr_calls_per_frame": round(reader.stats.ocr_calls / n, 3),
        "boxes_read_per_frame": round(reader.stats.boxes_read / n, 3),
        "accuracy": {k: round(float(np.mean(v)), 4) for k, v in hits.items()},
        "events": _events(events, truth_events(profile, frames)),
    }


def _events(ours: list[Event], truth: list[Event]) -> dict[str, float]:
    return {**event_scores(ours, truth, tolerance_s=0.5), "ours": len(ours), "truth": len(truth)}


def naive_ms(frames: list[Frame], sample: int) -> dict[str, float]:
    ocr = shared_ocr()
    lat = []
    for f in frames[:: max(1, len(frames) // sample)][:sample]:
        t0 = time.perf_counter()
        ocr.read_text(f.image)
        lat.append((time.perf_counter() - t0) * 1000)
    return {"p50": round(float(np.median(lat)), 1), "p95": round(float(np.percentile(lat, 95)), 1)}


def frames_for(game: str, n: int, seed: int, resolution: str) -> tuple[str, list[Frame]]:
    if game.startswith("doom"):
        suicide = 0.004 if game == "doom-deathmatch" else 0.0
        kw: dict[str, Any] = {"tics": 3, "gifts": 0.04} if game == "doom" else {"dead_tics": 50}
        frames = doom_frames(n, hud=game, resolution=resolution, seed=seed, suicide=suicide, **kw)
        return game, list(frames)
    return ATARI_PROFILES[game], list(atari_frames(game, n, seed=seed, every=4))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--games", default=GAMES)
    ap.add_argument("--resolution", default="640X480")
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--naive", type=int, default=8, help="frames for the naive reader")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = []
    for game in args.games.split(","):
        profile, frames = frames_for(game, args.frames, args.seed, args.resolution)
        for skip in (True, False):
            r = run_one(profile, frames, skip)
            if skip and args.naive:
                r["naive_full_frame_ms"] = naive_ms(frames, args.naive)
            out.append(r)
            print(json.dumps(r), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
