"""The embedded worker: takes tasks from a `TaskLeases` queue and runs them, until told to stop.

It runs in `agent-memory worker` and in a thread of `agent-memory serve`, never inside Lambda (there
the SQS poller delivers batches to ExtractionFunction). The outcome rules are those of the Lambda
handler: a message that is not a valid task, or a task whose configuration can never work, goes to the
dead letters at once; a dependency failure (LLM down, malformed LLM output after its retries, a store
timeout) is retried with exponential backoff until the queue's receive limit dead-letters it; every
failure is logged with the task id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent_memory.domain.errors import DependencyUnavailableError, InvalidInputError
from agent_memory.domain.tasks import AnyTask, InvalidTaskError, decode_task

if TYPE_CHECKING:
    from agent_memory.ports import ClaimedTask, TaskLeases

logger = logging.getLogger(__name__)


class TaskWorker:
    """Example::

        worker = TaskWorker(queue, container.extraction_service.run)
        worker.run(stop_event)      # until stop_event is set
    """

    def __init__(
        self,
        leases: TaskLeases,
        handle: Callable[[AnyTask], object],
        *,
        lease_seconds: float = 300.0,
        idle_seconds: float = 0.5,
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 300.0,
    ) -> None:
        self._leases = leases
        self._handle = handle
        self._lease_seconds = lease_seconds
        self._idle_seconds = idle_seconds
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; a queue outage is logged and waited out, never fatal."""
        while not stop.is_set():
            try:
                worked = self.run_once()
            except DependencyUnavailableError as exc:
                logger.warning("task queue unavailable: %s", exc.detail)
                worked = False
            if not worked and not stop.is_set():
                self._leases.wait_for_work(self._idle_seconds)

    def run_once(self) -> bool:
        """Claim and run one due message; False when none was due."""
        claimed = self._leases.claim(self._lease_seconds)
        if claimed is None:
            return False
        self._process(claimed)
        return True

    def _process(self, claimed: ClaimedTask) -> None:
        try:
            task = decode_task(claimed.body)
        except InvalidTaskError as exc:
            logger.error("task rejected message_id=%s error=%s", claimed.message_id, exc.detail)
            self._leases.fail(claimed, exc.detail, retry_in_seconds=0, dead=True)
            return
        try:
            self._handle(task)
        except InvalidInputError as exc:
            logger.error("task failed permanently task_id=%s error=%s", task.task_id, exc.detail)
            self._leases.fail(claimed, exc.detail, retry_in_seconds=0, dead=True)
        except DependencyUnavailableError as exc:
            delay = min(self._retry_max, self._retry_base * 2 ** (claimed.receive_count - 1))
            logger.error(
                "task failed task_id=%s receive=%d retry_in=%.1fs error=%s",
                task.task_id, claimed.receive_count, delay, exc.detail,
            )
            self._leases.fail(claimed, exc.detail, retry_in_seconds=delay)
        except Exception as exc:  # a bug: keep the message (and the worker) for a later look
            logger.exception("task crashed task_id=%s", task.task_id)
            delay = min(self._retry_max, self._retry_base * 2 ** (claimed.receive_count - 1))
            self._leases.fail(claimed, f"{type(exc).__name__}: {exc}", retry_in_seconds=delay)
        else:
            self._leases.complete(claimed)


class BackgroundWorker:
    """A `TaskWorker` in a daemon thread, for `agent-memory serve` (started and stopped by its lifespan)."""

    def __init__(self, worker: TaskWorker) -> None:
        self._worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=worker.run, args=(self._stop,), name="agent-memory-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking tasks; a task under way finishes (or its lease expires and it runs again later).
        An idle worker notices within its idle pause (0.5 s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


__all__ = ["BackgroundWorker", "TaskWorker"]
