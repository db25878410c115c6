"""The embedded task queue on a real SQLite file: leases, redelivery, dead letters, debounce, restarts,
and several processes claiming from one data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent_memory.adapters.sqlite_task_queue import SqliteTaskQueue
from agent_memory.domain.models import SessionKey
from agent_memory.domain.tasks import ExtractionTask, decode_task


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def task(session: str = "s1", generation: str = "g1") -> ExtractionTask:
    return ExtractionTask.for_session(SessionKey(tenant="t1", session_id=session), generation=generation)


def test_a_claimed_task_is_invisible_until_its_lease_expires_then_delivered_again(tmp_path: Path) -> None:
    clock = Clock()
    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3", clock=clock)
    queue.enqueue(task())

    first = queue.claim(lease_seconds=60)
    assert first is not None and first.receive_count == 1
    assert queue.claim(lease_seconds=60) is None  # leased

    clock.now += 61  # the worker died without completing
    second = queue.claim(lease_seconds=60)
    assert second is not None and second.message_id == first.message_id and second.receive_count == 2

    queue.complete(first)  # the stale lease completes nothing
    assert queue.counts() == {"pending": 1, "dead": 0}
    queue.complete(second)
    assert queue.counts() == {"pending": 0, "dead": 0}


def test_a_delayed_task_is_not_due_before_its_time(tmp_path: Path) -> None:
    clock = Clock()
    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3", clock=clock)
    queue.enqueue(task(), delay_seconds=5)

    assert queue.claim(lease_seconds=60) is None
    clock.now += 5
    assert queue.claim(lease_seconds=60) is not None


def test_a_newer_task_for_the_same_session_supersedes_the_pending_one(tmp_path: Path) -> None:
    clock = Clock()
    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3", clock=clock)
    for generation in ("g1", "g2", "g3"):
        queue.enqueue(task(generation=generation), delay_seconds=5)
    queue.enqueue(task(session="s2"), delay_seconds=5)

    clock.now += 5
    claimed = [queue.claim(lease_seconds=60) for _ in range(3)]

    bodies = [decode_task(c.body) for c in claimed if c is not None]
    assert sorted((t.session_id, t.generation) for t in bodies) == [("s1", "g3"), ("s2", "g1")]


def test_a_task_already_delivered_is_not_superseded_but_followed(tmp_path: Path) -> None:
    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3")
    queue.enqueue(task(generation="g1"))
    running = queue.claim(lease_seconds=60)
    assert running is not None

    queue.enqueue(task(generation="g2"))

    following = queue.claim(lease_seconds=60)
    assert following is not None and decode_task(following.body).generation == "g2"


def test_failures_are_retried_until_the_receive_limit_then_kept_as_dead_letters(tmp_path: Path) -> None:
    clock = Clock()
    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3", max_receives=3, clock=clock)
    queue.enqueue(task())

    for attempt in (1, 2, 3):
        claimed = queue.claim(lease_seconds=60)
        assert claimed is not None and claimed.receive_count == attempt
        queue.fail(claimed, f"llm unavailable (attempt {attempt})", retry_in_seconds=10)
        clock.now += 10

    assert queue.claim(lease_seconds=60) is None
    assert queue.counts() == {"pending": 0, "dead": 1}
    [(_, body, error)] = queue.dead_letters()
    assert decode_task(body).session_id == "s1" and error == "llm unavailable (attempt 3)"


def test_tasks_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    queue = SqliteTaskQueue(path)
    queue.enqueue(task())
    queue.close()

    reopened = SqliteTaskQueue(path)
    claimed = reopened.claim(lease_seconds=60)

    assert claimed is not None and decode_task(claimed.body).session_id == "s1"


_CLAIMER = """
import json, sys
from agent_memory.adapters.sqlite_task_queue import SqliteTaskQueue
queue = SqliteTaskQueue(sys.argv[1])
claimed = []
while (c := queue.claim(lease_seconds=600)) is not None:
    claimed.append(c.message_id)
    queue.complete(c)
print(json.dumps(claimed))
"""


def test_processes_sharing_the_data_dir_never_claim_the_same_task(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    queue = SqliteTaskQueue(path)
    sent = []
    for i in range(60):
        t = task(session=f"s{i}")
        queue.enqueue(t)
        sent.append(t.task_id)

    workers = [
        subprocess.Popen([sys.executable, "-c", _CLAIMER, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    claimed = [json.loads(w.communicate(timeout=60)[0]) for w in workers]

    everything = [message for batch in claimed for message in batch]
    assert sorted(everything) == sorted(sent)  # each task exactly once across the processes
    assert queue.counts() == {"pending": 0, "dead": 0}


def test_an_enqueue_wakes_a_waiting_worker_of_the_same_process_at_once(tmp_path: Path) -> None:
    import threading
    import time

    queue = SqliteTaskQueue(tmp_path / "tasks.sqlite3")
    woke: list[float] = []
    waiter = threading.Thread(target=lambda: (queue.wait_for_work(10), woke.append(time.monotonic())))
    waiter.start()
    time.sleep(0.1)

    sent = time.monotonic()
    queue.enqueue(task())
    waiter.join(5)

    assert woke and woke[0] - sent < 1  # not the 10 s timeout
