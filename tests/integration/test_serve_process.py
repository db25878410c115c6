"""`agent-memory serve` as a user runs it: a real process, real HTTP, `--port`, `--data-dir`, `--workers`.

A clean shutdown (SIGINT, as Ctrl-C sends, or SIGTERM) leaves the data in the `.sqlite3` files
themselves, not only in their write-ahead logs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fixtures.redis_process import free_port
from tests.fixtures.serve_process import AGENT_MEMORY, ServeDidNotStart, wait_until_healthy


@contextmanager
def serving(data_dir: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    environment = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": ""}
    environment.pop("AGENT_MEMORY_DATA_DIR", None)
    process = subprocess.Popen(
        [str(AGENT_MEMORY), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_healthy(base, process)
        except ServeDidNotStart as exc:
            pytest.fail(str(exc))
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _stop(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Stop the server as a user or a supervisor would; uvicorn shuts down, then re-raises the signal."""
    process.send_signal(sig)
    assert process.wait(timeout=20) in (0, -sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_takes_port_and_data_dir_and_a_clean_stop_checkpoints_sqlite(tmp_path: Path, sig: signal.Signals) -> None:
    data_dir = tmp_path / "memory"
    with serving(data_dir) as (base, process):
        put = httpx.put(f"{base}/v1/working-memory/s1", json={"messages": [{"role": "user", "content": "hi"}]})
        assert put.status_code == 200
        memory = {"id": "m1", "text": "User likes tea"}
        assert httpx.post(f"{base}/v1/long-term-memory/", json={"memories": [memory]}).status_code == 200
        _stop(process, sig)
    # Then the data is in the main database files, with no write-ahead log left to replay
    for name in ("working_memory.sqlite3", "long_term.sqlite3"):
        assert (data_dir / name).is_file()
        wal = data_dir / f"{name}-wal"
        assert not wal.exists() or wal.stat().st_size == 0, f"{wal} still holds {wal.stat().st_size} bytes"
    with sqlite3.connect(data_dir / "working_memory.sqlite3") as db:
        assert db.execute("SELECT session_id FROM working_memory").fetchall() == [("s1",)]


def test_serve_port_defaults_to_the_port_variable(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(AGENT_MEMORY), "serve", "--help"], env={**os.environ, "PORT": "8123"}, capture_output=True, text=True
    )
    assert completed.returncode == 0 and "--workers" in completed.stdout and "--data-dir" in completed.stdout
    # argparse shows the default it computed from $PORT
    from agent_memory import cli

    os.environ["PORT"] = "8123"
    try:
        assert cli._parser().parse_args(["serve"]).port == 8123
    finally:
        del os.environ["PORT"]


def test_serve_with_two_workers_shares_one_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "memory"
    with serving(data_dir, "--workers", "2") as (base, process):
        # Writes through whichever worker answers are read back by every later request
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(20):
                body = {"messages": [{"role": "user", "content": f"message {i}"}]}
                assert client.put(f"/v1/working-memory/s{i}", json=body).status_code == 200
                assert client.get(f"/v1/working-memory/s{i}").json()["messages"][0]["content"] == f"message {i}"
            assert client.get("/v1/working-memory/", params={"limit": 100}).json()["total"] == 20
        _stop(process, signal.SIGTERM)
    with sqlite3.connect(data_dir / "working_memory.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM working_memory").fetchone() == (20,)


def test_serve_refuses_zero_workers(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(AGENT_MEMORY), "serve", "--workers", "0"], capture_output=True, text=True, timeout=30
    )
    assert completed.returncode == 2 and "must be at least 1" in completed.stderr
