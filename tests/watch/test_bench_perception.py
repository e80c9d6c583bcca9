"""`couchmate bench perception` on the real engines: the JSON other tools read."""

from __future__ import annotations

import json

import pytest

from couchmate.bench import perception
from couchmate.errors import UserError

LATENCY_KEYS = {"p50", "p95", "max"}


def _check_common(r: dict, fields: set[str]) -> None:
    json.dumps(r)  # JSON-able as written by --json
    assert fields <= set(r["fields"])
    for v in r["fields"].values():
        assert 0.0 <= v["accuracy"] <= 1.0 and v["n"] > 0
    assert {"precision", "recall", "f1"} <= set(r["events"])
    lat = r["latency_ms"]
    assert {"capture_to_event", "capture_to_state", "gate", "reader_queue", "read"} <= set(lat)
    assert all(set(v) >= LATENCY_KEYS for v in lat.values())
    assert lat["capture_to_state"]["n"] == r["states"] > 0
    assert 0.0 < r["keyframe_ratio"] < 1.0
    assert isinstance(r["dropped"], int)
    assert r["gate_ms_1280x720"]["n"] > 0


def _check_baseline(r: dict) -> None:
    b = r["baseline"]
    assert {"fields", "latency_ms", "speedup_p50"} <= set(b)
    assert set(b["fields"]) == set(r["fields"])  # scored on the same fields
    assert b["states"] >= 1 and b["latency_ms"]["capture_to_state"]["n"] == b["states"]
    # Full-frame OCR is slower than reading a few HUD boxes; by how much is the bench's job.
    assert b["speedup_p50"] > 1.0


@pytest.mark.slow
def test_bench_perception_doom():
    r = perception.run("doom", frames=90, baseline=True, seed=0)
    _check_common(r, {"health", "armor", "ammo"})
    _check_baseline(r)


@pytest.mark.slow
def test_bench_perception_atari_pong():
    r = perception.run("atari:pong", frames=150, baseline=True, seed=0)
    _check_common(r, {"player_score", "opponent_score"})
    _check_baseline(r)


def test_bench_perception_refuses_a_source_without_truth(tmp_path):
    (tmp_path / "frames").mkdir()
    with pytest.raises(UserError, match="no ground truth"):
        perception.run(f"dir:{tmp_path / 'frames'}", frames=5, baseline=False)


def test_truth_lag_shifts_nested_keys_without_touching_the_engine_truth():
    truth = {
        0: (0.0, {"health": 100, "ammo_table": {"rockets": 15, "cells": 0}}),
        1: (0.03, {"health": 90, "ammo_table": {"rockets": 14, "cells": 0}}),
    }
    shown = perception._shift(truth, {"health": 1, "ammo_table.rockets": 1})
    assert shown[1][1] == {"health": 100, "ammo_table": {"rockets": 15, "cells": 0}}
    assert shown[0][1] == truth[0][1]  # no earlier frame: as it was
    assert truth[1][1]["ammo_table"]["rockets"] == 14  # a copy was changed, not the truth


def test_held_accuracy_counts_every_frame_until_a_state_shows_the_change():
    from couchmate.types import FieldReading, GameState

    truth = {i: (i / 35, {"health": 100 if i < 4 else 90}) for i in range(10)}
    states = [
        GameState("doom", 0.0, {"health": FieldReading(100, 1.0, 0.0)}, frame_index=0),
        GameState("doom", 6 / 35, {"health": FieldReading(90, 1.0, 6 / 35)}, frame_index=6),
    ]
    # frames 4 and 5 still hold the old state: 8 of 10 frames right
    assert perception._held_accuracy(states, truth, "health") == 0.8
    scored = perception._field_accuracy(states, truth, ["health"])["health"]
    assert scored["accuracy"] == 1.0 and scored["misses"] == []
