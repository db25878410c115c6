"""`agent-memory users export|delete` as a user runs it: the installed console script in its own process,
over the stores its settings select (the embedded SQLite files of --data-dir, or Redis by REDIS_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent_memory.domain.models import MemoryMessage, MemoryRecord, SessionKey, WorkingMemory
from tests.fixtures.app import make_container

CLI = Path(sys.executable).with_name("agent-memory")


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Seeds alice and bob in tenant t1 and alice in t2; the environment the CLI runs with."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    container = make_container(tmp_path, redis_url=redis_url)
    for tenant, user in (("t1", "alice"), ("t1", "bob"), ("t2", "alice")):
        key = SessionKey(tenant=tenant, namespace="n1", user_id=user, session_id="s1")
        container.working_memory_store.put(key, WorkingMemory(
            session_id="s1", namespace="n1", user_id=user, messages=[MemoryMessage(role="user", content="hi")]))
        container.long_term_service.create(tenant, [MemoryRecord(id=f"{user}-1", text=f"{user} likes tea",
                                                                 namespace="n1", user_id=user)])
    container.close()
    values = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REDIS_", "AGENT_MEMORY_"))}
    values.update({"EMBEDDING_PROVIDER": "fake", "AGENT_MEMORY_DATA_DIR": str(tmp_path / "data")})
    if redis_url:
        values["REDIS_URL"] = redis_url
    return values


def _cli(env: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "users", *args], env=env, cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_export_then_delete_one_user_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    # export to a file
    out = tmp_path / "alice.json"
    exported = _cli(env, tmp_path, "export", "--tenant", "t1", "--user", "alice", "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    export = json.loads(out.read_text())
    assert [s["user_id"] for s in export["working_memory"]] == ["alice"]
    assert [r["id"] for r in export["long_term_memories"]] == ["alice-1"]
    assert export["tenant"] == "t1" and "bob" not in out.read_text()
    # and to stdout
    printed = _cli(env, tmp_path, "export", "--tenant", "t1", "--user", "alice", "--namespace", "n1")
    assert printed.returncode == 0 and json.loads(printed.stdout)["counts"]["long_term_memories"] == 1

    # delete asks first: anything but yes deletes nothing
    refused = _cli(env, tmp_path, "delete", "--tenant", "t1", "--user", "alice", stdin="no\n")
    assert refused.returncode == 2 and "not deleted" in refused.stderr
    assert "Delete everything of user 'alice' in tenant 't1'" in refused.stderr
    kept = _cli(env, tmp_path, "export", "--tenant", "t1", "--user", "alice")
    assert json.loads(kept.stdout)["counts"]["long_term_memories"] == 1

    confirmed = _cli(env, tmp_path, "delete", "--tenant", "t1", "--user", "alice", stdin="yes\n")
    assert confirmed.returncode == 0, confirmed.stderr
    counts = json.loads(confirmed.stdout)
    assert (counts["working_memory_sessions"], counts["long_term_memories"]) == (1, 1)

    # gone for alice in t1; bob and t2's alice untouched; a second delete (--yes) answers zeros
    for tenant, user, expected in (("t1", "alice", 0), ("t1", "bob", 1), ("t2", "alice", 1)):
        result = json.loads(_cli(env, tmp_path, "export", "--tenant", tenant, "--user", user).stdout)
        assert result["counts"]["long_term_memories"] == result["counts"]["working_memory"] == expected
    again = _cli(env, tmp_path, "delete", "--tenant", "t1", "--user", "alice", "--yes")
    assert json.loads(again.stdout)["long_term_memories"] == 0


def test_a_missing_argument_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    result = _cli(env, tmp_path, "delete", "--tenant", "t1", "--yes")
    assert result.returncode == 2 and "--user" in result.stderr
