"""The embedded task queue: one SQLite table next to the embedded stores (`.agent-memory/tasks.sqlite3`).

At-least-once with leases, as SQS does with its visibility timeout: `claim` makes a message invisible
for `lease_seconds` and counts the receive; `complete` deletes it; a worker that dies (SIGKILL, power
loss) simply never completes, and the message is claimed again once its lease runs out. After
`max_receives` receives, or a `fail(dead=True)`, a message stays in the table as a dead letter with its
last error, for inspection. Every write is one `BEGIN IMMEDIATE` transaction, so several processes
sharing the data directory (server workers, `agent-memory worker`) never claim the same message under
the same lease. Time is the wall clock, since leases outlive a process.

Debounce: enqueueing a task whose `debounce_key` matches a message that was never delivered replaces
that message (body and due time) instead of adding one, so a burst of writes leaves one pending task.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from agent_memory.adapters._sqlite import SqliteConnections
from agent_memory.domain.tasks import AnyTask, encode_task
from agent_memory.ports import ClaimedTask

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id             TEXT PRIMARY KEY,
    debounce_key   TEXT,
    body           TEXT NOT NULL,
    visible_at     REAL NOT NULL,     -- epoch seconds; claimable from then on
    receive_count  INTEGER NOT NULL DEFAULT 0,
    lease          TEXT,              -- the token of the latest claim
    dead           INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (dead, visible_at);
CREATE INDEX IF NOT EXISTS tasks_by_debounce ON tasks (debounce_key) WHERE receive_count = 0;
"""


class SqliteTaskQueue:
    """`TaskQueue` and `TaskLeases` in a local SQLite file; safe across threads and processes.

    Example::

        queue = SqliteTaskQueue(".agent-memory/tasks.sqlite3")
        queue.enqueue(task, delay_seconds=5)
        claimed = queue.claim(lease_seconds=300)   # None when nothing is due
    """

    def __init__(self, path: str | Path, *, max_receives: int = 5, clock: Callable[[], float] = time.time) -> None:
        self._max_receives = max_receives
        self._clock = clock
        # Set by an enqueue in this process, so a worker thread here starts at once instead of at its next
        # poll; workers in other processes find the task at their next poll.
        self._enqueued = threading.Event()
        # synchronous=FULL, unlike the stores' NORMAL: an acknowledged enqueue must survive a power loss
        # too. No in-process write lock: claims from this process's threads contend like other processes'.
        self._db = SqliteConnections(
            path, dependency="queue", schema=_SCHEMA, synchronous="FULL", serialize_writes=False
        )

    # -- TaskQueue --------------------------------------------------------------------------------

    def enqueue(self, task: AnyTask, *, delay_seconds: int = 0) -> None:
        body = encode_task(task)
        due = self._clock() + max(0, delay_seconds)

        def enqueue(db: sqlite3.Connection) -> None:
            replaced = db.execute(
                "UPDATE tasks SET body = ?, visible_at = ? WHERE debounce_key = ? AND receive_count = 0 AND dead = 0",
                (body, due, task.debounce_key),
            ).rowcount
            if not replaced:
                db.execute(
                    "INSERT INTO tasks (id, debounce_key, body, visible_at, created_at) VALUES (?, ?, ?, ?, ?)",
                    (task.task_id, task.debounce_key, body, due, self._clock()),
                )

        self._write("enqueue", enqueue)
        self._enqueued.set()

    def drop_user_tasks(self, tenant: str, user_id: str, *, namespace: str | None = None) -> int | None:
        """Delete the user's session tasks: pending, leased (a worker running one loses its lease, and the
        deletion tombstone stops it writing) and dead letters. Other task types name no user."""

        def drop(db: sqlite3.Connection) -> int:
            return db.execute(
                "DELETE FROM tasks WHERE json_extract(body, '$.type') = 'extract_session'"
                " AND json_extract(body, '$.tenant') = ? AND json_extract(body, '$.user_id') = ?"
                " AND (? IS NULL OR json_extract(body, '$.namespace') = ?)",
                (tenant, user_id, namespace, namespace),
            ).rowcount

        return self._write("drop_user_tasks", drop)

    def wait_for_work(self, timeout: float) -> None:
        """Return when this process enqueues something, or after `timeout` seconds."""
        if self._enqueued.wait(timeout):
            self._enqueued.clear()

    def ping(self) -> None:
        with self._db.errors("ping"):
            self._db.connection().execute("SELECT 1").fetchone()

    # -- TaskLeases -------------------------------------------------------------------------------

    def claim(self, lease_seconds: float) -> ClaimedTask | None:
        lease = uuid.uuid4().hex

        def claim(db: sqlite3.Connection) -> ClaimedTask | None:
            now = self._clock()
            row = db.execute(
                "SELECT id, body, receive_count FROM tasks WHERE dead = 0 AND visible_at <= ?"
                " ORDER BY visible_at, id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE tasks SET lease = ?, visible_at = ?, receive_count = receive_count + 1 WHERE id = ?",
                (lease, now + lease_seconds, row[0]),
            )
            return ClaimedTask(message_id=row[0], body=row[1], lease=lease, receive_count=row[2] + 1)

        return self._write("claim", claim)

    def complete(self, claimed: ClaimedTask) -> None:
        self._write(
            "complete",
            lambda db: db.execute("DELETE FROM tasks WHERE id = ? AND lease = ?", (claimed.message_id, claimed.lease)),
        )

    def fail(self, claimed: ClaimedTask, error: str, *, retry_in_seconds: float, dead: bool = False) -> None:
        dead = dead or claimed.receive_count >= self._max_receives
        self._write(
            "fail",
            lambda db: db.execute(
                "UPDATE tasks SET dead = ?, visible_at = ?, last_error = ? WHERE id = ? AND lease = ?",
                (int(dead), self._clock() + retry_in_seconds, error[:1000], claimed.message_id, claimed.lease),
            ),
        )

    # -- inspection -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """{"pending": ..., "dead": ...}: messages still to deliver (due or not) and dead letters."""
        with self._db.errors("counts"):
            rows = self._db.connection().execute("SELECT dead, COUNT(*) FROM tasks GROUP BY dead").fetchall()
        found = {int(dead): count for dead, count in rows}
        return {"pending": found.get(0, 0), "dead": found.get(1, 0)}

    def dead_letters(self) -> list[tuple[str, str, str | None]]:
        """(id, body, last error) of every dead letter, oldest first."""
        with self._db.errors("dead_letters"):
            rows = self._db.connection().execute(
                "SELECT id, body, last_error FROM tasks WHERE dead = 1 ORDER BY created_at, id"
            ).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

    def close(self) -> None:
        self._db.close()

    def _write(self, operation: str, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._db.write(operation, work)


__all__ = ["SqliteTaskQueue"]
