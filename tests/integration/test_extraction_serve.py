"""Background extraction on a laptop: real `agent-memory serve` (and `agent-memory worker`) processes
working the embedded SQLite queue, with the scripted OpenAI-compatible LLM on loopback; a server
killed with SIGKILL in the middle of a task finishes it once after a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_memory.adapters.sqlite_task_queue import SqliteTaskQueue
from tests.fixtures.openai_stub import OpenAIStub
from tests.fixtures.redis_process import free_port

AGENT_MEMORY = Path(sys.executable).with_name("agent-memory")
CONVERSATION = {
    "namespace": "home",
    "user_id": "bob",
    "messages": [
        {"id": "m1", "role": "user", "content": "We adopted a cat called Miso last Sunday",
         "created_at": "2024-06-12T18:00:00Z"},
        {"id": "m2", "role": "user", "content": "I prefer tea over coffee", "created_at": "2024-06-12T18:01:00Z"},
    ],
}
EXTRACTED = json.dumps({"memories": [
    {"type": "episodic", "text": "User adopted a cat named Miso on 2024-06-09", "topics": ["pets"],
     "entities": ["Miso"], "event_date": "2024-06-09T00:00:00Z"},
    {"type": "semantic", "text": "User prefers tea over coffee", "topics": ["drinks"], "entities": []},
]})


def environment(stub: OpenAIStub, **extra: str) -> dict[str, str]:
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "test", "OPENAI_BASE_URL": stub.base_url,
           "EXTRACTION_DEBOUNCE_SECONDS": "0", "TASK_LEASE_SECONDS": "2", **extra}
    env.pop("AGENT_MEMORY_DATA_DIR", None)
    return env


@contextmanager
def serving(data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [str(AGENT_MEMORY), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base, process), 30, "serve did not answer /v1/health")
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _healthy(base: str, process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        output = process.stdout.read() if process.stdout else ""
        pytest.fail(f"serve exited with {process.returncode}:\n{output}")
    try:
        return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], Any], seconds: float, message: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def memories(base: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{base}/v1/long-term-memory/search",
                          json={"text": "", "namespace": {"eq": "home"}, "limit": 50}, timeout=5)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["memories"]
    return found


def chat_calls(stub: OpenAIStub) -> int:
    return sum(1 for path in stub.paths() if path.endswith("/chat/completions"))


def test_serve_extracts_a_put_conversation_in_the_background(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    openai_stub.script_chat(EXTRACTED)
    with serving(tmp_path / "memory", environment(openai_stub)) as (base, _):
        assert httpx.get(f"{base}/v1/health").json()["features"]["extraction"] is True

        put = httpx.put(f"{base}/v1/working-memory/chat", json=CONVERSATION)
        assert put.status_code == 200
        task_id = put.headers["X-Agent-Memory-Extraction"].removeprefix("queued; task_id=")

        found = wait_for(lambda: len(memories(base)) == 2 and memories(base), 15, "no memories extracted")
        # the task record turns success after the messages are marked
        wait_for(lambda: httpx.get(f"{base}/v1/tasks/{task_id}").json()["status"] == "success", 5, "task not done")
        by_text = {m["text"]: m for m in found}
        cat = by_text["User adopted a cat named Miso on 2024-06-09"]
        assert (cat["namespace"], cat["user_id"], cat["session_id"]) == ("home", "bob", "chat")
        assert cat["memory_type"] == "episodic" and cat["event_date"] == "2024-06-09T00:00:00Z"
        session = httpx.get(f"{base}/v1/working-memory/chat", params={"namespace": "home", "user_id": "bob"}).json()
        assert {m["discrete_memory_extracted"] for m in session["messages"]} == {"t"}
    assert chat_calls(openai_stub) == 1


def test_a_task_cut_off_by_sigkill_completes_once_after_a_restart(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    data_dir = tmp_path / "memory"
    env = environment(openai_stub)
    # The first extraction hangs in the LLM call; the one after the restart answers at once
    openai_stub.script_chat({"delay": 60, "content": EXTRACTED}, EXTRACTED)
    with serving(data_dir, env) as (base, process):
        assert httpx.put(f"{base}/v1/working-memory/chat", json=CONVERSATION).status_code == 200
        wait_for(lambda: chat_calls(openai_stub) == 1, 15, "the worker never called the LLM")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    with serving(data_dir, env) as (base, _):
        found = wait_for(lambda: len(memories(base)) >= 2 and memories(base), 20, "the task was not redone")
        time.sleep(0.5)  # room for a wrong second run to show up
        assert sorted(m["text"] for m in memories(base)) == sorted(m["text"] for m in found)
        assert len(found) == 2
    assert chat_calls(openai_stub) == 2  # the killed run and the one that finished, nothing more
    assert SqliteTaskQueue(data_dir / "tasks.sqlite3").counts() == {"pending": 0, "dead": 0}


def test_agent_memory_worker_works_the_queue_a_server_left(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    data_dir = tmp_path / "memory"
    openai_stub.script_chat(EXTRACTED)
    with serving(data_dir, environment(openai_stub, EMBEDDED_WORKER="false")) as (base, _):
        assert httpx.put(f"{base}/v1/working-memory/chat", json=CONVERSATION).status_code == 200
        time.sleep(0.5)
        assert memories(base) == [] and chat_calls(openai_stub) == 0  # this server does not work the queue

        worker = subprocess.Popen(
            [str(AGENT_MEMORY), "worker", "--data-dir", str(data_dir)], env=environment(openai_stub),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_for(lambda: len(memories(base)) == 2, 15, "the worker extracted nothing")
        finally:
            worker.send_signal(signal.SIGINT)
            assert worker.wait(timeout=15) == 0
    assert SqliteTaskQueue(data_dir / "tasks.sqlite3").counts() == {"pending": 0, "dead": 0}
