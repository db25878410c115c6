"""API keys as a user meets them: `agent-memory keys` in one process, `agent-memory serve` in another, real
HTTP, the official `agent-memory-client` 0.14.0 and README's snippet; a revoke from the CLI is 401 at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from agent_memory_client import MemoryAPIClient, MemoryClientConfig
from agent_memory_client.exceptions import MemoryClientError

from tests.fixtures.redis_process import free_port
from tests.fixtures.serve_process import AGENT_MEMORY, served

README = Path(__file__).resolve().parents[2] / "README.md"
KEY = re.compile(r"^am_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "", **extra}
    for name in ("AGENT_MEMORY_DATA_DIR", "AUTH_MODE", "API_KEYS_TABLE", "AWS_LAMBDA_FUNCTION_NAME"):
        if name not in extra:
            env.pop(name, None)
    return env


def keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENT_MEMORY), "keys", *args, "--data-dir", str(data_dir)],
        env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def create_key(data_dir: Path, *args: str) -> tuple[str, str]:
    """(key_id, key) from `keys create`, whose last stdout line is the key alone."""
    done = keys(data_dir, "create", *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert KEY.fullmatch(lines[-1]), lines
    (key_id,) = (line.split(": ", 1)[1] for line in lines if line.startswith("key_id: "))
    return key_id, lines[-1]


@contextmanager
def serving(data_dir: Path, *extra: str, **env: str) -> Iterator[str]:
    with served(["--data-dir", str(data_dir), *extra], environment(AUTH_MODE="api_key", **env)) as (base, _):
        yield base


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "memory"


def test_keys_create_prints_the_key_alone_on_the_last_line_and_list_never_shows_it(data_dir: Path) -> None:
    key_id, key = create_key(data_dir, "--tenant", "acme", "--name", "laptop")
    _, other = create_key(data_dir, "--tenant", "beta", "--scope", "memory:read", "--expires-in-days", "30")
    secret = key.rsplit("_", 1)[1]
    for args in ((), ("--json",), ("--tenant", "acme")):
        listed = keys(data_dir, "list", *args)
        assert listed.returncode == 0, listed.stderr
        for shown in (key, secret, other, other.rsplit("_", 1)[1]):
            assert shown not in listed.stdout
        assert "secret_hash" not in listed.stdout and not re.search(r"[0-9a-f]{64}", listed.stdout)
    rows = json.loads(keys(data_dir, "list", "--json").stdout)
    assert [(r["tenant"], r["name"], r["scopes"]) for r in rows] == [
        ("acme", "laptop", ["memory:read", "memory:write"]),
        ("beta", "", ["memory:read"]),
    ]
    assert rows[0]["key_id"] == key_id and rows[0]["revoked_at"] is None and rows[1]["expires_at"] is not None
    only_acme = json.loads(keys(data_dir, "list", "--tenant", "acme", "--json").stdout)
    assert [r["key_id"] for r in only_acme] == [key_id]


def test_keys_create_refuses_a_bad_tenant_or_scope(data_dir: Path) -> None:
    bad_tenant = keys(data_dir, "create", "--tenant", "a/b")
    assert bad_tenant.returncode == 2 and "not a valid tenant id" in bad_tenant.stderr and bad_tenant.stdout == ""
    bad_scope = keys(data_dir, "create", "--tenant", "acme", "--scope", "memory:all")
    assert bad_scope.returncode == 2 and "invalid choice" in bad_scope.stderr
    unknown = keys(data_dir, "revoke", "0000000000000000")
    assert unknown.returncode == 2 and "no API key 0000000000000000" in unknown.stderr


def test_a_served_api_takes_a_key_and_a_revoke_from_another_process_is_401_at_once(data_dir: Path) -> None:
    key_id, key = create_key(data_dir, "--tenant", "acme")
    with serving(data_dir) as base:
        assert httpx.get(f"{base}/v1/working-memory/", timeout=5).status_code == 401
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
            assert httpx.get(f"{base}/v1/working-memory/", headers=headers, timeout=5).status_code == 200
        revoked = keys(data_dir, "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        response = httpx.get(f"{base}/v1/working-memory/", headers={"X-API-Key": key}, timeout=5)
        assert response.status_code == 401
        assert response.json() == {"detail": "Token has been revoked"}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    listed = json.loads(keys(data_dir, "list", "--json").stdout)
    assert listed[0]["revoked_at"] is not None and listed[0]["last_used_at"] is not None


async def test_the_official_client_works_with_a_key_on_its_httpx_client(data_dir: Path) -> None:
    _, key = create_key(data_dir, "--tenant", "acme")
    with serving(data_dir) as base:
        async with MemoryAPIClient(MemoryClientConfig(base_url=base, timeout=10)) as client:
            assert (await client.health_check()).now > 0  # open: the client polls it
            with pytest.raises(MemoryClientError):
                await client.list_sessions()
            client._client.headers["Authorization"] = f"Bearer {key}"
            from agent_memory_client.models import MemoryMessage, WorkingMemory

            memory = WorkingMemory(session_id="s1", messages=[MemoryMessage(role="user", content="hi")])
            await client.put_working_memory("s1", memory)
            assert (await client.list_sessions()).sessions == ["s1"]


def _readme_block(language: str) -> str:
    section = README.read_text().split("## Authentication", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, f"README's Authentication section should have one {language} block"
    return str(blocks[0])


def test_readmes_client_snippet_runs_as_written_against_a_keyed_server(data_dir: Path, tmp_path: Path) -> None:
    _, key = create_key(data_dir, "--tenant", "acme")
    with serving(data_dir) as base:
        script = tmp_path / "snippet.py"
        script.write_text(_readme_block("python").replace("http://127.0.0.1:8000", base))
        done = subprocess.run([sys.executable, str(script)], env=environment(AGENT_MEMORY_API_KEY=key),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"  # the tenant's sessions: none yet, and no 401


def test_serve_refuses_a_public_address_with_auth_disabled(data_dir: Path) -> None:
    done = subprocess.run(
        [str(AGENT_MEMORY), "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(data_dir)],
        env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 with AUTH_MODE=disabled" in done.stderr


def test_the_keys_cli_writes_to_dynamodb_when_api_keys_table_is_set(dynamodb_table: tuple[str, str],
                                                                    tmp_path: Path) -> None:  # fmt: skip
    endpoint, table = dynamodb_table
    env = environment(API_KEYS_TABLE=table, DYNAMODB_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AGENT_MEMORY), "keys", *args], env=env, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)  # fmt: skip

    created = run("create", "--tenant", "acme", "--name", "prod")
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert KEY.fullmatch(key)
    import boto3

    items = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint).scan(TableName=table)["Items"]
    assert [i["tenant"]["S"] for i in items] == ["acme"]
    assert key.rsplit("_", 1)[1] not in json.dumps(items)  # only the hash is stored
    listed = json.loads(run("list", "--tenant", "acme", "--json").stdout)
    assert [r["name"] for r in listed] == ["prod"]
    assert run("revoke", listed[0]["key_id"]).returncode == 0
    assert json.loads(run("list", "--json").stdout)[0]["revoked_at"] is not None
    assert not (tmp_path / ".agent-memory" / "api_keys.sqlite3").exists()  # nothing went to SQLite
