"""Small JSON documents in SQLite (`documents.sqlite3` beside the embedded stores): summary views,
their results and task records. Expiry is an `expires_at` column, as in the working-memory store."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from agent_memory.adapters._sqlite import SqliteConnections

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
        # Autocommit: each statement is its own transaction; no read-modify-write happens here.
        self._db = SqliteConnections(path, schema=_SCHEMA)

    def put(self, tenant: str, kind: str, doc_id: str, body: str, *, ttl_seconds: int | None = None) -> None:
        expires = None if ttl_seconds is None else time.time() + ttl_seconds
        with self._db.errors("put"):
            self._db.connection().execute(
                "INSERT OR REPLACE INTO documents (tenant, kind, id, body, expires_at) VALUES (?, ?, ?, ?, ?)",
                (tenant, kind, doc_id, body, expires),
            )

    def get(self, tenant: str, kind: str, doc_id: str) -> str | None:
        with self._db.errors("get"):
            row = self._db.connection().execute(
                f"SELECT body FROM documents WHERE tenant = ? AND kind = ? AND id = ? AND {_LIVE}",
                (tenant, kind, doc_id, time.time()),
            ).fetchone()
        return None if row is None else str(row[0])

    def list_documents(self, tenant: str, kind: str) -> list[str]:
        with self._db.errors("list"):
            rows = self._db.connection().execute(
                f"SELECT body FROM documents WHERE tenant = ? AND kind = ? AND {_LIVE} ORDER BY id",
                (tenant, kind, time.time()),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def delete(self, tenant: str, kind: str, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        marks = ",".join("?" * len(doc_ids))
        with self._db.errors("delete"):
            cursor = self._db.connection().execute(
                f"DELETE FROM documents WHERE tenant = ? AND kind = ? AND id IN ({marks})", (tenant, kind, *doc_ids)
            )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


__all__ = ["SqliteDocumentStore"]
