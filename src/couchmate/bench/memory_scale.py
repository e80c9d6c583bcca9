"""Memory at scale: one synthetic user with N memories in the embedded store.

Texts are generated deterministically from templates (games, shows, people, places,
products; no external data) and filed under topics. Embedding a million texts with the
real model would take hours on a laptop CPU, so the large runs use *composed* vectors: each
template slot value is embedded once with the real model and a memory's vector is the
normalized sum of its parts' vectors plus a little noise (neighbourhoods look like real
ones; exact values do not matter for latency). Ingestion with the real model is measured
separately on `real_n` memories through MemoryService.remember.

Per size: store ingestion rate (memories/s, in-memory indexes updated as in production),
first open (index built from the database), open from the snapshot, resident memory of
the opened store, and latency of a full hybrid recall (dense + BM25 + topics + ranking +
fetching the records; the query embedding is excluded and reported on its own). Open and
search run in a fresh child process so resident memory belongs to the store alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from couchmate.bench.stats import percentiles, print_table, progress, table

USER = "scale-user"
GAMES = """Elden Ring|Hollow Knight|Celeste|Hades|Stardew Valley|Doom Eternal|Dark Souls III|
Zelda Tears of the Kingdom|Baldur's Gate 3|Cyberpunk 2077|Minecraft|Portal 2|Disco Elysium|
Sekiro|Outer Wilds|Slay the Spire|Dead Cells|Factorio|Rocket League|Breath of the Wild|
Mass Effect|The Witcher 3|Final Fantasy VII|Persona 5|Monster Hunter World|Civilization VI|
Red Dead Redemption 2|Super Mario Odyssey|Animal Crossing|Street Fighter 6""".replace("\n", "")
SHOWS = """Breaking Bad|The Expanse|Arcane|Severance|The Bear|Dark|Succession|Andor|
Better Call Saul|The Last of Us|Shogun|Fargo|Chernobyl|Twin Peaks|Mr Robot""".replace("\n", "")
PEOPLE = """Sam|Alex|Jordan|Maya|Leo|Priya|Tom|Sofia|Kenji|Amara|Lucas|Nora|Omar|Ines|Felix|
Hana|Diego|Chloe|Ravi|Elena""".replace("\n", "")
PLACES = """the castle|the swamp|the final dungeon|the forest temple|the underground lake|
the burning city|the snowy peak|the abandoned mine|the sky fortress|the haunted library|
the desert ruins|the harbour|the crystal cave|the arena|the old lighthouse""".replace("\n", "")
BOSSES = """the twin knights|a giant spider|the dragon queen|the clockwork golem|the shadow king|
a swarm of bats|the fire giant|the ice witch|the mimic chest|the final boss""".replace("\n", "")
PRODUCTS = """a mechanical keyboard|new headphones|a gaming chair|a controller|a 4K monitor|
a graphics card|a webcam|a microphone|a mouse pad|a steam deck""".replace("\n", "")
FEELINGS = """frustrated|thrilled|exhausted|proud|confused|relieved|nervous|bored|amazed|
annoyed""".replace("\n", "")
TEMPLATES = (
    ("episode", "In {game} I got stuck at {place} fighting {boss} and felt {feeling}."),
    ("episode", "{person} and I played {game} until late; we finally cleared {place}."),
    ("episode", "We watched {show} with {person} and talked about {place} in {game}."),
    ("progress", "{game}: reached {place}, {boss} still undefeated after {n} tries."),
    ("fact", "The player likes {game} and {show}, and plays with {person} on weekends."),
    ("fact", "The player wants to buy {product} before starting {game} again."),
    ("episode", "Bought {product} for {n} euros; {person} said it was worth it."),
    ("episode", "Died {n} times to {boss} in {game} and felt {feeling} about it."),
)
QUERY_TEMPLATES = (
    "Where did I get stuck in {game}?",
    "What did {person} and I play last time?",
    "How did I feel about {boss}?",
    "What did we think of {show}?",
    "Did I buy {product}?",
)


def _choices(spec: str) -> list[str]:
    return [s.strip() for s in spec.split("|") if s.strip()]


SLOTS = {
    "game": _choices(GAMES),
    "show": _choices(SHOWS),
    "person": _choices(PEOPLE),
    "place": _choices(PLACES),
    "boss": _choices(BOSSES),
    "product": _choices(PRODUCTS),
    "feeling": _choices(FEELINGS),
}


class Synth:
    """Deterministic synthetic memories and composed vectors."""

    def __init__(self, embedder, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.slot_vec: dict[tuple[str, str], np.ndarray] = {}
        keys = [(slot, v) for slot, values in SLOTS.items() for v in values]
        vecs = embedder.embed([v for _, v in keys])
        for k, v in zip(keys, vecs, strict=True):
            self.slot_vec[k] = v
        self.template_vec = embedder.embed([t for _, t in TEMPLATES])
        self.dim = vecs.shape[1]

    def batch(self, start: int, n: int) -> tuple[list[tuple[str, str, list[str]]], np.ndarray]:
        """(kind, text, topics) and composed vectors for memories start … start+n-1."""
        rows = []
        out = np.zeros((n, self.dim), dtype=np.float32)
        rng = np.random.default_rng(start)
        for j in range(n):
            ti = int(rng.integers(len(TEMPLATES)))
            kind, template = TEMPLATES[ti]
            values = {slot: vals[int(rng.integers(len(vals)))] for slot, vals in SLOTS.items()}
            values["n"] = str(int(rng.integers(2, 400)))
            text = template.format(**values)
            used = [s for s in SLOTS if "{" + s + "}" in template]
            v = 0.6 * self.template_vec[ti] + sum(self.slot_vec[(s, values[s])] for s in used)
            out[j] = v
            topics = [values[s] for s in ("game", "show", "product", "person") if s in used]
            rows.append((kind, text, topics))
        out += rng.normal(scale=0.08, size=out.shape).astype(np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return rows, out

    def queries(self, n: int, seed: int = 1) -> list[str]:
        rng = np.random.default_rng(seed)
        qs = []
        for _ in range(n):
            t = QUERY_TEMPLATES[int(rng.integers(len(QUERY_TEMPLATES)))]
            qs.append(t.format(**{s: v[int(rng.integers(len(v)))] for s, v in SLOTS.items()}))
        return qs


def _memories(rows, t0: float, start: int):
    from couchmate.types import Memory

    return [
        Memory(
            USER,
            kind,  # type: ignore[arg-type]
            text,
            topics=[t.lower() for t in topics],
            t=t0 + (start + i) * 60.0,
            importance=0.5,
            provenance={"session": f"s{(start + i) // 40}", "turn": (start + i) % 40},
        )
        for i, (kind, text, topics) in enumerate(rows)
    ]


def ingest_store(folder: Path, synth: Synth, n: int, console: Console, batch: int = 5000) -> dict:
    """Composed-vector ingestion straight into the store (indexes loaded and updated)."""
    from couchmate.memory.embedded_store import EmbeddedStore

    store = EmbeddedStore(folder, dim=synth.dim)
    store.open_user(USER)
    t_gen = t_add = 0.0
    t0 = time.time() - n * 60.0
    with progress(console) as prog:
        task = prog.add_task(f"ingest {n:,} (composed vectors)", total=n)
        for start in range(0, n, batch):
            m = min(batch, n - start)
            g = time.perf_counter()
            rows, vecs = synth.batch(start, m)
            mems = _memories(rows, t0, start)
            a = time.perf_counter()
            store.add(mems, vecs)
            t_add += time.perf_counter() - a
            t_gen += a - g
            prog.advance(task, m)
    c = time.perf_counter()
    store.close()  # writes the index snapshot
    close_s = time.perf_counter() - c
    return {
        "store_ingest_per_s": round(n / t_add, 1),
        "store_ingest_s": round(t_add, 2),
        "close_s": round(close_s, 2),
        "db_mb": round((folder / "memories.sqlite3").stat().st_size / 1e6, 1),
    }


def real_ingest(n: int, console: Console, batch: int = 256) -> dict:
    """Memories/s through MemoryService.remember with the real embedder (offline), side by
    side with the exact float32 encoder as the baseline."""
    from couchmate.config import MemorySettings
    from couchmate.memory.embeddings import make_embedder

    ours = make_embedder()
    out = {"n": n, "embedder": ours.name, **_ingest_with(ours, n, console, batch)}
    if ours.name == "local":
        exact = make_embedder(MemorySettings(embedder="local-exact"))
        base = _ingest_with(exact, n, console, batch)
        out["baseline"] = {"embedder": exact.name, **base}
        out["speedup"] = round(out["per_s"] / base["per_s"], 2)
    return out


def _ingest_with(embedder, n: int, console: Console, batch: int) -> dict:
    from couchmate.memory.embedded_store import EmbeddedStore
    from couchmate.memory.service import MemoryService

    synth = Synth(embedder, seed=5)
    with tempfile.TemporaryDirectory(prefix="couchmate-scale-real-") as tmp:
        svc = MemoryService(EmbeddedStore(Path(tmp)), embedder)
        svc.store.open_user(USER)
        t0 = time.time() - n * 60.0
        spent = 0.0
        with progress(console) as prog:
            task = prog.add_task(f"ingest {n:,} with the {embedder.name} model", total=n)
            for start in range(0, n, batch):
                m = min(batch, n - start)
                rows, _ = synth.batch(start, m)
                mems = _memories(rows, t0, start)
                a = time.perf_counter()
                svc.remember(USER, mems)
                spent += time.perf_counter() - a
                prog.advance(task, m)
        svc.close()
    return {"per_s": round(n / spent, 1), "seconds": round(spent, 2)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _probe(folder: Path, queries_file: Path, out_file: Path) -> None:
    """Child process: open the store, measure open time, RSS and recall latency."""
    from couchmate.memory.embedded_store import EmbeddedStore
    from couchmate.memory.embeddings import make_embedder
    from couchmate.memory.service import MemoryService

    q = json.loads(queries_file.read_text())
    qvecs = np.load(queries_file.with_suffix(".npy"))
    embedder = make_embedder()
    embedder.embed(["warm up"])
    rss0 = _rss_mb()
    t = time.perf_counter()
    store = EmbeddedStore(folder, dim=qvecs.shape[1])
    n = store.open_user(USER)
    open_s = time.perf_counter() - t
    rss1 = _rss_mb()
    svc = MemoryService(store, embedder)
    svc.recall_vector(USER, q[0], qvecs[0])  # first call loads the topic list
    lat = []
    for text, vec in zip(q, qvecs, strict=True):
        a = time.perf_counter()
        hits = svc.recall_vector(USER, text, vec, k=10)
        lat.append((time.perf_counter() - a) * 1000.0)
        assert hits, "a recall at scale returned nothing"
    # How much of the exact dense top 10 the store's (approximate) index finds.
    vecs = np.frombuffer(
        b"".join(
            r[0]
            for r in store._db.execute(
                "SELECT vec FROM memories WHERE user_id = ? ORDER BY seq", (USER,)
            )
        ),
        dtype=np.float16,
    ).reshape(-1, qvecs.shape[1])
    ids = [
        r[0]
        for r in store._db.execute(
            "SELECT id FROM memories WHERE user_id = ? ORDER BY seq", (USER,)
        )
    ]
    overlap = []
    for vec in qvecs[:50]:
        exact = np.argsort(-(vecs @ vec.astype(np.float16)).astype(np.float32))[:10]
        got = {i for i, _ in store.dense_search(USER, vec, 10)}
        overlap.append(len(got & {ids[j] for j in exact}) / 10)
    del vecs, ids
    emb = []
    for text in q[:50]:
        a = time.perf_counter()
        embedder.embed([text])
        emb.append((time.perf_counter() - a) * 1000.0)
    out_file.write_text(
        json.dumps(
            {
                "n": n,
                "open_s": round(open_s, 3),
                "rss_store_mb": round(rss1 - rss0, 1),
                "rss_total_mb": round(_rss_mb(), 1),
                "index": store._indexes[USER].vectors.kind,
                "dense_recall_at_10_vs_exact": round(float(np.mean(overlap)), 3),
                "search_ms": percentiles(lat),
                "query_embed_ms": percentiles(emb),
            }
        )
    )
    store._db.close()  # leave the snapshot as it is


def _open_and_search(folder: Path, queries_file: Path) -> dict:
    out = queries_file.with_name(f"probe-{time.monotonic_ns()}.json")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "couchmate.bench.memory_scale",
            str(folder),
            str(queries_file),
            str(out),
        ],
        check=True,
    )
    return json.loads(out.read_text())


def run_scale(
    sizes: list[int], *, queries: int = 200, real_n: int = 20_000, console: Console
) -> dict[str, Any]:
    from couchmate.memory.embeddings import make_embedder

    embedder = make_embedder()
    synth = Synth(embedder)
    qtexts = synth.queries(queries)
    qvecs = embedder.embed(qtexts)
    result: dict[str, Any] = {"sizes": {}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="couchmate-scale-") as tmp:
        qfile = Path(tmp) / "queries.json"
        qfile.write_text(json.dumps(qtexts))
        np.save(qfile.with_suffix(".npy"), qvecs)
        for n in sizes:
            folder = Path(tmp) / f"store-{n}"
            r = ingest_store(folder, synth, n, console)
            # First open after a crash-like start: no snapshot, index built from the rows.
            snaps = list((folder / "index").glob("*.npz"))
            for s in snaps:
                s.rename(s.with_suffix(".bak"))
            cold = _open_and_search(folder, qfile)
            for s in snaps:
                s.with_suffix(".bak").rename(s)
            warm = _open_and_search(folder, qfile)
            r.update(
                open_build_s=cold["open_s"],
                open_s=warm["open_s"],
                rss_store_mb=warm["rss_store_mb"],
                rss_total_mb=warm["rss_total_mb"],
                index=warm["index"],
                dense_recall_at_10_vs_exact=warm["dense_recall_at_10_vs_exact"],
                search_ms=warm["search_ms"],
                query_embed_ms=warm["query_embed_ms"],
            )
            result["sizes"][str(n)] = r
            rows.append(
                [
                    f"{n:,}",
                    r["store_ingest_per_s"],
                    r["open_build_s"],
                    r["open_s"],
                    r["rss_store_mb"],
                    r["search_ms"]["p50"],
                    r["search_ms"]["p95"],
                    r["query_embed_ms"]["p50"],
                ]
            )
            shutil.rmtree(folder, ignore_errors=True)
    if real_n:
        result["real_ingest"] = real_ingest(real_n, console)
    print_table(
        table(
            "Memory at scale (one user)",
            [
                "memories",
                "store ingest /s",
                "open (build) s",
                "open (snapshot) s",
                "RSS MB",
                "recall p50 ms",
                "p95 ms",
                "query embed ms",
            ],
            rows,
        ),
        console,
    )
    if real_n:
        ri = result["real_ingest"]
        line = f"ingestion with the real model ({ri['embedder']}): {ri['per_s']} memories/s"
        if "baseline" in ri:
            b = ri["baseline"]
            line += f"; {b['embedder']}: {b['per_s']}/s (×{ri['speedup']})"
        console.print(line + f" ({ri['n']:,} memories each)")
    return result


if __name__ == "__main__":
    _probe(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
