"""Measure the HUD reader on real engine frames: per-field accuracy, read() latency with and
without the unchanged-box skip, OCR calls per frame, events. Offline (every generated frame
is read; the engine's time is not counted), so it isolates the reader from the pipeline.

    .venv/bin/python scripts/measure_reader.py --frames 300
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from couchmate.types import Frame
from couchmate.watch.events import EventEngine
from couchmate.watch.profile import load_profile
from couchmate.watch.reader import UNREADABLE, Reader
from couchmate.watch.testing import ATARI_PROFILES, atari_frames, doom_frames


def run_one(profile_name: str, frames: list[Frame], skip: bool) -> dict[str, Any]:
    prof = load_profile(profile_name)
    reader = Reader(prof, skip_unchanged=skip)
    reader.warm()
    engine = EventEngine(prof)
    lat: list[float] = []
    obs_ok: dict[str, list[bool]] = {}
    state_ok: dict[str, list[bool]] = {}
    events: list[str] = []
    for f in frames:
        f = Frame(image=f.image, t=f.t, source=f.source, index=f.index, truth=f.truth)
        t = time.perf_counter()
        state = reader.read(f)
        lat.append((time.perf_counter() - t) * 1000)
        events += [e.kind for e in engine.update(state)]
        for name in prof.fields:
            if name not in (f.truth or {}) or (name == "ammo" and f.truth.get("switching")):
                continue
            want = f.truth[name]
            o = reader.last_observation(name)
            if o is not None and o[0] is not UNREADABLE:
                obs_ok.setdefault(name, []).append(o[0] == want)
            state_ok.setdefault(name, []).append(state.value(name, UNREADABLE) == want)
    n = len(frames)
    return {
        "profile": profile_name,
        "skip": skip,
        "frames": n,
        "read_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "read_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "ocr_calls_per_frame": round(reader.stats.ocr_calls / n, 3),
        "boxes_read_per_frame": round(reader.stats.boxes_read / n, 3),
        "read_accuracy": {k: round(float(np.mean(v)), 4) for k, v in obs_ok.items()},
        "read_n": {k: len(v) for k, v in obs_ok.items()},
        "state_accuracy": {k: round(float(np.mean(v)), 4) for k, v in state_ok.items()},
        "events": {k: events.count(k) for k in sorted(set(events))},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument(
        "--games", default="doom,doom-deathmatch,pong,breakout,ms_pacman,space_invaders"
    )
    ap.add_argument("--resolution", default="640X480")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-baseline-skip", action="store_true", help="only the skip run")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = []
    for game in args.games.split(","):
        if game.startswith("doom"):
            frames = list(
                doom_frames(
                    args.frames,
                    hud=game,
                    resolution=args.resolution,
                    seed=args.seed,
                    suicide=0.002 if game == "doom-deathmatch" else 0.0,
                )
            )
            prof = game
        else:
            frames = list(atari_frames(game, args.frames, seed=args.seed))
            prof = ATARI_PROFILES[game]
        for skip in (True,) if args.no_baseline_skip else (True, False):
            r = run_one(prof, frames, skip)
            out.append(r)
            print(json.dumps(r))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
