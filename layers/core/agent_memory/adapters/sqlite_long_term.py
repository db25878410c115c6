"""SQLite long-term store: the embedded default, one file and no server.

Layout:
    meta(key, value)                 the vector dimension the file was built with; how far the log is pruned
    records(rid, tenant, id, ...)    one row per record: indexed filter columns (dates as epoch seconds),
                                     the record as JSON, its conversation context (see the port), the
                                     vector as a float32 BLOB (unit length or shorter)
    record_tags(field, value, rid)   topics and entities, one row per value, for SQL filtering
    record_changes(seq, tenant, rid, op)  every insert, delete and touch of a record, written by triggers
                                     in the same transaction; each process's keyword index catches up from it

Search runs the shared flow (services/ranking.py); this store supplies candidates. Filters compile to SQL
(sqlite_filters.py) or to a tantivy query with the semantics of `SearchFilters.matches`, and always apply
before top-k, so a restrictive filter never loses results to unfiltered neighbours. Vector search is
exact: the inner product of the unit query with each filtered row's vector (cosine for unit vectors; see
the port), with numpy, from a per-tenant matrix kept in memory and caught up from the change log before
each search, so writes from another process are seen too.
Keyword search is BM25 on a per-tenant tantivy index in this process's memory (sqlite_keyword_index.py:
why tantivy, why per process, how it stays in step with the table across processes).

Concurrency: one connection guarded by a lock (FastAPI runs handlers in a thread pool, and SQLite
serialises writers anyway); WAL and a busy timeout let other processes (server workers, the worker, the
CLI) share the file, and every cache here is checked against the file before it answers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agent_memory.adapters.sqlite_filters import chunks, filter_sql, marks
from agent_memory.adapters.sqlite_keyword_index import (
    LOG_SCHEMA,
    KeywordIndexes,
    changes_since,
    log_position,
    prune_log,
    pruned_through,
)
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError, InvalidInputError
from agent_memory.domain.filters import LIST_FIELDS, SearchQuery
from agent_memory.domain.keywords import KeywordQuery
from agent_memory.domain.models import MemoryRecord, MemoryRecordResult
from agent_memory.domain.search import Candidates
from agent_memory.services import ranking

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    rid INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    namespace TEXT, user_id TEXT, session_id TEXT,
    memory_type TEXT NOT NULL, extraction_strategy TEXT, memory_hash TEXT,
    created_at REAL NOT NULL, last_accessed REAL NOT NULL, event_date REAL,
    text TEXT NOT NULL,
    record TEXT NOT NULL,
    vector BLOB NOT NULL,
    context TEXT,
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS records_created ON records (tenant, created_at);
CREATE INDEX IF NOT EXISTS records_hash ON records (tenant, memory_hash);
CREATE INDEX IF NOT EXISTS records_namespace ON records (tenant, namespace);
CREATE INDEX IF NOT EXISTS records_user ON records (tenant, user_id);
CREATE INDEX IF NOT EXISTS records_user_id ON records (tenant, user_id, id);
CREATE INDEX IF NOT EXISTS records_session ON records (tenant, session_id);
CREATE TABLE IF NOT EXISTS record_tags (
    field TEXT NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (field, value, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_tags_rid ON record_tags (rid);
"""

# Files written before records had a context column.
_MIGRATE_CONTEXT = "ALTER TABLE records ADD COLUMN context TEXT;"
# Files written when keyword search was FTS5: the keyword index is now tantivy's (sqlite_keyword_index.py).
_DROP_FTS = """
DROP TRIGGER IF EXISTS records_fts_insert;
DROP TRIGGER IF EXISTS records_fts_delete;
DROP TABLE IF EXISTS records_fts;
"""

def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _blank_is_null(value: Any) -> str | None:
    # `matches()` treats None and "" alike (no value); storing both as NULL keeps SQL in step with it.
    return None if value in (None, "") else str(value)


_BLAS: Any = None


def _one_blas_thread() -> Any:
    """A context in which numpy's BLAS uses one thread. A query's matrix-vector product is memory-bound,
    so more threads barely help it, while OpenBLAS threads left spinning between products took the cores
    from the rest of the search: hybrid search at 10k records measured 6.9 ms at p50 with them and 2.3 ms
    without (2 cores)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def _nearest(rids: np.ndarray, dists: np.ndarray, count: int) -> np.ndarray:
    """Positions of the `count` smallest distances, ordered by (distance, rid) so ties are stable."""
    everything = count >= len(dists)
    positions = np.arange(len(dists)) if everything else np.argpartition(dists, count - 1)[:count]
    return positions[np.lexsort((rids[positions], dists[positions]))]


class _TenantMatrix:
    """One tenant's vectors in memory: rows in ascending rid order, appended in place, deleted by tombstone.

    Copying a 100k x 384 matrix on every write costs ~0.2 s, so appends go into spare capacity (grown by
    doubling) and deletes only clear an `alive` flag; the buffer is compacted when a quarter is dead.
    """

    def __init__(self, seq: int, rids: np.ndarray, vectors: np.ndarray) -> None:
        self.seq = seq  # the change log position the matrix reflects
        self.size = len(rids)
        self.dead = 0
        self._rids = rids
        self._vectors = vectors
        self._alive = np.ones(len(rids), dtype=bool)

    @property
    def rids(self) -> np.ndarray:
        return self._rids[: self.size]

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self.size]

    @property
    def alive(self) -> np.ndarray:
        return self._alive[: self.size]

    def remove(self, rids: Sequence[int]) -> None:
        wanted = np.asarray(rids, dtype=np.int64)
        positions = np.searchsorted(self.rids, wanted)
        inside = positions < self.size
        positions, wanted = positions[inside], wanted[inside]
        hit = positions[self.rids[positions] == wanted]
        self.dead += int(self.alive[hit].sum())
        self._alive[hit] = False
        if self.dead * 4 > self.size:
            keep = self.alive
            self._rids, self._vectors = self.rids[keep].copy(), self.vectors[keep].copy()
            self.size, self.dead = len(self._rids), 0
            self._alive = np.ones(self.size, dtype=bool)

    def append(self, rids: Sequence[int], vectors: np.ndarray) -> bool:
        """Add rows with rids above every cached one; False (nothing changed) if they are not."""
        new = np.asarray(rids, dtype=np.int64)
        if not len(new):
            return True
        if not bool(np.all(new[1:] > new[:-1])) or (self.size and new[0] <= self._rids[self.size - 1]):
            return False
        end = self.size + len(new)
        if end > len(self._rids):
            capacity = max(end, 2 * len(self._rids), 1024)
            self._rids = np.resize(self._rids, capacity)
            grown = np.empty((capacity, vectors.shape[1]), dtype=np.float32)
            grown[: self.size] = self.vectors
            self._vectors = grown
            self._alive = np.resize(self._alive, capacity)
        self._rids[self.size : end] = new
        self._vectors[self.size : end] = vectors
        self._alive[self.size : end] = True
        self.size = end
        return True


class SqliteLongTermStore:
    """LongTermStore on one SQLite file (or ":memory:").

    >>> store = SqliteLongTermStore(":memory:")
    >>> store.ensure_ready(64)
    """

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.RLock()
        self._dims: int | None = None
        self._matrices: dict[str, _TenantMatrix] = {}
        self._keywords = KeywordIndexes()
        with self._guard():
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(records)")}
            migrate = bool(columns) and "context" not in columns
            if migrate:
                self._conn.executescript(_MIGRATE_CONTEXT)
            self._conn.executescript(_DROP_FTS + _SCHEMA + LOG_SCHEMA)
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'dimensions'").fetchone()
            self._dims = int(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise DependencyUnavailableError("sqlite", f"{type(exc).__name__}: {exc}") from exc

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; reads get a consistent snapshot, writes take the lock early."""
        with self._lock, self._guard():
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _check_dims(self, dims: int, *, what: str) -> None:
        if self._dims is not None and dims != self._dims:
            raise ConfigurationError(
                f"the long-term index at {self._path} was built with {self._dims}-dim vectors but the "
                f"{what} {dims}; use the embedding model the index was built with, or start a new "
                "database file (existing memories must be re-embedded)",
                dependency="sqlite",
            )

    def _normalised(self, vectors: Sequence[Sequence[float]], *, shorter_ok: bool = False) -> np.ndarray:
        """Vectors scaled to unit length; with `shorter_ok`, only those longer than unit (see the port)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2:
            raise InvalidInputError("vectors must all have the same length")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        scale = np.where(norms > 1.0 + 1e-6, norms, 1.0) if shorter_ok else np.where(norms == 0, 1.0, norms)
        return matrix / scale

    # -- LongTermStore --------------------------------------------------------------------------

    def ensure_ready(self, dimensions: int) -> None:
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'dimensions'").fetchone()
            self._dims = int(row[0]) if row else None
            self._check_dims(dimensions, what="embedder produces")
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('dimensions', ?)", (str(dimensions),))
                self._dims = dimensions

    def upsert(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None = None,
    ) -> None:
        batch = self._batch(records, vectors, contexts)
        if batch is None:
            return
        with self._transaction(write=True) as conn:
            self._write(conn, tenant, *batch)

    def upsert_unique(
        self,
        tenant: str,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None = None,
    ) -> list[str]:
        batch = self._batch(records, vectors, contexts)
        if batch is None:
            return []
        # BEGIN IMMEDIATE takes SQLite's write lock before the hash lookup, so no other writer (thread or
        # process) can insert the same content between the check and the insert.
        kept: dict[str, str] = {}  # memory_hash -> id kept, for this batch
        answer: dict[str, str] = {}
        with self._transaction(write=True) as conn:
            chosen: list[int] = []
            for i, record in enumerate(batch[0]):
                digest = record.memory_hash
                existing = None
                if digest is not None:
                    existing = kept.get(digest)
                    if existing is None or existing == record.id:
                        row = conn.execute(
                            "SELECT id FROM records WHERE tenant = ? AND memory_hash = ? AND id != ?"
                            " ORDER BY created_at, id LIMIT 1",
                            (tenant, digest, record.id),
                        ).fetchone()
                        existing = row[0] if row else None
                if existing is not None:
                    answer[record.id] = existing
                    continue
                if digest is not None:
                    kept[digest] = record.id
                answer[record.id] = record.id
                chosen.append(i)
            if chosen:
                stored, matrix, stored_contexts = batch
                picked = [stored[i] for i in chosen], matrix[chosen], [stored_contexts[i] for i in chosen]
                self._write(conn, tenant, *picked)
        return [answer[record.id] for record in records]

    def _batch(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[Sequence[float]],
        contexts: Sequence[str | None] | None,
    ) -> tuple[list[MemoryRecord], np.ndarray, list[str | None]] | None:
        """The records to write, their vectors (checked and scaled) and contexts; None for an empty batch."""
        if len(records) != len(vectors) or (contexts is not None and len(contexts) != len(records)):
            raise ValueError(f"{len(records)} records but {len(vectors)} vectors / contexts")
        if not records:
            return None
        # A batch may name one id twice; the last occurrence wins, as it would across two calls.
        last = {record.id: i for i, record in enumerate(records)}
        keep = sorted(last.values())
        matrix = self._normalised([vectors[i] for i in keep], shorter_ok=True)
        self._check_dims(matrix.shape[1], what="vector to store has")
        return [records[i] for i in keep], matrix, [contexts[i] if contexts else None for i in keep]

    def _write(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        records: Sequence[MemoryRecord],
        matrix: np.ndarray,
        contexts: Sequence[str | None],
    ) -> None:
        """Replace `records` by id, inside the caller's write transaction."""
        if self._dims is None:
            # Another process may have recorded the dimension since this one opened the file.
            row = conn.execute("SELECT value FROM meta WHERE key = 'dimensions'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('dimensions', ?)", (str(matrix.shape[1]),))
            self._dims = int(row[0]) if row else matrix.shape[1]
            self._check_dims(matrix.shape[1], what="vector to store has")
        self._delete_rows(conn, tenant, [record.id for record in records])
        for record, vector, context in zip(records, matrix, contexts, strict=True):
            cursor = conn.execute(
                "INSERT INTO records (tenant, id, namespace, user_id, session_id, memory_type,"
                " extraction_strategy, memory_hash, created_at, last_accessed, event_date, text, record,"
                " vector, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant,
                    record.id,
                    _blank_is_null(record.namespace),
                    _blank_is_null(record.user_id),
                    _blank_is_null(record.session_id),
                    str(record.memory_type),
                    _blank_is_null(record.extraction_strategy),
                    record.memory_hash,
                    _epoch(record.created_at),
                    _epoch(record.last_accessed),
                    _epoch(record.event_date),
                    record.text,
                    record.model_dump_json(),
                    vector.tobytes(),
                    context or None,
                ),
            )
            tags = {(field, value) for field in LIST_FIELDS for value in getattr(record, field) or []}
            conn.executemany(
                "INSERT INTO record_tags (field, value, rid) VALUES (?, ?, ?)",
                [(field, value, cursor.lastrowid) for field, value in tags],
            )
        prune_log(conn)

    def tenants(self) -> list[str]:
        """Every tenant with a record (`TenantDirectory`: the CleanupFunction's forgetting policies)."""
        with self._transaction(write=False) as conn:
            return sorted(row[0] for row in conn.execute("SELECT DISTINCT tenant FROM records"))

    def get(self, tenant: str, ids: Sequence[str]) -> list[MemoryRecord]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, MemoryRecord] = {}
        with self._transaction(write=False) as conn:
            for chunk in chunks(wanted):
                rows = conn.execute(
                    f"SELECT id, record FROM records WHERE tenant = ? AND id IN ({marks(len(chunk))})",
                    (tenant, *chunk),
                )
                for record_id, payload in rows:
                    found[record_id] = MemoryRecord.model_validate_json(payload)
        return [found[i] for i in wanted if i in found]

    def delete(self, tenant: str, ids: Sequence[str]) -> int:
        with self._transaction(write=True) as conn:
            deleted = self._delete_rows(conn, tenant, list(dict.fromkeys(ids)))
            prune_log(conn)
        return len(deleted)

    def find_by_hash(self, tenant: str, memory_hash: str) -> list[MemoryRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT record FROM records WHERE tenant = ? AND memory_hash = ? ORDER BY created_at, id",
                (tenant, memory_hash),
            ).fetchall()
        return [MemoryRecord.model_validate_json(payload) for (payload,) in rows]

    def touch(self, tenant: str, ids: Sequence[str], when: datetime) -> None:
        # The change log records a touch ('u'): keyword filters on last_accessed follow; vectors are unchanged.
        with self._transaction(write=True) as conn:
            for chunk in chunks(list(dict.fromkeys(ids))):
                rows = conn.execute(
                    f"SELECT rid, record FROM records WHERE tenant = ? AND id IN ({marks(len(chunk))})",
                    (tenant, *chunk),
                ).fetchall()
                for rid, payload in rows:
                    record = MemoryRecord.model_validate_json(payload)
                    record = record.model_copy(update={"last_accessed": when, "access_count": record.access_count + 1})
                    conn.execute(
                        "UPDATE records SET last_accessed = ?, record = ? WHERE rid = ?",
                        (_epoch(record.last_accessed), record.model_dump_json(), rid),
                    )

    def user_records(
        self, tenant: str, user_id: str, *, namespace: str | None = None, after: str | None = None, limit: int = 500
    ) -> list[MemoryRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT record FROM records WHERE tenant = ? AND user_id = ? AND (? IS NULL OR namespace = ?)"
                " AND id > ? ORDER BY id LIMIT ?",
                (tenant, user_id, namespace, namespace, after or "", limit),
            ).fetchall()
        return [MemoryRecord.model_validate_json(payload) for (payload,) in rows]

    def search(self, query: SearchQuery) -> tuple[list[MemoryRecordResult], int]:
        # One read transaction: candidates, dates and records come from the same snapshot.
        with self._transaction(write=False) as conn:
            return ranking.search(_SqliteCandidates(self, conn), query)

    # -- writes -----------------------------------------------------------------------------------

    def _delete_rows(self, conn: sqlite3.Connection, tenant: str, ids: Sequence[str]) -> list[int]:
        deleted: list[int] = []
        for chunk in chunks(ids):
            rids = [
                rid
                for (rid,) in conn.execute(
                    f"SELECT rid FROM records WHERE tenant = ? AND id IN ({marks(len(chunk))})",
                    (tenant, *chunk),
                )
            ]
            if rids:
                conn.execute(f"DELETE FROM record_tags WHERE rid IN ({marks(len(rids))})", rids)
                conn.execute(f"DELETE FROM records WHERE rid IN ({marks(len(rids))})", rids)
                deleted += rids
        return deleted

    # -- reads ------------------------------------------------------------------------------------

    def _matrix(self, conn: sqlite3.Connection, tenant: str, dims_hint: int) -> _TenantMatrix:
        """The tenant's vectors as of the caller's snapshot: the cached matrix caught up from the change
        log (writes of any process), or rebuilt from the table when it cannot be (first use, a pruned log,
        a reused rid). Rebuilding reads every vector (about 1 s at 100k records); catching up reads only
        the rows that changed."""
        cached = self._matrices.get(tenant)
        if cached is not None and cached.seq >= pruned_through(conn):
            changes = [(seq, rid) for seq, rid, op in changes_since(conn, tenant, cached.seq) if op != "u"]
            if not changes:
                return cached
            changed = sorted({rid for _, rid in changes})
            cached.remove(changed)
            rows = [
                row
                for chunk in chunks(changed)
                for row in conn.execute(
                    f"SELECT rid, vector FROM records WHERE tenant = ? AND rid IN ({marks(len(chunk))}) ORDER BY rid",
                    (tenant, *chunk),
                )
            ]
            if cached.append([rid for rid, _ in rows], self._vectors(rows, dims_hint)):
                cached.seq = changes[-1][0]
                return cached
        seq = log_position(conn)
        rows = conn.execute("SELECT rid, vector FROM records WHERE tenant = ? ORDER BY rid", (tenant,)).fetchall()
        rids = np.fromiter((rid for rid, _ in rows), dtype=np.int64, count=len(rows))
        matrix = _TenantMatrix(seq, rids, self._vectors(rows, dims_hint))
        self._matrices[tenant] = matrix
        return matrix

    def _vectors(self, rows: Sequence[tuple[int, bytes]], dims_hint: int) -> np.ndarray:
        dims = self._dims or dims_hint
        return np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), dims)


class _SqliteCandidates:
    """The CandidateSource of one search, bound to its read transaction (see services/ranking.py)."""

    def __init__(self, store: SqliteLongTermStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn

    def check_query_vector(self, dimensions: int) -> None:
        self._store._check_dims(dimensions, what="query vector has")

    def vector_candidates(self, query: SearchQuery, size: int | None) -> Candidates[int]:
        assert query.vector is not None
        matrix = self._store._matrix(self._conn, query.tenant, len(query.vector))
        q = self._store._normalised([query.vector])[0]
        allowed = self._filtered_rids(query)
        with _one_blas_thread():
            if allowed is None:
                alive = matrix.alive
                rids, dists = matrix.rids[alive], (matrix.vectors @ q)[alive]
            else:
                # SQL returns only live rows, and every live row of the tenant is in the matrix.
                positions = np.searchsorted(matrix.rids, allowed)
                rids, dists = matrix.rids[positions], matrix.vectors[positions] @ q
        dists = np.clip(1.0 - dists, 0.0, 2.0).astype(np.float64)
        if query.distance_threshold is not None:
            keep = dists <= query.distance_threshold
            rids, dists = rids[keep], dists[keep]
        top = _nearest(rids, dists, len(dists) if size is None else size)
        return Candidates([(int(rids[i]), float(dists[i])) for i in top], total=len(dists))

    def keyword_candidates(
        self, query: SearchQuery, keywords: KeywordQuery, *, start: int, size: int | None
    ) -> Candidates[int]:
        return self._store._keywords.candidates(self._conn, query, keywords, start=start, size=size)

    def dates(self, tenant: str, keys: Sequence[int]) -> dict[int, datetime]:
        dates: dict[int, datetime] = {}
        for chunk in chunks([int(rid) for rid in keys]):
            for rid, when in self._conn.execute(
                f"SELECT rid, COALESCE(event_date, created_at) FROM records WHERE rid IN ({marks(len(chunk))})",
                chunk,
            ):
                dates[rid] = datetime.fromtimestamp(when, UTC)
        return dates

    def records(self, tenant: str, keys: Sequence[int]) -> dict[int, dict[str, Any]]:
        loaded: dict[int, dict[str, Any]] = {}
        for chunk in chunks([int(rid) for rid in keys]):
            for rid, payload in self._conn.execute(
                f"SELECT rid, record FROM records WHERE rid IN ({marks(len(chunk))})", chunk
            ):
                loaded[rid] = json.loads(payload)
        return loaded

    def listing(self, query: SearchQuery) -> tuple[list[dict[str, Any]], int]:
        where, params = filter_sql(query.filters)
        base = f"FROM records r WHERE r.tenant = ? AND {where}"
        total = self._conn.execute(f"SELECT COUNT(*) {base}", (query.tenant, *params)).fetchone()[0]
        rows = self._conn.execute(
            f"SELECT r.record {base} ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?",
            (query.tenant, *params, query.limit, query.offset),
        ).fetchall()
        return [json.loads(payload) for (payload,) in rows], total

    def _filtered_rids(self, query: SearchQuery) -> np.ndarray | None:
        """Rids passing the filters, or None when no filter is set (every row of the tenant passes)."""
        if query.filters.is_empty():
            return None
        where, params = filter_sql(query.filters)
        rows = self._conn.execute(
            f"SELECT r.rid FROM records r WHERE r.tenant = ? AND {where}", (query.tenant, *params)
        )
        return np.fromiter((rid for (rid,) in rows), dtype=np.int64)
