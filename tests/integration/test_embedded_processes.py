"""The embedded long-term store with several `agent-memory serve` processes on one data directory.

Server workers (`--workers N`) and the worker process each keep their own caches (vector matrix,
keyword index) over the shared SQLite file; these tests run real server processes and check that a create
answered 200 by one is found by the next search of another, in every mode, that deletes and dedup hold
across them, and that the data survives a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fixtures.redis_process import free_port
from tests.fixtures.serve_process import ServeDidNotStart, wait_until_healthy


@contextmanager
def _serve(data_dir: Path, workers: int = 1) -> Iterator[httpx.Client]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "REDIS_URL", "OPENSEARCH_URL")}
    env.update({"EMBEDDING_PROVIDER": "fake", "EMBEDDING_DIMENSIONS": "64"})
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_memory.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process, timeout_seconds=60)
        except ServeDidNotStart as exc:
            pytest.fail(str(exc))
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ids(client: httpx.Client, text: str, mode: str) -> list[str]:
    response = client.post("/v1/long-term-memory/search", json={"text": text, "search_mode": mode, "limit": 50})
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["memories"]]


def _create(client: httpx.Client, id_: str, text: str) -> dict[str, object]:
    response = client.post("/v1/long-term-memory/", json={"memories": [{"id": id_, "text": text}]})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_writes_of_one_server_process_are_read_by_another_and_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with _serve(data_dir) as first, _serve(data_dir) as second:
        # Given both processes' caches warm
        _create(first, "a", "the heron waded through the marsh")
        for mode in ("keyword", "semantic", "hybrid"):
            assert _ids(second, "heron marsh", mode) == ["a"], mode
        # When one process creates, the other's next search finds it, in every mode
        _create(first, "b", "a heron caught a silver fish")
        for mode in ("keyword", "semantic", "hybrid"):
            assert set(_ids(second, "heron", mode)) == {"a", "b"}, mode
        # And a create of the same text elsewhere is a duplicate of the stored one
        answer = _create(second, "c", "a heron caught a silver fish")
        assert (answer["stored_ids"], answer["duplicate_of"]) == ([], {"c": "b"})
        # And a delete by one is seen by the other
        assert first.request("DELETE", "/v1/long-term-memory", params={"memory_ids": "a"}).status_code == 200
        assert _ids(second, "heron", "keyword") == ["b"]
    # When a new process starts on the same directory, everything is still there
    with _serve(data_dir) as restarted:
        assert _ids(restarted, "heron fish", "keyword") == ["b"]
        assert restarted.get("/v1/long-term-memory/b").json()["text"] == "a heron caught a silver fish"


def test_with_two_server_workers_every_create_is_found_by_the_next_search(tmp_path: Path) -> None:
    # Given `agent-memory serve --workers 2`, and a fresh connection per request, so that each request
    # lands on whichever worker accepts it (the two-process test above pins the cross-process case)
    with _serve(tmp_path / "data", workers=2) as client:
        base = str(client.base_url)
        for i in range(12):
            # When a create is answered 200
            with httpx.Client(base_url=base, timeout=30) as one:
                _create(one, f"m{i}", f"note {i} about the kingfisher")
            # Then the next search, on whichever worker, finds it and every earlier one
            with httpx.Client(base_url=base, timeout=30) as other:
                assert len(_ids(other, "kingfisher", "keyword")) == i + 1
                assert f"m{i}" in _ids(other, f"note {i} about the kingfisher", "semantic")
