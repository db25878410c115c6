"""Small JSON documents in SQLite (`documents.sqlite3` beside the embedded stores): summary views,
their results and task records. Expiry is an `expires_at` column, as in the working-memory store."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from agent_memory.domain.errors import DependencyUnavailableError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    tenant      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    expires_at  REAL,            -- epoch seconds; NULL = persistent
    PRIMARY KEY (tenant, kind, id)
);
"""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


class SqliteDocumentStore:
    """`DocumentStore` in a local SQLite file; safe across threads and processes (WAL, busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._errors("open"):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)

    def put(self, tenant: str, kind: str, doc_id: str, body: str, *, ttl_seconds: int | None = None) -> None:
        expires = None if ttl_seconds is None else time.time() + ttl_seconds
        with self._errors("put"):
            self._connection().execute(
                "INSERT OR REPLACE INTO documents (tenant, kind, id, body, expires_at) VALUES (?, ?, ?, ?, ?)",
                (tenant, kind, doc_id, body, expires),
            )

    def get(self, tenant: str, kind: str, doc_id: str) -> str | None:
        with self._errors("get"):
            row = self._connection().execute(
                f"SELECT body FROM documents WHERE tenant = ? AND kind = ? AND id = ? AND {_LIVE}",
                (tenant, kind, doc_id, time.time()),
            ).fetchone()
        return None if row is None else str(row[0])

    def list_documents(self, tenant: str, kind: str) -> list[str]:
        with self._errors("list"):
            rows = self._connection().execute(
                f"SELECT body FROM documents WHERE tenant = ? AND kind = ? AND {_LIVE} ORDER BY id",
                (tenant, kind, time.time()),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def delete(self, tenant: str, kind: str, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        marks = ",".join("?" * len(doc_ids))
        with self._errors("delete"):
            cursor = self._connection().execute(
                f"DELETE FROM documents WHERE tenant = ? AND kind = ? AND id IN ({marks})", (tenant, kind, *doc_ids)
            )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit: each statement is its own transaction; no read-modify-write happens here.
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute("PRAGMA journal_mode = WAL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise DependencyUnavailableError("sqlite", f"documents {operation} failed: {exc}"[:300]) from exc


__all__ = ["SqliteDocumentStore"]
