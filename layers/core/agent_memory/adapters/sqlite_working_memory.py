"""Working memory in one SQLite file: the embedded default (`.agent-memory/` on a laptop).

One row per session holds the whole document as JSON. Expiry is an `expires_at` column (epoch ms,
NULL = persistent): expired rows are invisible to every read and are purged by the next write, the
embedded counterpart of Redis expiry. Connections, transactions and errors are `_sqlite.SqliteConnections`:
writes run in `BEGIN IMMEDIATE`, which takes the write lock before reading, so a read-modify-write
append cannot lose a concurrent one, and WAL + busy_timeout cover other processes on the same file.

Sessions are identified by the same encoded member as in Redis (`keys.session_member`), so both
adapters list in the same order: soonest expiry first, persistent last, ties by member.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from agent_memory.adapters._sqlite import SqliteConnections
from agent_memory.domain import keys
from agent_memory.domain.errors import InvalidInputError, MessageLimitError
from agent_memory.domain.models import (
    MemoryMessage,
    MemoryRecord,
    SessionKey,
    SessionPage,
    WorkingMemory,
    check_ttl,
    utcnow,
)

T = TypeVar("T")

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
CREATE INDEX IF NOT EXISTS working_memory_by_user ON working_memory (tenant, user_id, member);
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
        self._db = SqliteConnections(path, schema=_SCHEMA)

    # -- port -------------------------------------------------------------------------------------

    def get(self, key: SessionKey) -> WorkingMemory | None:
        with self._db.errors("get"):
            row = (
                self._db.connection()
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

        def put(db: sqlite3.Connection) -> None:
            document = memory
            if memory.message_limit is None or memory.primed_memory_ids is None:
                # The session API's settings survive a write that does not carry them (an AMS PUT).
                stored = _read(db, key)
                if stored is not None:
                    document = memory.model_copy(update={
                        "message_limit": memory.message_limit if memory.message_limit is not None
                        else stored.message_limit,
                        "primed_memory_ids": memory.primed_memory_ids if memory.primed_memory_ids is not None
                        else stored.primed_memory_ids,
                    })
            _upsert(db, key, document, expires_at)

        self._write("put", put)

    def append_messages(
        self,
        key: SessionKey,
        messages: Sequence[MemoryMessage],
        *,
        max_messages: int | None = None,
        ttl_seconds: int | None = None,
        message_limit: int | None = None,
        max_total: int | None = None,
    ) -> WorkingMemory:
        if max_messages is not None and max_messages < 0:
            raise InvalidInputError(f"max_messages must be >= 0, got {max_messages}")
        if message_limit is not None and message_limit < 1:
            raise InvalidInputError(f"message_limit must be >= 1, got {message_limit}")
        _expires_at(ttl_seconds)  # validate before taking the lock

        def append(db: sqlite3.Connection) -> WorkingMemory:
            memory = _read(db, key) or WorkingMemory(
                session_id=key.session_id,
                namespace=key.namespace,
                user_id=key.user_id,
                ttl_seconds=ttl_seconds,
                message_limit=message_limit,
            )
            if max_total is not None and len(memory.messages) + len(messages) > max_total:
                raise MessageLimitError(len(memory.messages) + len(messages), max_total)  # before any write
            kept = [*memory.messages, *messages]
            if max_messages is not None:
                kept = kept[len(kept) - max_messages :] if max_messages else []
            if memory.message_limit is not None:
                # Only messages already extracted are dropped; the first one that is not stops the trim.
                drop = 0
                while len(kept) - drop > memory.message_limit and kept[drop].discrete_memory_extracted == "t":
                    drop += 1
                kept = kept[drop:]
            memory = memory.model_copy(update={"messages": kept, "updated_at": utcnow()})
            _upsert(db, key, memory, _expires_at(memory.ttl_seconds))
            return memory

        return self._write("append_messages", append)

    def prime(self, key: SessionKey, records: Sequence[MemoryRecord]) -> WorkingMemory | None:
        """Add `records` to the session's memories (replacing by id) and their ids to its primed ids, in one
        transaction; messages, expiry and `updated_at` untouched."""

        def prime(db: sqlite3.Connection) -> WorkingMemory | None:
            row = db.execute(
                f"SELECT document, expires_at FROM working_memory WHERE member = ? AND {_LIVE}",
                (keys.session_member(key), _now_ms()),
            ).fetchone()
            if row is None:
                return None
            memory = WorkingMemory.model_validate_json(row[0])
            added = {r.id for r in records}
            primed = list(memory.primed_memory_ids or [])
            primed += [r.id for r in records if r.id not in primed]
            memory = memory.model_copy(update={
                "memories": [*(m for m in memory.memories if m.id not in added), *records],
                "primed_memory_ids": primed,
            })
            _upsert(db, key, memory, row[1])
            return memory

        return self._write("prime", prime)

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
        with self._db.errors("list_sessions"):
            db = self._db.connection()
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
        with self._db.errors("resolve"):
            rows = (
                self._db.connection()
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

    def user_sessions(
        self, tenant: str, user_id: str, *, namespace: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[SessionKey]:
        with self._db.errors("user_sessions"):
            rows = self._db.connection().execute(
                f"SELECT member FROM working_memory WHERE tenant = ? AND user_id = ? AND (? = '' OR namespace = ?)"
                f" AND {_LIVE} ORDER BY member LIMIT ? OFFSET ?",
                (tenant, user_id, namespace or "", namespace or "", _now_ms(), limit, offset),
            ).fetchall()
        return [keys.parse_session_member(row[0]) for row in rows]

    # -- SessionSweeper (the CleanupFunction) -----------------------------------------------------

    def tenants(self) -> list[str]:
        with self._db.errors("tenants"):
            rows = self._db.connection().execute("SELECT DISTINCT tenant FROM working_memory").fetchall()
        return sorted(row[0] for row in rows)

    def sweep_expired(self, tenant: str) -> int:
        """Delete the tenant's expired rows now, without waiting for the next write's purge."""

        def sweep(db: sqlite3.Connection) -> int:
            cursor = db.execute("DELETE FROM working_memory WHERE tenant = ? AND expires_at < ?", (tenant, _now_ms()))
            return cursor.rowcount

        return self._db.write("sweep_expired", sweep)

    def expiring_sessions(
        self, tenant: str, within_seconds: float, *, limit: int = 1000
    ) -> list[tuple[SessionKey, int]]:
        now = _now_ms()
        with self._db.errors("expiring_sessions"):
            rows = self._db.connection().execute(
                "SELECT member, expires_at FROM working_memory WHERE tenant = ? AND expires_at BETWEEN ? AND ?"
                " ORDER BY expires_at, member LIMIT ?",
                (tenant, now, now + int(within_seconds * 1000), limit),
            ).fetchall()
        return [(keys.parse_session_member(member), int(expires_at)) for member, expires_at in rows]

    def ping(self) -> None:
        with self._db.errors("ping"):
            self._db.connection().execute("SELECT 1").fetchone()

    def close(self) -> None:
        """Checkpoint the WAL into `working_memory.sqlite3`, then close every connection."""
        self._db.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _write(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        def purge_then(db: sqlite3.Connection) -> T:
            # Lazy purge: the embedded stand-in for Redis expiring keys on its own.
            db.execute("DELETE FROM working_memory WHERE expires_at < ?", (_now_ms(),))
            return work(db)

        return self._db.write(operation, purge_then)


def _read(db: sqlite3.Connection, key: SessionKey) -> WorkingMemory | None:
    row = db.execute(
        f"SELECT document FROM working_memory WHERE member = ? AND {_LIVE}", (keys.session_member(key), _now_ms())
    ).fetchone()
    return None if row is None else WorkingMemory.model_validate_json(row[0])


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
