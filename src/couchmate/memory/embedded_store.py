"""The zero-set-up store: one SQLite file in the user's data dir, indexes in memory.

Why SQLite and not sqlite-vec, LanceDB or a vector database: the standard library's
sqlite3 is on every Python build, while loading SQLite extensions (sqlite-vec) is disabled
in many of them (this machine's included). SQLite in WAL mode with synchronous=FULL is the
durable source of truth for records *and* vectors (float16 blobs): `add` returns only after
the transaction is committed and synced, so a kill -9 or a power cut after the call cannot
lose the memory. Search runs on per-user in-memory indexes (numpy, faiss IVF when a user
passes 20k memories, and an own BM25 whose statistics are per user). Those indexes are a
cache: a snapshot per user (.npz, written atomically on close) plus a replay of the rows
written after it brings them up to date at open, and any mismatch rebuilds from SQLite.

Isolation: every statement carries `user_id = ?`, and each user has their own index
objects, so no search or lookup can reach another user's rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from couchmate.config import MemorySettings, data_dir
from couchmate.errors import MemoryStoreError, UserError
from couchmate.memory.store import CONTEXT_KEY, MemoryStore, Scored, join_context, search_text
from couchmate.memory.topics import normalize, normalize_all
from couchmate.memory.user_index import KIND_CODES, UserIndex
from couchmate.types import Memory, MemoryKind

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    topics TEXT NOT NULL,
    t REAL NOT NULL,
    importance REAL NOT NULL,
    provenance TEXT NOT NULL,
    retention TEXT NOT NULL,
    expires_at REAL,
    data TEXT NOT NULL,
    vec BLOB NOT NULL,
    UNIQUE (user_id, id)
);
CREATE INDEX IF NOT EXISTS memories_user_t ON memories (user_id, t);
CREATE INDEX IF NOT EXISTS memories_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS memory_topics (
    user_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, topic, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memory_topics_seq ON memory_topics (seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: The rules topics are stored under (topics.normalize). A store written under older rules
#: has its topics rewritten once when it opens (meta key "topic_form").
TOPIC_FORM = "2"

_COLS = (
    "seq, id, user_id, kind, text, topics, t, importance, provenance, retention, expires_at, data"
)


def _json(s: str):
    # most rows hold empty lists and dicts: skip the decoder for them
    if s == "[]":
        return []
    if s == "{}":
        return {}
    return json.loads(s)


def _row_to_memory(r: tuple) -> Memory:
    return Memory(
        id=r[1],
        user_id=r[2],
        kind=r[3],
        text=r[4],
        topics=_json(r[5]),
        t=r[6],
        importance=r[7],
        provenance=_json(r[8]),
        retention=r[9],
        expires_at=r[10],
        data=_json(r[11]),
    )


def _check_user(user_id: str) -> None:
    if not isinstance(user_id, str) or not user_id:
        raise UserError("a memory call needs a user id", hint="pass the user's id (user.id)")


class EmbeddedStore(MemoryStore):
    """Memories in `<folder>/memories.sqlite3`, snapshots in `<folder>/index/`."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        dim: int = 384,
        ann_threshold: int = 20_000,
        synchronous: str = "FULL",
        snapshot_min: int = 2000,
    ):
        folder = Path(path) if path else data_dir() / "memory"
        if folder.suffix in (".sqlite3", ".db"):
            folder = folder.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MemoryStoreError(
                f"cannot create the memory folder {folder}: {e}",
                hint="set memory.path to a writable folder",
            ) from e
        self.folder = folder
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.snapshot_min = snapshot_min
        self._lock = threading.RLock()
        self._indexes: dict[str, UserIndex] = {}
        self._closed = False
        try:
            self._db = sqlite3.connect(
                folder / "memories.sqlite3", check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(SCHEMA)
            stored_dim = self._db.execute("SELECT value FROM meta WHERE key='dim'").fetchone()
            if stored_dim is None:
                self._db.execute("INSERT INTO meta VALUES ('dim', ?)", (str(dim),))
            elif int(stored_dim[0]) != dim:
                raise MemoryStoreError(
                    f"{folder} holds {stored_dim[0]}-dimensional vectors, the embedder makes {dim}",
                    hint="use the embedder the store was made with, or another memory.path",
                )
            self._migrate_topics()
        except sqlite3.DatabaseError as e:
            raise MemoryStoreError(
                f"cannot open the memory database in {folder}: {e}",
                hint="the file may be damaged; move it away to start a new memory",
            ) from e

    @classmethod
    def from_settings(cls, settings: MemorySettings, *, dim: int) -> EmbeddedStore:
        """The store in memory.path, or in the user's data dir when that is empty."""
        return cls(settings.path or None, dim=dim)

    # --- plumbing -----------------------------------------------------------------------
    def _migrate_topics(self) -> None:
        """Rewrite topics stored under older normalization rules ("doom-deathmatch" and
        "doom deathmatch" were two topics), once per store; rows keep their seq, so the
        search indexes and their snapshots stay valid."""
        form = self._db.execute("SELECT value FROM meta WHERE key = 'topic_form'").fetchone()
        if form is not None and form[0] == TOPIC_FORM:
            return
        with self._tx() as db:
            names = [r[0] for r in db.execute("SELECT DISTINCT topic FROM memory_topics")]
            changed = [t for t in names if normalize(t) != t]
            seqs: set[int] = set()
            for chunk in _chunks(changed, 500):
                marks = ",".join("?" * len(chunk))
                seqs.update(
                    r[0]
                    for r in db.execute(
                        f"SELECT seq FROM memory_topics WHERE topic IN ({marks})", list(chunk)
                    )
                )
            for seq in sorted(seqs):
                user, raw = db.execute(
                    "SELECT user_id, topics FROM memories WHERE seq = ?", (seq,)
                ).fetchone()
                topics = normalize_all(_json(raw))
                db.execute(
                    "UPDATE memories SET topics = ? WHERE seq = ?", (json.dumps(topics), seq)
                )
                db.execute("DELETE FROM memory_topics WHERE seq = ?", (seq,))
                db.executemany(
                    "INSERT OR IGNORE INTO memory_topics VALUES (?,?,?)",
                    [(user, t, seq) for t in topics],
                )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('topic_form', ?)", (TOPIC_FORM,))
        if seqs:
            log.info("memory topics of %d memories rewritten to one form per name", len(seqs))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise MemoryStoreError("the memory store is closed")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _snapshot_path(self, user_id: str) -> Path:
        h = hashlib.sha256(user_id.encode()).hexdigest()[:24]
        return self.folder / "index" / f"{h}.npz"

    def _index(self, user_id: str) -> UserIndex:
        """The user's index, loaded (snapshot + replay) or built on first use."""
        ix = self._indexes.get(user_id)
        if ix is None:
            ix = self._load_index(user_id)
            self._indexes[user_id] = ix
        return ix

    def _load_index(self, user_id: str) -> UserIndex:
        snap = self._snapshot_path(user_id)
        ix: UserIndex | None = None
        if snap.exists():
            try:
                ix = UserIndex.load(snap, self.dim, ann_threshold=self.ann_threshold)
                if not self._reconcile(user_id, ix):
                    ix = None
            except Exception as e:  # a stale or damaged cache: rebuild from the database
                log.warning("memory index snapshot %s unusable (%s); rebuilding", snap, e)
                ix = None
        if ix is None:
            ix = UserIndex(self.dim, ann_threshold=self.ann_threshold)
        replayed = self._replay(user_id, ix)
        if replayed > 10_000:
            ix.save(snap)  # the next open starts from here
        return ix

    def _reconcile(self, user_id: str, ix: UserIndex) -> bool:
        """Mark rows deleted since the snapshot; False when the snapshot cannot be trusted."""
        snap = ix.rowids[: ix.n]
        live = snap[ix.alive[: ix.n]]
        n, total = self._db.execute(
            "SELECT count(*), total(seq) FROM memories WHERE user_id = ? AND seq <= ?",
            (user_id, ix.max_rowid),
        ).fetchone()
        if n == len(live) and int(total) == int(live.sum()):
            return True  # nothing deleted since the snapshot (the common case, one C scan)
        rows = np.fromiter(
            (
                r[0]
                for r in self._db.execute(
                    "SELECT seq FROM memories WHERE user_id = ? AND seq <= ? ORDER BY seq",
                    (user_id, ix.max_rowid),
                )
            ),
            dtype=np.int64,
        )
        if len(np.setdiff1d(rows, snap, assume_unique=True)):
            return False  # the database has rows the snapshot never saw: not its snapshot
        gone = np.setdiff1d(live, rows, assume_unique=True)
        ix.remove(gone)
        return True

    def _replay(self, user_id: str, ix: UserIndex, batch: int = 20_000) -> int:
        total = 0
        after = ix.max_rowid
        while True:
            rows = self._db.execute(
                "SELECT seq, kind, text, json_extract(data, ?), vec FROM memories"
                " WHERE user_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (f"$.{CONTEXT_KEY}", user_id, after, batch),
            ).fetchall()
            if not rows:
                return total
            vecs = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float16)
            ix.add(
                [r[0] for r in rows],
                [r[1] for r in rows],
                [join_context(r[2], r[3]) for r in rows],
                vecs.reshape(len(rows), self.dim).astype(np.float32),
            )
            after = rows[-1][0]
            total += len(rows)

    def _maybe_compact(self, user_id: str) -> None:
        ix = self._indexes.get(user_id)
        if ix is not None and ix.n_dead > 1000 and ix.n_dead > ix.n // 4:
            fresh = UserIndex(self.dim, ann_threshold=self.ann_threshold)
            self._replay(user_id, fresh)
            self._indexes[user_id] = fresh

    def _vec_blob(self, v: np.ndarray) -> bytes:
        v = np.asarray(v, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise UserError(
                f"vector has {v.shape[0]} dimensions, the store holds {self.dim}",
                hint="embed with the store's embedder",
            )
        return v.astype(np.float16).tobytes()

    def _check(self, m: Memory) -> None:
        _check_user(m.user_id)
        if m.kind not in KIND_CODES:
            raise UserError(f"unknown memory kind {m.kind!r}", hint="use episode, fact or progress")
        if m.retention not in ("permanent", "expiring"):
            raise UserError(f"unknown retention {m.retention!r}", hint="use permanent or expiring")

    # --- writes -------------------------------------------------------------------------
    def add(self, memories: Sequence[Memory], vectors: np.ndarray) -> list[str]:
        memories = list(memories)
        if not memories:
            return []
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(memories), -1)
        for m in memories:
            self._check(m)
            if not m.id:
                m.id = uuid.uuid4().hex
        blobs = [self._vec_blob(v) for v in vectors]
        topics = [normalize_all(m.topics) for m in memories]  # one form per name, always
        with self._lock:
            try:
                with self._tx() as db:
                    seqs = []
                    for m, blob, tops in zip(memories, blobs, topics, strict=True):
                        cur = db.execute(
                            "INSERT INTO memories (id, user_id, kind, text, topics, t, importance,"
                            " provenance, retention, expires_at, data, vec)"
                            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                            (
                                m.id,
                                m.user_id,
                                m.kind,
                                m.text,
                                json.dumps(tops),
                                float(m.t),
                                float(m.importance),
                                json.dumps(m.provenance),
                                m.retention,
                                m.expires_at,
                                json.dumps(m.data),
                                blob,
                            ),
                        )
                        seqs.append(cur.lastrowid)
                    db.executemany(
                        "INSERT OR IGNORE INTO memory_topics VALUES (?,?,?)",
                        [
                            (m.user_id, t, s)
                            for m, s, tops in zip(memories, seqs, topics, strict=True)
                            for t in tops
                        ],
                    )
            except sqlite3.IntegrityError as e:
                raise UserError(
                    f"a memory with one of these ids already exists: {e}",
                    hint="use update() to change a memory, or leave id empty for a new one",
                ) from e
            except sqlite3.DatabaseError as e:
                raise MemoryStoreError(f"could not store memories: {e}", retryable=True) from e
            self._index_new(memories, seqs, vectors)
        return [m.id for m in memories]

    def _index_new(self, memories: list[Memory], seqs: list[int], vectors: np.ndarray) -> None:
        by_user: dict[str, list[int]] = {}
        for i, m in enumerate(memories):
            by_user.setdefault(m.user_id, []).append(i)
        for user, idx in by_user.items():
            if user not in self._indexes:
                continue  # built from the database on first use, new rows included
            # the index keeps what the database keeps: float16-rounded vectors
            v = vectors[idx].astype(np.float16).astype(np.float32)
            self._indexes[user].add(
                [seqs[i] for i in idx],
                [memories[i].kind for i in idx],
                [search_text(memories[i]) for i in idx],
                v,
            )

    def update(
        self,
        user_id: str,
        memory_id: str,
        memory: Memory,
        vector: np.ndarray | None = None,
    ) -> None:
        _check_user(user_id)
        with self._lock:
            row = self._db.execute(
                "SELECT seq, vec FROM memories WHERE user_id = ? AND id = ?", (user_id, memory_id)
            ).fetchone()
            if row is None:
                return  # not this user's memory: nothing changes
            new = Memory(
                user_id=user_id,
                kind=memory.kind,
                text=memory.text,
                topics=normalize_all(memory.topics),
                t=memory.t,
                importance=memory.importance,
                provenance=dict(memory.provenance),
                retention=memory.retention,
                expires_at=memory.expires_at,
                data=dict(memory.data),
                id=memory_id,
            )
            self._check(new)
            blob = row[1] if vector is None else self._vec_blob(vector)
            with self._tx() as db:
                db.execute("DELETE FROM memories WHERE seq = ?", (row[0],))
                db.execute("DELETE FROM memory_topics WHERE seq = ?", (row[0],))
                cur = db.execute(
                    "INSERT INTO memories (id, user_id, kind, text, topics, t, importance,"
                    " provenance, retention, expires_at, data, vec)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        new.id,
                        user_id,
                        new.kind,
                        new.text,
                        json.dumps(new.topics),
                        float(new.t),
                        float(new.importance),
                        json.dumps(new.provenance),
                        new.retention,
                        new.expires_at,
                        json.dumps(new.data),
                        blob,
                    ),
                )
                seq = cur.lastrowid
                db.executemany(
                    "INSERT OR IGNORE INTO memory_topics VALUES (?,?,?)",
                    [(user_id, t, seq) for t in new.topics],
                )
            ix = self._indexes.get(user_id)
            if ix is not None:
                ix.remove([row[0]])
                v = np.frombuffer(blob, dtype=np.float16).astype(np.float32)[None, :]
                ix.add([seq], [new.kind], [search_text(new)], v)

    def delete(self, user_id: str, ids: Sequence[str]) -> int:
        _check_user(user_id)
        ids = list(ids)
        if not ids:
            return 0
        with self._lock:
            seqs: list[int] = []
            with self._tx() as db:
                for chunk in _chunks(ids, 500):
                    marks = ",".join("?" * len(chunk))
                    seqs += [
                        r[0]
                        for r in db.execute(
                            f"SELECT seq FROM memories WHERE user_id = ? AND id IN ({marks})",
                            (user_id, *chunk),
                        )
                    ]
                self._delete_seqs(db, seqs)
            ix = self._indexes.get(user_id)
            if ix is not None:
                ix.remove(seqs)
                self._maybe_compact(user_id)
            return len(seqs)

    @staticmethod
    def _delete_seqs(db: sqlite3.Connection, seqs: list[int]) -> None:
        for chunk in _chunks(seqs, 500):
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM memories WHERE seq IN ({marks})", chunk)
            db.execute(f"DELETE FROM memory_topics WHERE seq IN ({marks})", chunk)

    def purge_expired(self, now: float) -> int:
        with self._lock:
            with self._tx() as db:
                rows = db.execute(
                    "SELECT seq, user_id FROM memories WHERE expires_at IS NOT NULL"
                    " AND expires_at <= ?",
                    (now,),
                ).fetchall()
                self._delete_seqs(db, [r[0] for r in rows])
            by_user: dict[str, list[int]] = {}
            for seq, user in rows:
                by_user.setdefault(user, []).append(seq)
            for user, seqs in by_user.items():
                if user in self._indexes:
                    self._indexes[user].remove(seqs)
                    self._maybe_compact(user)
            return len(rows)

    # --- reads --------------------------------------------------------------------------
    def get(self, user_id: str, ids: Sequence[str]) -> list[Memory]:
        _check_user(user_id)
        ids = list(ids)
        found: dict[str, Memory] = {}
        with self._lock:
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for r in self._db.execute(
                    f"SELECT {_COLS} FROM memories WHERE user_id = ? AND id IN ({marks})",
                    (user_id, *chunk),
                ):
                    found[r[1]] = _row_to_memory(r)
        return [found[i] for i in ids if i in found]

    def vectors(self, user_id: str, ids: Sequence[str]) -> np.ndarray:
        """The stored embeddings (float16-rounded) of these memories of this user, in order."""
        _check_user(user_id)
        ids = list(ids)
        found: dict[str, bytes] = {}
        with self._lock:
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT id, vec FROM memories WHERE user_id = ? AND id IN ({marks})",
                        (user_id, *chunk),
                    ).fetchall()
                )
        missing = [i for i in ids if i not in found]
        if missing:
            raise MemoryStoreError(f"no memory {missing[0]!r} for this user")
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([np.frombuffer(found[i], dtype=np.float16) for i in ids]).astype(np.float32)

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
        sql = f"SELECT {', '.join('m.' + c.strip() for c in _COLS.split(','))} FROM memories m"
        args: list = []
        if topic is not None:
            sql += " JOIN memory_topics mt ON mt.seq = m.seq AND mt.user_id = ? AND mt.topic = ?"
            args += [user_id, normalize(topic)]
        sql += " WHERE m.user_id = ?"
        args.append(user_id)
        if kind is not None:
            sql += " AND m.kind = ?"
            args.append(kind)
        sql += " ORDER BY m.t DESC, m.seq DESC LIMIT ? OFFSET ?"
        args += [int(limit), int(offset)]
        with self._lock:
            return [_row_to_memory(r) for r in self._db.execute(sql, args)]

    def count(self, user_id: str) -> int:
        _check_user(user_id)
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM memories WHERE user_id = ?", (user_id,)
            ).fetchone()[0]

    def topics(self, user_id: str) -> dict[str, int]:
        _check_user(user_id)
        with self._lock:
            rows = self._db.execute(
                "SELECT topic, count(*) FROM memory_topics WHERE user_id = ? GROUP BY topic"
                " ORDER BY count(*) DESC, topic",
                (user_id,),
            ).fetchall()
        return dict(rows)

    def users(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT user_id FROM memories")]

    # --- retrieval primitives -----------------------------------------------------------
    def _ids_for(self, user_id: str, scored: list[tuple[int, float]]) -> Scored:
        if not scored:
            return []
        seqs = [s for s, _ in scored]
        marks = ",".join("?" * len(seqs))
        # NOT INDEXED: look rows up by primary key instead of scanning the user's index
        ids = dict(
            self._db.execute(
                f"SELECT seq, id FROM memories NOT INDEXED WHERE seq IN ({marks}) AND user_id = ?",
                (*seqs, user_id),
            ).fetchall()
        )
        return [(ids[s], score) for s, score in scored if s in ids]

    @staticmethod
    def _kind_codes(kinds: Sequence[MemoryKind] | None) -> list[int] | None:
        return [KIND_CODES[k] for k in kinds if k in KIND_CODES] or [-1] if kinds else None

    def dense_search(
        self,
        user_id: str,
        vector: np.ndarray,
        k: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> Scored:
        _check_user(user_id)
        with self._lock:
            ix = self._index(user_id)
            return self._ids_for(user_id, ix.dense(vector, k, self._kind_codes(kinds)))

    def lexical_search(
        self,
        user_id: str,
        text: str,
        k: int,
        *,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> Scored:
        _check_user(user_id)
        with self._lock:
            ix = self._index(user_id)
            return self._ids_for(user_id, ix.lexical_top(text, k, self._kind_codes(kinds)))

    def topic_members(self, user_id: str, topics: Sequence[str], limit: int) -> Scored:
        """Memories under any of these topics: most topics matched first, then newest stored.

        Each topic is read newest-first from its own index range (a few pages, however
        many memories the topic holds), so a popular topic costs no more than a rare one.
        """
        _check_user(user_id)
        topics = normalize_all(topics)
        if not topics or limit <= 0:
            return []
        counts: dict[int, int] = {}
        with self._lock:
            for topic in topics:
                for (seq,) in self._db.execute(
                    "SELECT seq FROM memory_topics WHERE user_id = ? AND topic = ?"
                    " ORDER BY seq DESC LIMIT ?",
                    (user_id, topic, int(limit) * 4),
                ):
                    counts[seq] = counts.get(seq, 0) + 1
            best = sorted(counts.items(), key=lambda kv: (-kv[1], -kv[0]))[: int(limit)]
            return self._ids_for(user_id, [(seq, float(n)) for seq, n in best])

    # --- lifecycle ----------------------------------------------------------------------
    def open_user(self, user_id: str) -> int:
        """Load (or build) one user's search index now; returns how many memories it holds."""
        _check_user(user_id)
        with self._lock:
            return self._index(user_id).live

    def save_indexes(self) -> None:
        """Write every loaded user's index snapshot, so the next open is fast."""
        with self._lock:
            for user, ix in self._indexes.items():
                if not ix.dirty or ix.n < self.snapshot_min:
                    continue  # small indexes rebuild from the database in milliseconds
                try:
                    ix.save(self._snapshot_path(user))
                except OSError as e:
                    log.warning("could not save the memory index of one user: %s", e)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            t0 = time.monotonic()
            self.save_indexes()
            self._indexes.clear()
            self._db.close()
            self._closed = True
            log.debug("memory store closed in %.2fs", time.monotonic() - t0)


def _chunks(seq: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
