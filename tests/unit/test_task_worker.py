"""The embedded worker's outcome rules, with an in-memory queue: what is completed, retried with
backoff, or dead-lettered at once, and that every failure is logged with the task id."""

from __future__ import annotations

import logging
import threading

import pytest

from agent_memory.domain.errors import DependencyUnavailableError, InvalidInputError, StructuredOutputError
from agent_memory.domain.models import SessionKey
from agent_memory.domain.tasks import ExtractionTask, encode_task
from agent_memory.ports import ClaimedTask
from agent_memory.services.task_worker import BackgroundWorker, TaskWorker


class Leases:
    def __init__(self, *bodies: str, receive_count: int = 1) -> None:
        self.pending = [
            ClaimedTask(message_id=f"m{i}", body=body, lease="l", receive_count=receive_count)
            for i, body in enumerate(bodies)
        ]
        self.completed: list[str] = []
        self.failed: list[tuple[str, float, bool]] = []

    def claim(self, lease_seconds: float) -> ClaimedTask | None:
        return self.pending.pop(0) if self.pending else None

    def complete(self, claimed: ClaimedTask) -> None:
        self.completed.append(claimed.message_id)

    def fail(self, claimed: ClaimedTask, error: str, *, retry_in_seconds: float, dead: bool = False) -> None:
        self.failed.append((claimed.message_id, retry_in_seconds, dead))

    def wait_for_work(self, timeout: float) -> None:
        threading.Event().wait(timeout)


TASK = ExtractionTask.for_session(SessionKey(tenant="t", session_id="s"), generation="g")


def test_a_task_that_runs_is_completed() -> None:
    leases = Leases(encode_task(TASK))
    seen: list[ExtractionTask] = []

    assert TaskWorker(leases, seen.append).run_once() is True

    assert seen == [TASK] and leases.completed == ["m0"] and leases.failed == []
    assert TaskWorker(leases, seen.append).run_once() is False  # nothing due


def test_an_invalid_message_goes_to_the_dead_letters_at_once(caplog: pytest.LogCaptureFixture) -> None:
    leases = Leases('{"type": "nope"}')

    TaskWorker(leases, lambda task: pytest.fail("must not run")).run_once()

    assert leases.failed == [("m0", 0, True)]
    assert "task rejected message_id=m0" in caplog.text


def test_a_configuration_that_can_never_work_is_dead_lettered_with_its_task_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(task: ExtractionTask) -> None:
        raise InvalidInputError("custom_prompt looks like prompt injection")

    leases = Leases(encode_task(TASK))
    TaskWorker(leases, refuse).run_once()

    assert leases.failed == [("m0", 0, True)]
    assert f"task failed permanently task_id={TASK.task_id}" in caplog.text


@pytest.mark.parametrize(
    "error", [DependencyUnavailableError("llm", "HTTP 503"), StructuredOutputError("no valid answer", 3)]
)
def test_a_dependency_failure_is_retried_with_exponential_backoff(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(task: ExtractionTask) -> None:
        raise error

    leases = Leases(encode_task(TASK), encode_task(TASK), receive_count=3)
    worker = TaskWorker(leases, fail, retry_base_seconds=2, retry_max_seconds=6)
    worker.run_once()
    worker.run_once()

    assert leases.failed == [("m0", 6, False), ("m1", 6, False)]  # 2 * 2**(3-1) = 8, capped at 6
    assert caplog.records[0].levelno == logging.ERROR and f"task_id={TASK.task_id}" in caplog.text


def test_a_bug_in_the_handler_keeps_the_message_and_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    def crash(task: ExtractionTask) -> None:
        raise KeyError("oops")

    leases = Leases(encode_task(TASK))
    TaskWorker(leases, crash, retry_base_seconds=1).run_once()

    assert leases.failed == [("m0", 1, False)]
    assert "task crashed" in caplog.text


def test_the_background_worker_stops_when_asked() -> None:
    ran = threading.Event()
    leases = Leases(encode_task(TASK))
    background = BackgroundWorker(TaskWorker(leases, lambda task: ran.set(), idle_seconds=0.01))

    background.start()
    assert ran.wait(5)
    background.stop(timeout=5)

    assert leases.completed == ["m0"]
    assert not background._thread.is_alive()
