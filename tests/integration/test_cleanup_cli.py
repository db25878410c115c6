"""`agent-memory cleanup` as an operator runs it (cron, a systemd timer): a real process over the embedded
stores in `--data-dir`, printing the report as JSON."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore
from agent_memory.domain.models import SessionKey, WorkingMemory
from tests.fixtures.serve_process import AGENT_MEMORY


def _cleanup(data_dir: Path, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": ""}
    env.pop("AGENT_MEMORY_DATA_DIR", None)
    result = subprocess.run([str(AGENT_MEMORY), "cleanup", "--data-dir", str(data_dir), *extra],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _seed(data_dir: Path) -> None:
    """Two tenants, each with a live session and one whose expiry has passed."""
    data_dir.mkdir(parents=True)
    store = SqliteWorkingMemoryStore(data_dir / "working_memory.sqlite3")
    for tenant in ("acme", "globex"):
        for sid in ("live", "gone"):
            store.put(SessionKey(tenant=tenant, session_id=sid), WorkingMemory(session_id=sid, ttl_seconds=3600))
    store.close()
    with sqlite3.connect(data_dir / "working_memory.sqlite3") as db:
        db.execute("UPDATE working_memory SET expires_at = 1 WHERE session_id = 'gone'")


def test_cleanup_sweeps_every_tenant_and_prints_what_it_did(tmp_path: Path) -> None:
    data_dir = tmp_path / "memory"
    _seed(data_dir)

    report = _cleanup(data_dir)

    assert report == {"tenants": 2, "sessions_swept": 2, "final_extractions_queued": 0, "records_forgotten": 0,
                      "resumed": False, "finished": True, "failed_tenants": []}  # fmt: skip
    with sqlite3.connect(data_dir / "working_memory.sqlite3") as db:
        assert db.execute("SELECT tenant, session_id FROM working_memory ORDER BY tenant").fetchall() == [
            ("acme", "live"), ("globex", "live")]  # fmt: skip


def test_max_seconds_stops_the_run_and_the_next_one_does_the_work(tmp_path: Path) -> None:
    data_dir = tmp_path / "memory"
    _seed(data_dir)

    # No time at all: nothing is done, and nothing is lost
    stopped = _cleanup(data_dir, "--max-seconds", "0")
    assert (stopped["finished"], stopped["tenants"], stopped["sessions_swept"]) == (False, 0, 0)

    again = _cleanup(data_dir)
    assert (again["finished"], again["sessions_swept"]) == (True, 2)
