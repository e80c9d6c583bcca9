"""`couchmate bench memory`: recall on LoCoMo against baselines, and search at scale.

LoCoMo (see bench/memory_locomo.py for how turns and questions are read): each system
ingests each conversation as one user's memory and answers every category 1–4 question
with the question as the query. Reported per system: recall@1/5/10/20 of the evidence
turns overall and per category, and search latency p50/p95 (query embedding excluded,
except mem0 whose search embeds internally; `search_includes_embedding` says which).
All systems run side by side in one process on the same turn texts and the same model.

Scale (bench/memory_scale.py): a synthetic user with N memories; ingestion rate, open
time, resident memory and full hybrid recall latency.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from couchmate.bench.memory_locomo import CATEGORIES, Conversation, load
from couchmate.bench.memory_systems import CachingEmbedder, System, make_systems, temp_folder
from couchmate.bench.stats import percentiles, print_table, progress, table
from couchmate.errors import UserError

KS = (1, 5, 10, 20)
DEFAULT_SYSTEMS = "couchmate,bm25,dense,fusion,mem0"


def run(
    locomo: Path | None = None,
    scale: str = "",
    systems: str = DEFAULT_SYSTEMS,
    *,
    conversations: int | None = None,
    questions_per_conversation: int | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    if locomo is None and not scale:
        raise UserError("nothing to run", hint="pass --locomo PATH and/or --scale 100000,1000000")
    result: dict[str, Any] = {}
    if locomo is not None:
        names = [s.strip() for s in systems.split(",") if s.strip()]
        result.update(
            run_locomo(
                Path(locomo),
                names,
                conversations=conversations,
                questions_per_conversation=questions_per_conversation,
                console=console,
            )
        )
    if scale:
        from couchmate.bench.memory_scale import run_scale

        try:
            sizes = [int(float(s)) for s in scale.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--scale wants sizes like 100000,1000000, not {scale!r}") from None
        result["scale"] = run_scale(sizes, console=console)
    return result


def run_locomo(
    path: Path,
    names: list[str],
    *,
    conversations: int | None = None,
    questions_per_conversation: int | None = None,
    console: Console,
) -> dict[str, Any]:
    from couchmate.memory.embeddings import make_embedder

    convs = load(path, conversations=conversations)
    if questions_per_conversation is not None:
        for c in convs:
            c.questions = c.questions[:questions_per_conversation]
    n_questions = sum(len(c.questions) for c in convs)
    from couchmate.config import MemorySettings

    # couchmate runs the product's embedder; dense and fusion run the exact float32 model,
    # the baselines as published (an int8 model would handicap them).
    embedder = CachingEmbedder(make_embedder())
    exact = embedder
    if embedder.name == "local" and {"dense", "fusion"} & set(names):
        exact = CachingEmbedder(make_embedder(MemorySettings(embedder="local-exact")))
    out: dict[str, Any] = {
        "data": str(path),
        "conversations": [c.sample_id for c in convs],
        "questions": n_questions,
        "questions_by_category": {
            str(cat): sum(1 for c in convs for q in c.questions if q.category == cat)
            for cat in CATEGORIES
        },
        "skipped_questions": sum(c.skipped_questions for c in convs),
        "turns": sum(len(c.turns) for c in convs),
        "embedders": {"couchmate": embedder.name, "dense, fusion": exact.name},
        "systems": {},
    }
    with temp_folder() as tmp:
        # Embed every turn and question once, shared by all systems that use the model.
        t0 = time.perf_counter()
        texts = [t.memory_text for c in convs for t in c.turns]
        questions = [q.text for c in convs for q in c.questions]
        models = [embedder] if exact is embedder else [embedder, exact]
        with progress(console) as prog:
            task = prog.add_task(
                "embedding turns and questions", total=(len(texts) + n_questions) * len(models)
            )
            for model in models:
                for i in range(0, len(texts), 512):
                    model.embed(texts[i : i + 512])
                    prog.advance(task, len(texts[i : i + 512]))
                model.embed(questions)
                prog.advance(task, n_questions)
        out["embed_s"] = round(time.perf_counter() - t0, 2)
        for name in names:
            out["systems"][name] = _run_system(name, convs, embedder, exact, Path(tmp), console)
    _print_locomo(out, console)
    return out


def _describe(e: Exception) -> str:
    msg = f"{type(e).__name__}: {e}"
    if isinstance(e, ModuleNotFoundError):
        msg += " (the baselines need pip install 'couchmate[bench]'; mem0 needs mem0ai)"
    return msg


def _run_system(
    name: str,
    convs: list[Conversation],
    embedder: CachingEmbedder,
    exact: CachingEmbedder,
    tmp: Path,
    console: Console,
) -> dict[str, Any]:
    try:
        system: System = make_systems([name], embedder, tmp, baseline_embedder=exact)[0]
    except UserError:
        raise
    except Exception as e:  # a baseline that cannot start is reported, not fatal
        msg = _describe(e)
        console.print(f"[yellow]{name} could not start:[/yellow] {msg}")
        return {"error": msg}
    recalls: dict[int, list[float]] = {k: [] for k in KS}
    by_cat: dict[int, dict[int, list[float]]] = {c: {k: [] for k in KS} for c in CATEGORIES}
    by_conv: dict[str, list[float]] = {}
    search_ms: list[float] = []
    ingest_s = 0.0
    try:
        with progress(console) as prog:
            task = prog.add_task(f"{name}", total=sum(len(c.questions) for c in convs))
            for conv in convs:
                t0 = time.perf_counter()
                system.ingest(conv)
                ingest_s += time.perf_counter() - t0
                for q in conv.questions:
                    system.prepare_query(conv, q.text)
                    t0 = time.perf_counter()
                    ranked = system.search(conv, q.text, max(KS))
                    search_ms.append((time.perf_counter() - t0) * 1000.0)
                    ev = set(q.evidence)
                    for k in KS:
                        r = len(ev.intersection(ranked[:k])) / len(ev)
                        recalls[k].append(r)
                        by_cat[q.category][k].append(r)
                        if k == 10:
                            by_conv.setdefault(conv.sample_id, []).append(r)
                    prog.advance(task)
    except Exception as e:
        msg = _describe(e)
        console.print(f"[yellow]{name} failed while running:[/yellow] {msg}")
        return {"error": msg}
    finally:
        system.close()
    lat = percentiles(search_ms)
    n_turns = sum(len(c.turns) for c in convs)
    return {
        "recall": {str(k): _mean(v) for k, v in recalls.items()},
        "by_category": {
            str(c): {str(k): _mean(v) for k, v in ks.items()}
            for c, ks in by_cat.items()
            if ks[KS[0]]
        },
        "by_conversation": {c: {"10": _mean(v)} for c, v in by_conv.items()},
        "search_ms": {"p50": lat["p50"], "p95": lat["p95"], "mean": lat["mean"]},
        "search_includes_embedding": system.search_includes_embedding,
        "ingest_s": round(ingest_s, 2),
        "ingest_per_s": round(n_turns / ingest_s, 1) if ingest_s > 0 else None,
    }


def _mean(v: list[float]) -> float:
    return round(float(np.mean(v)), 4) if v else 0.0


def _print_locomo(out: dict[str, Any], console: Console) -> None:
    rows = []
    for name, r in out["systems"].items():
        if "error" in r:
            rows.append([name, *(None,) * (len(KS) + len(CATEGORIES) + 2)])
            continue
        rows.append(
            [
                name,
                *(r["recall"][str(k)] for k in KS),
                *(r["by_category"].get(str(c), {}).get("10") for c in CATEGORIES),
                r["search_ms"]["p50"],
                r["search_ms"]["p95"],
            ]
        )
    cols = [
        "system",
        *(f"R@{k}" for k in KS),
        *(f"R@10 c{c}" for c in CATEGORIES),
        "p50 ms",
        "p95 ms",
    ]
    print_table(
        table(
            f"LoCoMo recall ({out['questions']} questions, {len(out['conversations'])} "
            "conversations)",
            cols,
            rows,
        ),
        console,
    )
    console.print(
        "[dim]categories: "
        + ", ".join(f"c{c} {n}" for c, n in CATEGORIES.items())
        + "; search ms exclude the query embedding"
        + (" (mem0's include it)" if "mem0" in out["systems"] else "")
        + "; embedders: "
        + ", ".join(f"{who} {name}" for who, name in out.get("embedders", {}).items())
        + "[/dim]"
    )
    for name, r in out["systems"].items():
        if "error" in r:
            console.print(f"[yellow]{name}: {r['error']}[/yellow]")
