"""Working memory in one SQLite file: the embedded default (`.agent-memory/` on a laptop).

One row per session holds the whole document as JSON. Expiry is an `expires_at` column (epoch ms,
NULL = persistent): expired rows are invisible to every read and are purged by the next write, the
embedded counterpart of Redis expiry. Writes run in `BEGIN IMMEDIATE`, which takes the write lock
before reading, so a read-modify-write append cannot lose a concurrent one. Each thread gets its own
connection (sqlite3 connections must not be shared across threads); an in-process lock serializes
writers so they queue instead of spinning in SQLite's busy handler, and WAL + busy_timeout cover other
processes on the same file.

Sessions are identified by the same encoded member as in Redis (`keys.session_member`), so both
adapters list in the same order: soonest expiry first, persistent last, ties by member.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from agent_memory.domain import keys
from agent_memory.domain.errors import DependencyUnavailableError, InvalidInputError
from agent_memory.domain.models import (
    MemoryMessage,
    SessionKey,
    SessionPage,
    WorkingMemory,
    check_ttl,
    utcnow,
)

T = TypeVar("T")

_BUSY_TIMEOUT_MS = 5_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS working_memory (
    member      TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    namespace   TEXT NOT NULL,   -- '' when none, so equality filters need no NULL handling
    user_id     TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    document    TEXT NOT NULL,
    expires_at  INTEGER          -- epoch ms; NULL = persistent
);
CREATE INDEX IF NOT EXISTS working_memory_by_session ON working_memory (tenant, session_id);
CREATE INDEX IF NOT EXISTS working_memory_by_expiry ON working_memory (expires_at);
"""
_LIVE = "(expires_at IS NULL OR expires_at >= ?)"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _expires_at(ttl_seconds: int | None) -> int | None:
    try:
        check_ttl(ttl_seconds)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    return None if ttl_seconds is None else _now_ms() + ttl_seconds * 1000


class SqliteWorkingMemoryStore:
    """`WorkingMemoryStore` in a local SQLite file; safe to share between threads.

    Example::

        store = SqliteWorkingMemoryStore(".agent-memory/working_memory.sqlite3")
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        with self._errors("open"):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)

    # -- port -------------------------------------------------------------------------------------

    def get(self, key: SessionKey) -> WorkingMemory | None:
        with self._errors("get"):
            row = (
                self._connection()
                .execute(
                    f"SELECT document FROM working_memory WHERE member = ? AND {_LIVE}",
                    (keys.session_member(key), _now_ms()),
                )
                .fetchone()
            )
        return None if row is None else WorkingMemory.model_validate_json(row[0])

    def put(self, key: SessionKey, memory: WorkingMemory) -> None:
        """Replace the document and its expiry. The key decides session_id, namespace and user_id."""
        memory = memory.model_copy(
            update={"session_id": key.session_id, "namespace": key.namespace, "user_id": key.user_id}
        )
        expires_at = _expires_at(memory.ttl_seconds)
        self._write("put", lambda db: _upsert(db, key, memory, expires_at))

    def append_messages(
        self,
        key: SessionKey,
        messages: Sequence[MemoryMessage],
        *,
        max_messages: int | None = None,
        ttl_seconds: int | None = None,
    ) -> WorkingMemory:
        if max_messages is not None and max_messages < 0:
            raise InvalidInputError(f"max_messages must be >= 0, got {max_messages}")
        _expires_at(ttl_seconds)  # validate before taking the lock

        def append(db: sqlite3.Connection) -> WorkingMemory:
            row = db.execute(
                f"SELECT document FROM working_memory WHERE member = ? AND {_LIVE}",
                (keys.session_member(key), _now_ms()),
            ).fetchone()
            if row is None:
                memory = WorkingMemory(
                    session_id=key.session_id,
                    namespace=key.namespace,
                    user_id=key.user_id,
                    ttl_seconds=ttl_seconds,
                )
            else:
                memory = WorkingMemory.model_validate_json(row[0])
            kept = [*memory.messages, *messages]
            if max_messages is not None:
                kept = kept[len(kept) - max_messages :] if max_messages else []
            memory = memory.model_copy(update={"messages": kept, "updated_at": utcnow()})
            _upsert(db, key, memory, _expires_at(memory.ttl_seconds))
            return memory

        return self._write("append_messages", append)

    def delete(self, key: SessionKey) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                f"DELETE FROM working_memory WHERE member = ? AND {_LIVE}",
                (keys.session_member(key), _now_ms()),
            )
            return cursor.rowcount > 0

        return self._write("delete", delete)

    def mark_extracted(self, key: SessionKey, messages: Sequence[MemoryMessage]) -> int:
        """Mark the stored messages with the id, role and content of one of `messages`; expiry and the rest
        untouched."""
        wanted = {(m.id, m.role, m.content) for m in messages}

        def mark(db: sqlite3.Connection) -> int:
            row = db.execute(
                f"SELECT document, expires_at FROM working_memory WHERE member = ? AND {_LIVE}",
                (keys.session_member(key), _now_ms()),
            ).fetchone()
            if row is None:
                return 0
            memory = WorkingMemory.model_validate_json(row[0])
            marked = 0
            updated: list[MemoryMessage] = []
            for message in memory.messages:
                if message.discrete_memory_extracted == "f" and (message.id, message.role, message.content) in wanted:
                    message = message.model_copy(update={"discrete_memory_extracted": "t"})
                    marked += 1
                updated.append(message)
            if marked:
                _upsert(db, key, memory.model_copy(update={"messages": updated}), row[1])
            return marked

        return self._write("mark_extracted", mark)

    def list_sessions(
        self,
        tenant: str,
        *,
        namespace: str | None = None,
        user_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SessionPage:
        where = f"tenant = ? AND {_LIVE}"
        params: list[object] = [tenant, _now_ms()]
        if namespace:
            where += " AND namespace = ?"
            params.append(namespace)
        if user_id:
            where += " AND user_id = ?"
            params.append(user_id)
        with self._errors("list_sessions"):
            db = self._connection()
            (total,) = db.execute(f"SELECT COUNT(*) FROM working_memory WHERE {where}", params).fetchone()
            rows = db.execute(
                f"SELECT session_id FROM working_memory WHERE {where} "
                "ORDER BY expires_at IS NULL, expires_at, member LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return SessionPage(sessions=[row[0] for row in rows], total=total)

    def resolve(
        self, tenant: str, session_id: str, *, namespace: str | None = None, user_id: str | None = None
    ) -> SessionKey | None:
        with self._errors("resolve"):
            rows = (
                self._connection()
                .execute(
                    f"SELECT member FROM working_memory WHERE tenant = ? AND session_id = ? AND {_LIVE}"
                    " AND (? = '' OR namespace = ?) AND (? = '' OR user_id = ?) LIMIT 2",
                    (
                        tenant,
                        session_id,
                        _now_ms(),
                        namespace or "",
                        namespace or "",
                        user_id or "",
                        user_id or "",
                    ),
                )
                .fetchall()
            )
        return keys.parse_session_member(rows[0][0]) if len(rows) == 1 else None

    def ping(self) -> None:
        with self._errors("ping"):
            self._connection().execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Checkpoint the WAL into the database file, then close every connection this store opened (in
        any thread), so a stopped server leaves its data in `working_memory.sqlite3` itself."""
        with self._connections_lock:
            if self._connections:
                with contextlib.suppress(sqlite3.Error):  # another process may hold the file; it checkpoints
                    self._connections[0].execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # -- helpers ----------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves instead of sqlite3's implicit BEGIN.
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def _write(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._errors(operation), self._write_lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                # Lazy purge: the embedded stand-in for Redis expiring keys on its own.
                db.execute("DELETE FROM working_memory WHERE expires_at < ?", (_now_ms(),))
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            detail = f"{operation} failed: {type(exc).__name__}: {exc}"
            raise DependencyUnavailableError("sqlite", detail[:300]) from exc


def _upsert(db: sqlite3.Connection, key: SessionKey, memory: WorkingMemory, expires_at: int | None) -> None:
    db.execute(
        "INSERT OR REPLACE INTO working_memory"
        " (member, tenant, namespace, user_id, session_id, document, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            keys.session_member(key),
            key.tenant,
            key.namespace or "",
            key.user_id or "",
            key.session_id,
            memory.model_dump_json(),
            expires_at,
        ),
    )


__all__ = ["SqliteWorkingMemoryStore"]
