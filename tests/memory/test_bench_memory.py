"""`bench memory` on small slices of the LoCoMo dev split and a small synthetic scale run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from couchmate.bench.memory import run
from couchmate.bench.memory_locomo import load


def _locomo_dev() -> Path:
    """COUCHMATE_LOCOMO, else the project's shared data next to any parent folder (a CI
    checkout may live elsewhere than the working copy)."""
    if os.environ.get("COUCHMATE_LOCOMO"):
        return Path(os.environ["COUCHMATE_LOCOMO"])
    rel = Path("shared") / "data" / "locomo" / "locomo-dev.json"
    for parent in (*Path(__file__).resolve().parents, Path("/work")):
        if (parent / rel).exists():
            return parent / rel
    return Path(__file__).resolve().parents[3] / rel


DEV = _locomo_dev()
needs_locomo = pytest.mark.skipif(not DEV.exists(), reason=f"LoCoMo dev split not at {DEV}")
QUIET = Console(stderr=True, quiet=True)


@needs_locomo
def test_loader_reads_turns_questions_and_drops_bad_evidence():
    convs = load(DEV)
    assert [c.sample_id for c in convs] == ["conv-26", "conv-30", "conv-41", "conv-42", "conv-43"]
    c = convs[0]
    assert c.turns[0].dia_id == "D1:1" and c.turns[0].memory_text.startswith("Caroline: ")
    assert any("[shares a photo: " in t.memory_text for t in c.turns)
    assert all(q.category in (1, 2, 3, 4) and q.evidence for c in convs for q in c.questions)
    total = sum(len(c.questions) for c in convs)
    skipped = sum(c.skipped_questions for c in convs)
    assert total + skipped == 762 and skipped > 0  # 999 minus 237 adversarial (category 5)
    assert c.turns[1].t - c.turns[0].t == 1.0 and c.turns[0].t > 1.6e9  # May 2023


@pytest.mark.slow
@needs_locomo
def test_locomo_slice_reports_every_key_and_beats_bm25():
    r = run(
        DEV,
        systems="couchmate,bm25,dense,fusion",
        conversations=1,
        questions_per_conversation=80,
        console=QUIET,
    )
    assert r["questions"] == 80
    assert r["embedders"] == {"couchmate": "local", "dense, fusion": "local-exact"}
    for name in ("couchmate", "bm25", "dense", "fusion"):
        s = r["systems"][name]
        assert "error" not in s, f"{name}: {s.get('error')}"
        assert set(s["recall"]) == {"1", "5", "10", "20"}
        assert s["recall"]["1"] <= s["recall"]["5"] <= s["recall"]["10"] <= s["recall"]["20"]
        assert all("10" in v for v in s["by_category"].values())
        assert s["search_ms"]["p50"] <= s["search_ms"]["p95"]
    ours, bm25 = r["systems"]["couchmate"]["recall"], r["systems"]["bm25"]["recall"]
    assert ours["10"] > bm25["10"] + 0.05
    json.dumps(r)  # the CLI writes it as JSON


@pytest.mark.slow
@needs_locomo
def test_mem0_runs_locally_without_an_llm(tmp_path):
    pytest.importorskip("mem0", reason="mem0ai is a dev extra")
    # One short session of conversation 0 and the questions it answers.
    raw = json.loads(DEV.read_text())[0]
    conv = {k: v for k, v in raw["conversation"].items() if not k.startswith("session_")}
    conv.update(
        session_1=raw["conversation"]["session_1"][:12],
        session_1_date_time=raw["conversation"]["session_1_date_time"],
    )
    ids = {t["dia_id"] for t in conv["session_1"]}
    qa = [
        q
        for q in raw["qa"]
        if q.get("category") != 5 and q["evidence"] and set(q["evidence"]) <= ids
    ]
    tiny = tmp_path / "tiny-locomo.json"
    tiny.write_text(json.dumps([{"sample_id": "tiny", "conversation": conv, "qa": qa}]))
    r = run(tiny, systems="mem0,couchmate", console=QUIET)
    assert r["questions"] == len(qa) > 0
    mem0 = r["systems"]["mem0"]
    assert "error" not in mem0, mem0.get("error")
    assert mem0["search_includes_embedding"] is True
    assert mem0["recall"]["20"] > 0  # it really retrieved this conversation's turns


@pytest.mark.slow
def test_scale_run_reports_latency_memory_and_ingestion():
    from couchmate.bench.memory_scale import run_scale

    r = run_scale([3000], queries=20, real_n=64, console=QUIET)
    s = r["sizes"]["3000"]
    assert s["store_ingest_per_s"] > 0 and s["open_s"] >= 0 and s["open_build_s"] > 0
    assert s["search_ms"]["n"] == 20 and s["rss_store_mb"] >= 0
    ri = r["real_ingest"]
    assert ri["n"] == 64 and ri["per_s"] > 0 and ri["embedder"] == "local"
    assert ri["baseline"]["embedder"] == "local-exact" and ri["baseline"]["per_s"] > 0


def test_bad_locomo_path_is_a_user_error(tmp_path):
    from couchmate.errors import UserError

    with pytest.raises(UserError):
        run(tmp_path / "missing.json", console=QUIET)
    (tmp_path / "x.json").write_text('{"not": "a list"}')
    with pytest.raises(UserError):
        run(tmp_path / "x.json", console=QUIET)
    with pytest.raises(UserError):
        run(console=QUIET)
