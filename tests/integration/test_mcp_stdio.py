"""`agent-memory mcp`: the MCP server over stdio, spawned by the official `mcp` client as a desktop or IDE
client spawns it, on the embedded SQLite stores and on a real redis-server.

Given `agent-memory mcp --tenant acme` started by the client
When the client calls every tool
Then they answer as AMS's do, in tenant acme only (the REST API of the same data dir sees them there
and not in another tenant), and stdout carried nothing but the protocol.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mcp import Client, StdioServerParameters

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings
from tests.fixtures.serve_process import AGENT_MEMORY
from tests.integration.mcp_session import call, drive_every_tool, error_of, readme_mcp_configs


def environment(data_dir: Path, redis_url: str | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "", "AGENT_MEMORY_DATA_DIR": str(data_dir)}
    for name in ("AUTH_MODE", "API_KEYS_TABLE", "REDIS_URL", "DEFAULT_TENANT", "DEFAULT_MCP_NAMESPACE",
                 "DEFAULT_MCP_USER_ID", "AWS_LAMBDA_FUNCTION_NAME"):  # fmt: skip
        env.pop(name, None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return {**env, **extra}


def stdio_server(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=str(AGENT_MEMORY), args=["mcp", *args], env=env)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


async def test_every_tool_over_stdio_in_the_named_tenant(backend: str | None, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = environment(data_dir, backend)
    async with Client(stdio_server(env, "--tenant", "acme"), read_timeout_seconds=60) as client:
        written = await drive_every_tool(client)

    # The same stores through the REST app: the record is tenant acme's, and only acme's
    settings = make_settings(tmp_path, AGENT_MEMORY_DATA_DIR=data_dir, redis_url=backend)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    try:
        with TestClient(create_app(container)) as api:
            kept = written["kept"][0]
            mine = api.get(f"/v1/long-term-memory/{kept}", headers={"x-tenant-id": "acme"})
            assert mine.status_code == 200 and mine.json()["pinned"] is True
            assert api.get(f"/v1/long-term-memory/{kept}").status_code == 404  # DEFAULT_TENANT
            assert api.get(f"/v1/working-memory/{written['session']}", params={"namespace": "travel"},
                           headers={"x-tenant-id": "acme"}).status_code == 200  # fmt: skip
    finally:
        container.close()


async def test_without_tenant_it_acts_for_default_tenant_with_the_mcp_defaults(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", None, DEFAULT_TENANT="home", DEFAULT_MCP_NAMESPACE="desk",
                      DEFAULT_MCP_USER_ID="me")  # fmt: skip
    async with Client(stdio_server(env), read_timeout_seconds=60) as client:
        created = await call(client, "create_long_term_memories", memories=[{"text": "User likes tea"}])
        record = await call(client, "get_long_term_memory", memory_id=created["stored_ids"][0])
    assert (record["namespace"], record["user_id"]) == ("desk", "me")
    async with Client(stdio_server({**env, "DEFAULT_TENANT": "other"}), read_timeout_seconds=60) as client:
        assert (await call(client, "search_long_term_memory", text=""))["total"] == 0  # another tenant


def test_a_bad_tenant_or_configuration_stops_it_with_the_reason_on_stderr(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", None)
    bad_tenant = subprocess.run([str(AGENT_MEMORY), "mcp", "--tenant", "a/b"], env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad_tenant.returncode == 2 and bad_tenant.stdout == ""
    assert "--tenant 'a/b' is not a valid tenant id" in bad_tenant.stderr
    bad_setting = subprocess.run([str(AGENT_MEMORY), "mcp"], env={**env, "EMBEDDING_PROVIDER": "nonsense"},
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad_setting.returncode == 2 and bad_setting.stdout == ""
    assert "invalid configuration" in bad_setting.stderr and "embedding_provider" in bad_setting.stderr.lower()


async def test_a_dependency_down_is_a_tool_error_naming_it_and_the_server_keeps_serving(tmp_path: Path) -> None:
    # Given working memory on a Redis nobody listens on (port 1)
    env = environment(tmp_path / "data", "redis://127.0.0.1:1/0", REDIS_TIMEOUT_SECONDS="0.5")
    async with Client(stdio_server(env), read_timeout_seconds=60) as client:
        # When a working-memory tool runs, Then it is a tool error naming Redis
        text = await error_of(client, "get_working_memory", session_id="s1")
        assert "unavailable (503): redis unavailable" in text and "(dependency: redis; retry later)" in text
        # And the process still serves the tools that need no Redis
        assert (await call(client, "get_current_datetime"))["iso_utc"].endswith("Z")


async def test_readmes_stdio_config_starts_a_working_server(tmp_path: Path) -> None:
    # Given README's desktop-client config, with the installed command and a data dir of this test
    config = readme_mcp_configs()[0]
    assert config["command"] == "agent-memory" and config["args"][:2] == ["mcp", "--tenant"]
    args = [tmp_path.as_posix() if arg.startswith("/home/") else arg for arg in config["args"]]
    env = {**environment(tmp_path / "unused", None), **config["env"]}
    # When a client starts it as the config says, Then the tools work with the config's defaults
    async with Client(StdioServerParameters(command=str(AGENT_MEMORY), args=args, env=env),
                      read_timeout_seconds=60) as client:  # fmt: skip
        created = await call(client, "create_long_term_memories", memories=[{"text": "User likes tea"}])
        record = await call(client, "get_long_term_memory", memory_id=created["stored_ids"][0])
    assert (record["namespace"], record["user_id"]) == (config["env"]["DEFAULT_MCP_NAMESPACE"], "me")
