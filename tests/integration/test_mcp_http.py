"""MCP over streamable HTTP at `/mcp` of a live `agent-memory serve` process, through the official `mcp`
client, on the embedded SQLite stores and on a real redis-server, with API keys on.

Given a served API with AUTH_MODE=api_key and keys made by `agent-memory keys create`
When an MCP client calls every tool with a key (both protocol eras the SDK speaks: the 2026 per-request
envelope and the initialize handshake), without one, with a read-only key, or as another tenant
Then the tools answer as AMS's do, in the key's tenant (the REST API sees the same records), a call
without a key is refused with 401 before the SDK sees it, and scopes and tenants hold per tool.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fixtures.serve_process import AGENT_MEMORY, served
from tests.integration.mcp_session import call, drive_every_tool, error_of, readme_mcp_configs

TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
JSON_RPC = {"Accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}


def environment(data_dir: Path, redis_url: str | None) -> dict[str, str]:
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "", "AUTH_MODE": "api_key",
           "AGENT_MEMORY_DATA_DIR": str(data_dir)}  # fmt: skip
    for name in ("API_KEYS_TABLE", "AWS_LAMBDA_FUNCTION_NAME", "REDIS_URL", "DEFAULT_MCP_NAMESPACE",
                 "DEFAULT_MCP_USER_ID", "RATE_LIMIT_PER_SECOND"):  # fmt: skip
        env.pop(name, None)
    env["RATE_LIMIT_PER_SECOND"] = "0"  # the scenario sends ~30 requests at once; limits have their own tests
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def create_key(env: dict[str, str], tenant: str, *scopes: str) -> str:
    scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
    done = subprocess.run([str(AGENT_MEMORY), "keys", "create", "--tenant", tenant, *scope_args],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    with served([], env) as (base, _):
        yield base


@asynccontextmanager
async def mcp_client(base: str, key: str | None, *, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http:
        transport = streamable_http_client(f"{base}/mcp", http_client=http)
        async with Client(transport, mode=mode, read_timeout_seconds=30) as client:
            yield client


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return environment(tmp_path / "data", redis_url)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_tool_over_http_in_the_keys_tenant(env: dict[str, str], mode: str) -> None:
    key = create_key(env, "acme")
    other = create_key(env, "globex")
    with serving(env) as base:
        async with mcp_client(base, key, mode=mode) as client:
            written = await drive_every_tool(client)
        # The tools wrote where the REST API reads for the same key, and nowhere another tenant sees
        kept = written["kept"][0]
        rest = httpx.get(f"{base}/v1/long-term-memory/{kept}", headers={"X-API-Key": key}, timeout=10)
        assert rest.status_code == 200 and rest.json()["text"] == "User prefers window seats on long flights"
        assert httpx.get(f"{base}/v1/long-term-memory/{kept}", headers={"X-API-Key": other},
                         timeout=10).status_code == 404  # fmt: skip
        async with mcp_client(base, other, mode=mode) as client:
            assert "not found (404)" in await error_of(client, "get_long_term_memory", memory_id=kept)
            found = await call(client, "search_long_term_memory", text="", limit=100)
            assert found["total"] == 0
            session = await call(client, "get_working_memory", session_id=written["session"])
            assert session["messages"] == []


async def test_without_a_key_mcp_is_401_before_the_sdk_and_a_read_only_key_cannot_write(env: dict[str, str]) -> None:
    reader = create_key(env, "acme", "memory:read")
    with serving(env) as base:
        # Given no credential: the same 401 as every REST route, for every MCP message
        refused = httpx.post(f"{base}/mcp", json=TOOLS_LIST, headers=JSON_RPC, timeout=10)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json() == {"detail": "Missing authorization header"}
        bad = httpx.post(f"{base}/mcp", json=TOOLS_LIST, headers={**JSON_RPC, "X-API-Key": "am_nope"}, timeout=10)
        assert bad.status_code == 401
        with pytest.raises(Exception):  # noqa: B017 - the SDK's own error type for an HTTP 401 varies by era
            async with mcp_client(base, None) as client:
                await client.list_tools()
        # Given a read-only key: reads work, every write tool is a tool error naming the scope
        async with mcp_client(base, reader) as client:
            assert (await call(client, "search_long_term_memory", text="anything"))["total"] == 0
            for tool, arguments in (
                ("create_long_term_memories", {"memories": [{"text": "User likes tea"}]}),
                ("set_working_memory", {"session_id": "s1", "messages": [{"role": "user", "content": "hi"}]}),
                ("edit_long_term_memory", {"memory_id": "m1", "text": "x"}),
                ("delete_long_term_memories", {"memory_ids": ["m1"]}),
                ("compact_long_term_memories", {}),
            ):
                text = await error_of(client, tool, **arguments)
                assert text.endswith("permission denied (403): This credential lacks the memory:write scope"), text
            assert (await call(client, "get_working_memory", session_id="s1"))["messages"] == []
        # GET and DELETE (an SSE stream, a session) do not exist on a stateless server
        assert httpx.get(f"{base}/mcp", headers={"X-API-Key": reader}, timeout=10).status_code == 405


async def test_defaults_from_settings_fill_namespace_and_user(env: dict[str, str]) -> None:
    env = {**env, "DEFAULT_MCP_NAMESPACE": "assistant", "DEFAULT_MCP_USER_ID": "me"}
    key = create_key(env, "acme")
    with serving(env) as base:
        async with mcp_client(base, key) as client:
            created = await call(client, "create_long_term_memories", memories=[{"text": "User likes tea"}])
            stored = await call(client, "get_long_term_memory", memory_id=created["stored_ids"][0])
            assert (stored["namespace"], stored["user_id"]) == ("assistant", "me")
            session = await call(client, "set_working_memory", session_id="s1",
                                 messages=[{"role": "user", "content": "hi"}])  # fmt: skip
            assert (session["namespace"], session["user_id"]) == ("assistant", "me")
            # A search that names no namespace searches the default one only
            await call(client, "create_long_term_memories",
                       memories=[{"text": "User likes coffee", "namespace": "elsewhere", "user_id": "me"}])
            found = await call(client, "search_long_term_memory", text="")
            assert [m["text"] for m in found["memories"]] == ["User likes tea"]
            elsewhere = await call(client, "search_long_term_memory", text="", namespace={"eq": "elsewhere"})
            assert [m["text"] for m in elsewhere["memories"]] == ["User likes coffee"]


async def test_readmes_http_config_reaches_the_tools_with_its_header(env: dict[str, str]) -> None:
    # Given README's HTTP config, pointed at a live server and holding a real key
    config = readme_mcp_configs()[1]
    assert config["type"] == "http" and config["url"].endswith("/mcp")
    assert config["headers"] == {"Authorization": "Bearer am_..."}
    key = create_key(env, "acme")
    with serving(env) as base:
        headers = {name: value.replace("am_...", key) for name, value in config["headers"].items()}
        url = base + "/" + config["url"].rsplit("/", 1)[1]
        # When a client connects as the config says, Then it lists the tools and calls one
        async with (
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http,
            Client(streamable_http_client(url, http_client=http), read_timeout_seconds=30) as client,
        ):
            assert len((await client.list_tools()).tools) == 10
            assert (await call(client, "search_long_term_memory", text=""))["total"] == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_with_auth_disabled_a_web_page_of_another_origin_is_refused(api: TestClient) -> None:
    # Given a key-less local server (AUTH_MODE=disabled): whoever reaches the port is every tenant
    for origin, status in (("https://evil.example", 403), ("http://localhost:5173", 200), ("http://127.0.0.1", 200),
                           (None, 200)):  # fmt: skip
        headers = {**JSON_RPC, **({"Origin": origin} if origin else {})}
        # When a request carries that Origin (a browser always sends it), Then only loopback origins pass
        answer = api.post("/mcp", json=TOOLS_LIST, headers=headers)
        assert answer.status_code == status, (origin, answer.text)
    refused = api.post("/mcp", json=TOOLS_LIST, headers={**JSON_RPC, "Origin": "https://evil.example"})
    assert refused.json() == {"detail": "Origin https://evil.example may not call /mcp with AUTH_MODE=disabled "
                                        "(only loopback origins may)"}  # fmt: skip
