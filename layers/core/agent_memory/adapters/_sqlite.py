"""What every embedded SQLite adapter shares: one connection per thread, WAL, write transactions, errors.

sqlite3 connections must not be shared across threads, so each thread gets its own, opened on first
use with WAL (readers never block the writer, and other processes can share the file) and a busy
timeout (a writer in another process makes us wait, not fail). Writes run in `BEGIN IMMEDIATE`, which
takes the write lock before reading, so a read-modify-write cannot lose a concurrent one; an in-process
lock can serialize writers so they queue instead of spinning in SQLite's busy handler. Every
`sqlite3.Error` becomes a `DependencyUnavailableError` naming the operation. `close` checkpoints the
WAL into the database file first, so a stopped server leaves its data in the `.sqlite3` file itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

from agent_memory.domain.errors import DependencyUnavailableError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000


class SqliteConnections:
    """Per-thread connections to one database file, for one adapter.

    Example::

        db = SqliteConnections(".agent-memory/queue.sqlite3", dependency="queue", schema="CREATE TABLE ...")
        db.write("enqueue", lambda conn: conn.execute("INSERT ..."))
    """

    def __init__(
        self,
        path: str | Path,
        *,
        dependency: str = "sqlite",
        schema: str | None = None,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        serialize_writes: bool = True,
    ) -> None:
        self.path = Path(path)
        self._dependency = dependency
        self._synchronous = synchronous
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if serialize_writes else contextlib.nullcontext()
        )
        with self.errors("open"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if schema:
                self.connection().executescript(schema)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode (transactions are opened explicitly)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves instead of sqlite3's implicit BEGIN.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def write(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one `BEGIN IMMEDIATE` transaction: committed whole, or rolled back and raised."""
        with self.errors(operation), self._write_lock:
            db = self.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    @contextmanager
    def errors(self, operation: str) -> Iterator[None]:
        """Translate `sqlite3.Error` into `DependencyUnavailableError(<dependency>, "<operation> failed: ...")`."""
        try:
            yield
        except sqlite3.Error as exc:
            detail = f"{operation} failed: {type(exc).__name__}: {exc}"
            raise DependencyUnavailableError(self._dependency, detail[:300]) from exc

    def close(self) -> None:
        """Checkpoint the WAL into the database file, then close every connection (opened in any thread)."""
        with self._connections_lock:
            if self._connections:
                with contextlib.suppress(sqlite3.Error):  # another process may hold the file; it checkpoints
                    self._connections[0].execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for connection in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._connections.clear()
        self._local = threading.local()
