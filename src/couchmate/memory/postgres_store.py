"""PostgreSQL + pgvector behind the MemoryStore interface, for deployments that outgrow a laptop.

One table holds every user's memories; every statement carries `WHERE user_id = %s`, so no
call can see another user's rows. Vectors live in a `vector(dim)` column with an HNSW index
(cosine ops); text is indexed with full-text search (tsvector + GIN); topics are a `text[]`
column with a GIN index. The schema is created and migrated on first connect, under an
advisory lock, and its version is kept in `couchmate_schema`.

The lexical index covers `store.search_text(m)`: the text plus its `data["context"]` (the
turns a reply answers). Lexical scores come from `ts_rank_cd` (cover density), not BM25:
they rank sensibly but are on another scale than the embedded store's BM25 numbers, and
their order can differ. Retrieval normalizes each candidate list within its pool, so only
relative scores matter. CJK text has no spaces, so it is indexed as character bigrams
(computed here, in Python, identically for documents and queries).

Vectors travel as pgvector text literals; no extra Python package is needed. Formatting
costs ~0.2 ms a vector, and a write is dominated by index upkeep (HNSW, GIN): COPY measured
no faster than the pipelined executemany used here (~2 ms a memory, batches of 100).
"""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from couchmate.errors import MemoryStoreError, UserError
from couchmate.memory.postgres_schema import migrate
from couchmate.memory.store import MemoryStore, Scored, search_text
from couchmate.memory.topics import normalize, normalize_all
from couchmate.types import Memory, MemoryKind

_TS_CONFIG = "english"  # stemming + stop words for Latin-script text


# --- text for full-text search ---------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def lexical_terms(text: str) -> list[str]:
    """Words, with CJK runs split into character bigrams (CJK has no spaces between words)."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        pos = 0
        for m in _CJK.finditer(word):
            if m.start() > pos:
                out.append(word[pos : m.start()])
            run = m.group()
            out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
            pos = m.end()
        if pos < len(word):
            out.append(word[pos:])
    return out


def _vec_literal(v: np.ndarray) -> str:
    return "[" + ",".join(map(str, np.asarray(v, dtype=np.float32).tolist())) + "]"


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


_COLUMNS = "id, user_id, kind, text, topics, t, importance, provenance, retention, expires_at, data"


def _row_to_memory(row: tuple[Any, ...]) -> Memory:
    mid, user_id, kind, text, topics, t, imp, prov, retention, expires_at, data = row
    return Memory(
        user_id=user_id,
        kind=kind,
        text=text,
        topics=list(topics),
        t=float(t),
        importance=float(imp),
        provenance=dict(prov),
        retention=retention,
        expires_at=None if expires_at is None else float(expires_at),
        data=dict(data),
        id=mid,
    )


def _check_user(user_id: str) -> None:
    if not isinstance(user_id, str) or not user_id:
        raise UserError("a memory call needs a user id", hint="pass the user's id (user.id)")


class PostgresStore(MemoryStore):
    """Memories in PostgreSQL with pgvector. `url` is a libpq URL (postgresql://user@host/db).

    `dim` is the embedding dimension (384 for all-MiniLM-L6-v2); a database created for one
    dimension refuses another. Up to `pool_size` connections serve worker threads.
    """

    def __init__(self, url: str, *, dim: int = 384, pool_size: int = 4, connect_timeout: int = 5):
        if not url:
            raise MemoryStoreError(
                "no PostgreSQL URL configured",
                hint="set memory.url (e.g. postgresql://user@localhost/couchmate) or pass --url",
            )
        self.url = url
        self.dim = int(dim)
        self._connect_timeout = connect_timeout
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._sem = threading.BoundedSemaphore(pool_size)
        self._closed = False
        with self._conn() as conn:
            migrate(conn, self.dim, redact_url(self.url))

    # --- connections ---------------------------------------------------------------------
    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, connect_timeout=self._connect_timeout, autocommit=True)
        except psycopg.Error as e:
            host = urlsplit(self.url).hostname or "the local socket"
            raise MemoryStoreError(
                f"cannot connect to PostgreSQL at {redact_url(self.url)}: "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}",
                hint=f"is PostgreSQL running at {host}? check memory.url (or --url)",
                retryable=True,
            ) from e
        return conn

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """Borrow a connection for one transaction; commit on success, roll back on error."""
        import psycopg

        if self._closed:
            raise MemoryStoreError("the PostgreSQL store is closed")
        self._sem.acquire()
        conn = None
        try:
            try:
                conn = self._pool.get_nowait()
                if conn.closed or conn.broken:
                    conn = self._connect()
            except queue.Empty:
                conn = self._connect()
            try:
                with conn.transaction():
                    yield conn
            except psycopg.errors.UniqueViolation as e:
                raise UserError(
                    f"a memory with one of these ids already exists: {e.diag.message_detail}",
                    hint="use update() to change a memory, or leave id empty for a new one",
                ) from e
            except psycopg.OperationalError as e:
                conn.close()
                raise MemoryStoreError(
                    f"lost the PostgreSQL connection ({redact_url(self.url)}): {e}",
                    hint="is PostgreSQL still running? the call can be retried",
                    retryable=True,
                ) from e
            except psycopg.Error as e:
                raise MemoryStoreError(f"PostgreSQL error: {e}") from e
        finally:
            if conn is not None and not conn.closed and not self._closed:
                self._pool.put(conn)
            elif conn is not None:
                conn.close()
            self._sem.release()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break

    def schema_version(self) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT max(version) FROM couchmate_schema").fetchone()[0])

    # --- writes --------------------------------------------------------------------------
    def _check_vectors(self, vectors: np.ndarray, n: int) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v.reshape(1, -1)
        if v.shape != (n, self.dim):
            raise MemoryStoreError(
                f"expected {n} vectors of dimension {self.dim}, got shape {tuple(v.shape)}"
            )
        return v

    def add(self, memories: Sequence[Memory], vectors: np.ndarray) -> list[str]:
        """Insert memories in one transaction; an id this user already has is refused."""
        if not memories:
            return []
        vecs = self._check_vectors(vectors, len(memories))
        rows = []
        ids = []
        for m, v in zip(memories, vecs, strict=True):
            _check_user(m.user_id)
            mid = m.id or uuid.uuid4().hex
            ids.append(mid)
            rows.append((*self._params(m, mid), _vec_literal(v)))
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                f"""INSERT INTO couchmate_memories ({_COLUMNS}, tsv, embedding)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                            to_tsvector('{_TS_CONFIG}', %s), %s::vector)
""",
                rows,
            )
        return ids

    @staticmethod
    def _params(m: Memory, mid: str) -> tuple[Any, ...]:
        return (
            mid,
            m.user_id,
            m.kind,
            m.text,
            normalize_all(m.topics),  # one form per name, always
            float(m.t),
            float(m.importance),
            json.dumps(m.provenance, default=str),
            m.retention,
            m.expires_at,
            json.dumps(m.data, default=str),
            " ".join(lexical_terms(search_text(m))),
        )

    def update(
        self,
        user_id: str,
        memory_id: str,
        memory: Memory,
        vector: np.ndarray | None = None,
    ) -> None:
        _check_user(user_id)
        if memory.user_id and memory.user_id != user_id:
            raise MemoryStoreError("a memory cannot be moved to another user by update()")
        p = self._params(memory, memory_id)
        sets = (
            "kind = %s, text = %s, topics = %s, t = %s, importance = %s, provenance = %s, "
            f"retention = %s, expires_at = %s, data = %s, tsv = to_tsvector('{_TS_CONFIG}', %s)"
        )
        params: list[Any] = [*p[2:]]
        if vector is not None:
            sets += ", embedding = %s::vector"
            params.append(_vec_literal(self._check_vectors(vector, 1)[0]))
        with self._conn() as conn:
            cur = conn.execute(
                f"UPDATE couchmate_memories SET {sets} WHERE user_id = %s AND id = %s",
                (*params, user_id, memory_id),
            )
            if cur.rowcount == 0:
                raise MemoryStoreError(f"no memory {memory_id!r} for user {user_id!r}")

    def delete(self, user_id: str, ids: Sequence[str]) -> int:
        _check_user(user_id)
        if not ids:
            return 0
        with self._conn() as conn:
            cur = conn.execute(
                "DELETE FROM couchmate_memories WHERE user_id = %s AND id = ANY(%s)",
                (user_id, list(ids)),
            )
            return cur.rowcount

    def purge_expired(self, now: float) -> int:
        with self._conn() as conn:
            cur = conn.execute(
                "DELETE FROM couchmate_memories WHERE expires_at IS NOT NULL AND expires_at <= %s",
                (float(now),),
            )
            return cur.rowcount

    # --- reads ---------------------------------------------------------------------------
    def get(self, user_id: str, ids: Sequence[str]) -> list[Memory]:
        _check_user(user_id)
        if not ids:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM couchmate_memories WHERE user_id = %s AND id = ANY(%s)",
                (user_id, list(ids)),
            ).fetchall()
        by_id = {r[0]: _row_to_memory(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, user_id: str, ids: Sequence[str]) -> np.ndarray:
        """The stored embeddings of these memories of this user, in the order asked."""
        _check_user(user_id)
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, embedding::text FROM couchmate_memories "
                "WHERE user_id = %s AND id = ANY(%s)",
                (user_id, list(ids)),
            ).fetchall()
        by_id = {r[0]: np.array(json.loads(r[1]), dtype=np.float32) for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise MemoryStoreError(f"no memory {missing[0]!r} for user {user_id!r}")
        return np.stack([by_id[i] for i in ids])

    def list(
        self,
        user_id: str,
        *,
        kind: MemoryKind | None = None,
        topic: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Memory]:
        _check_user(user_id)
        where = ["user_id = %s"]
        params: list[Any] = [user_id]
        if kind is not None:
            where.append("kind = %s")
            params.append(kind)
        if topic is not None:
            where.append("topics @> ARRAY[%s]::text[]")
            params.append(normalize(topic))
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM couchmate_memories WHERE {' AND '.join(where)} "
                "ORDER BY t DESC, id LIMIT %s OFFSET %s",
                (*params, int(limit), int(offset)),
            ).fetchall()
        return [_row_to_memory(r) for r in rows]

    def count(self, user_id: str) -> int:
        _check_user(user_id)
        with self._conn() as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM couchmate_memories WHERE user_id = %s", (user_id,)
                ).fetchone()[0]
            )

    def topics(self, user_id: str) -> dict[str, int]:
        _check_user(user_id)
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT topic, count(*) FROM couchmate_memories, unnest(topics) AS topic "
                "WHERE user_id = %s GROUP BY topic ORDER BY count(*) DESC, topic",
                (user_id,),
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def users(self) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT DISTINCT user_id FROM couchmate_memories ORDER BY user_id"
            ).fetchall()
        return [r[0] for r in rows]

    # --- retrieval primitives ------------------------------------------------------------
    @staticmethod
    def _kinds_clause(kinds: Sequence[MemoryKind] | None, params: list[Any]) -> str:
        if not kinds:
            return ""
        params.append(list(kinds))
        return " AND kind = ANY(%s)"

    def dense_search(
        self,
        user_id: str,
        vector: np.ndarray,
        k: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> Scored:
        _check_user(user_id)
        if k <= 0:
            return []
        q = _vec_literal(self._check_vectors(vector, 1)[0])
        params: list[Any] = [q, user_id]
        kind_sql = self._kinds_clause(kinds, params)
        params += [q, int(k)]
        with self._conn() as conn:
            # The HNSW index is shared by all users; iterative scans keep walking the graph
            # until k rows of *this* user pass the filter (pgvector >= 0.8).
            conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, 2 * int(k))}")
            rows = conn.execute(
                "SELECT id, 1 - (embedding <=> %s::vector) FROM couchmate_memories "
                f"WHERE user_id = %s{kind_sql} ORDER BY embedding <=> %s::vector LIMIT %s",
                params,
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def lexical_search(
        self,
        user_id: str,
        text: str,
        k: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> Scored:
        _check_user(user_id)
        terms = lexical_terms(text)
        if not terms or k <= 0:
            return []
        # Any term may match (OR), like BM25; ts_rank_cd rewards several close matches.
        query = " | ".join(dict.fromkeys(terms))
        params: list[Any] = [query, user_id]
        kind_sql = self._kinds_clause(kinds, params)
        params.append(int(k))
        with self._conn() as conn:
            rows = conn.execute(
                f"""SELECT id, ts_rank_cd(tsv, q, 1) AS score
                    FROM couchmate_memories, to_tsquery('{_TS_CONFIG}', %s) AS q
                    WHERE user_id = %s AND tsv @@ q{kind_sql}
                    ORDER BY score DESC, t DESC LIMIT %s""",
                params,
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def topic_members(self, user_id: str, topics: Sequence[str], limit: int) -> Scored:
        _check_user(user_id)
        if not topics or limit <= 0:
            return []
        wanted = normalize_all(topics)
        if not wanted:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                """SELECT id, (SELECT count(*) FROM unnest(topics) x WHERE x = ANY(%s)) AS n
                   FROM couchmate_memories
                   WHERE user_id = %s AND topics && %s::text[]
                   ORDER BY n DESC, t DESC LIMIT %s""",
                (wanted, user_id, wanted, int(limit)),
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]
