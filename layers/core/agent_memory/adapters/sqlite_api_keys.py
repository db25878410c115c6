"""API keys in `api_keys.sqlite3` under AGENT_MEMORY_DATA_DIR: the local `ApiKeyStore`.

A request's lookup is a primary-key read (microseconds), so it runs inline on the event loop. The file
is shared by the server and `agent-memory keys` in another process (WAL): a revoke from the CLI is seen
by the next request, since nothing is cached.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from agent_memory.adapters._sqlite import SqliteConnections
from agent_memory.domain.api_keys import ApiKey
from agent_memory.domain.errors import ConflictError, NotFoundError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,          -- space-separated
    secret_hash TEXT NOT NULL,     -- SHA-256 of the secret, hex
    created_at REAL NOT NULL,      -- Unix seconds
    expires_at REAL,
    revoked_at REAL,
    last_used_at REAL
);
CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys (tenant, created_at);
"""
_COLUMNS = "key_id, tenant, name, scopes, secret_hash, created_at, expires_at, revoked_at, last_used_at"
_GET = f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?"


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _key(row: sqlite3.Row | tuple[object, ...]) -> ApiKey:
    key_id, tenant, name, scopes, secret_hash, created, expires, revoked, used = row
    return ApiKey(
        key_id=str(key_id),
        tenant=str(tenant),
        name=str(name),
        scopes=frozenset(str(scopes).split()),
        secret_hash=str(secret_hash),
        created_at=_dt(created) or datetime.now(UTC),  # type: ignore[arg-type]
        expires_at=_dt(expires),  # type: ignore[arg-type]
        revoked_at=_dt(revoked),  # type: ignore[arg-type]
        last_used_at=_dt(used),  # type: ignore[arg-type]
    )


class SqliteApiKeyStore:
    """`ApiKeyStore` on one SQLite file, e.g. `SqliteApiKeyStore(".agent-memory/api_keys.sqlite3")`."""

    blocking = False

    def __init__(self, path: str | Path) -> None:
        # FULL: a created or revoked key survives a power cut once the CLI has said so.
        self._db = SqliteConnections(path, dependency="api_keys", schema=_SCHEMA, synchronous="FULL")

    def create(self, key: ApiKey) -> None:
        values = (
            key.key_id, key.tenant, key.name, " ".join(sorted(key.scopes)), key.secret_hash,
            key.created_at.timestamp(), _ts(key.expires_at), _ts(key.revoked_at), _ts(key.last_used_at),
        )  # fmt: skip

        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"API key {key.key_id} exists") from exc

        self._db.write("create key", insert)

    def get(self, key_id: str) -> ApiKey | None:
        with self._db.errors("get key"):
            row = self._db.connection().execute(_GET, (key_id,)).fetchone()
        return _key(row) if row else None

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        with self._db.errors("list keys"):
            rows = self._db.connection().execute(
                f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_at, key_id", args
            ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str, when: datetime) -> ApiKey:
        def update(db: sqlite3.Connection) -> ApiKey:
            db.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?", (when.timestamp(), key_id)
            )
            row = db.execute(_GET, (key_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no API key {key_id}")
            return _key(row)

        return self._db.write("revoke key", update)

    def touch(self, key_id: str, when: datetime) -> None:
        self._db.write(
            "touch key",
            lambda db: db.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (when.timestamp(), key_id)),
        )

    def close(self) -> None:
        self._db.close()


__all__ = ["SqliteApiKeyStore"]
