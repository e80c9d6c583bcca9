"""The PostgreSQL store's schema and its migrations.

Migrations run on first connect, in the connecting transaction, under one advisory lock (two
processes starting together do not race); `couchmate_schema` records each version applied.
A database made for one embedding dimension refuses another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from couchmate.errors import MemoryStoreError
from couchmate.memory.topics import normalize, normalize_all

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
Migration = str | Callable[[Any], None]  # SQL, or a function of the connection
_LOCK_KEY = 0x636F7563  # "couc": one advisory lock for schema migrations


def _one_topic_form(conn: Any) -> None:
    """Version 2: topics in topics.normalize form ("doom-deathmatch" and "doom deathmatch"
    had been two topics of one game). Only rows under a changed name are rewritten."""
    names = [r[0] for r in conn.execute("SELECT DISTINCT unnest(topics) FROM couchmate_memories")]
    changed = [t for t in names if normalize(t) != t]
    if not changed:
        return
    rows = conn.execute(
        "SELECT user_id, id, topics FROM couchmate_memories WHERE topics && %s::text[]",
        (changed,),
    ).fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE couchmate_memories SET topics = %s WHERE user_id = %s AND id = %s",
            [(normalize_all(topics), user, mid) for user, mid, topics in rows],
        )
    log.info("memory topics of %d memories rewritten to one form per name", len(rows))


def migrations(dim: int) -> list[tuple[int, Migration]]:
    """(version, SQL or function) in order. Add a new version; never edit an applied one."""
    return [
        (
            1,
            f"""
            CREATE TABLE IF NOT EXISTS couchmate_meta (
                key text PRIMARY KEY,
                value text NOT NULL
            );
            CREATE TABLE IF NOT EXISTS couchmate_memories (
                user_id     text NOT NULL,
                id          text NOT NULL,
                kind        text NOT NULL CHECK (kind IN ('episode', 'fact', 'progress')),
                text        text NOT NULL,
                topics      text[] NOT NULL DEFAULT '{{}}',
                t           double precision NOT NULL,
                importance  real NOT NULL,
                provenance  jsonb NOT NULL DEFAULT '{{}}',
                retention   text NOT NULL,
                expires_at  double precision,
                data        jsonb NOT NULL DEFAULT '{{}}',
                embedding   vector({dim}) NOT NULL,
                tsv         tsvector NOT NULL,
                PRIMARY KEY (user_id, id)
            );
            CREATE INDEX IF NOT EXISTS couchmate_memories_user_t
                ON couchmate_memories (user_id, t DESC);
            CREATE INDEX IF NOT EXISTS couchmate_memories_embedding
                ON couchmate_memories USING hnsw (embedding vector_cosine_ops);
            CREATE INDEX IF NOT EXISTS couchmate_memories_tsv
                ON couchmate_memories USING gin (tsv);
            CREATE INDEX IF NOT EXISTS couchmate_memories_topics
                ON couchmate_memories USING gin (topics);
            CREATE INDEX IF NOT EXISTS couchmate_memories_expires
                ON couchmate_memories (expires_at) WHERE expires_at IS NOT NULL;
            INSERT INTO couchmate_meta (key, value) VALUES ('dim', '{dim}')
                ON CONFLICT (key) DO NOTHING;
            """,
        ),
        (2, _one_topic_form),
    ]


def migrate(conn: Any, dim: int, where: str) -> int:
    """Bring the database up to SCHEMA_VERSION; returns the version it had."""
    import psycopg

    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as e:
        raise MemoryStoreError(
            f"pgvector is not available in {where}: {e}",
            hint="install the pgvector extension on the server, or have an admin run "
            "CREATE EXTENSION vector in this database",
        ) from e
    conn.execute(
        "CREATE TABLE IF NOT EXISTS couchmate_schema ("
        " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    current = conn.execute("SELECT max(version) FROM couchmate_schema").fetchone()[0] or 0
    if current > SCHEMA_VERSION:
        raise MemoryStoreError(
            f"the database schema is version {current}; this couchmate knows {SCHEMA_VERSION}",
            hint="upgrade couchmate before using this database",
        )
    for version, sql in migrations(dim):
        if version > current:
            if callable(sql):
                sql(conn)
            else:
                conn.execute(sql)
            conn.execute("INSERT INTO couchmate_schema (version) VALUES (%s)", (version,))
            log.info("memory schema migrated to version %d", version)
    stored = conn.execute("SELECT value FROM couchmate_meta WHERE key = 'dim'").fetchone()
    if stored and int(stored[0]) != dim:
        raise MemoryStoreError(
            f"this database stores {stored[0]}-dimensional embeddings, the embedder makes {dim}",
            hint="use the embedding model the database was built with, or export the "
            "memories and import them into a fresh database (they are re-embedded)",
        )
    return current
