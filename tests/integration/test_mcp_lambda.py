"""`POST /mcp` through ApiFunction's Lambda handler (functions/api/api_handler.py, Mangum, lifespan off), with
API keys on: every MCP message is its own invocation with an API Gateway HTTP API v2.0 event.

Given the handler's app on SQLite stores with AUTH_MODE=api_key and a key of tenant acme
When the official `mcp` client's HTTP requests are turned into API Gateway events and sent to the handler,
one invocation each, on one thread and one event loop as in a Lambda execution environment
Then every tool works (the SDK's session manager is started per invocation, so nothing needs a lifespan),
the event files without a key are 401, and a read-only key cannot write.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest
from mangum import Mangum
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.domain.auth import SCOPE_READ, SCOPE_WRITE
from agent_memory.http.app import create_app
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_settings
from tests.integration.mcp_session import call, drive_every_tool, error_of

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
HANDLER_FILE = REPO / "functions" / "api" / "api_handler.py"
HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


def http_api_event(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event, as API Gateway builds it for the request."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {**{k.lower(): v for k, v in headers.items()}, "host": HOST},
        "requestContext": {
            "accountId": "123456789012", "apiId": "a1b2c3d4e5", "domainName": HOST, "domainPrefix": "a1b2c3d4e5",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10",
                     "userAgent": headers.get("user-agent", "")},
            "requestId": "mcp-test", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2025:12:00:00 +0000", "timeEpoch": 1735732800000,
        },
        "body": body.decode(), "isBase64Encoded": False,
    }  # fmt: skip


class LambdaTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests → the Lambda handler, each as one invocation on one dedicated thread whose event loop
    persists between invocations (as the runtime's does)."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.invocations = 0
        self._thread = ThreadPoolExecutor(1, initializer=lambda: asyncio.set_event_loop(asyncio.new_event_loop()))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.invocations += 1
        response: dict[str, Any] = self.handler(event, FakeLambdaContext())
        return response

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        event = http_api_event(request.method, request.url.path, dict(request.headers), await request.aread())
        response = await asyncio.get_running_loop().run_in_executor(self._thread, self.invoke, event)
        assert response["isBase64Encoded"] is False
        return httpx2.Response(response["statusCode"], headers=response.get("headers", {}),
                               content=(response.get("body") or "").encode())  # fmt: skip

    async def aclose(self) -> None:
        self._thread.shutdown(wait=True)


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Container]]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    module = load_module(HANDLER_FILE)
    settings = make_settings(tmp_path, auth_mode="api_key", rate_limit_per_second=0)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    app = create_app(container, inline_blocking_calls=True, routers_on_demand=True)  # as api_handler builds it
    monkeypatch.setattr(module, "_asgi", Mangum(app, lifespan="off"))
    try:
        yield module, container
    finally:
        container.close()


def key_for(container: Container, tenant: str, *scopes: str) -> str:
    _, key = ApiKeyService(container.api_key_store).create(tenant, name="mcp test", scopes=scopes)
    return key


@asynccontextmanager
async def lambda_client(module: ModuleType, key: str, *, mode: str = "auto") -> AsyncIterator[Client]:
    transport = LambdaTransport(module.handler)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(transport=transport, headers=headers, base_url=f"https://{HOST}") as http,
        Client(streamable_http_client(f"https://{HOST}/mcp", http_client=http), mode=mode,
               read_timeout_seconds=30) as client,
    ):  # fmt: skip
        yield client
    assert transport.invocations > 0


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_official_client_drives_every_tool_through_the_lambda_handler(
    deployment: tuple[ModuleType, Container], mode: str
) -> None:
    module, container = deployment
    key = key_for(container, "acme", SCOPE_READ, SCOPE_WRITE)
    async with lambda_client(module, key, mode=mode) as client:
        await drive_every_tool(client)


def test_the_event_files_without_a_key_are_401_without_read_403_and_with_one_answer(
    deployment: tuple[ModuleType, Container],
) -> None:
    module, container = deployment
    for name in ("mcp_tools_list.json", "mcp_tools_call.json"):
        event = json.loads((EVENTS / name).read_text())
        refused = module.handler(event, FakeLambdaContext())
        assert refused["statusCode"] == 401, refused
        assert json.loads(refused["body"]) == {"detail": "Missing authorization header"}
        assert refused["headers"]["www-authenticate"] == "Bearer"
        event["headers"]["authorization"] = f"Bearer {key_for(container, 'acme', SCOPE_WRITE)}"
        write_only = module.handler(event, FakeLambdaContext())  # every MCP session reads (tools/list)
        assert write_only["statusCode"] == 403, write_only
        assert json.loads(write_only["body"]) == {"detail": "This credential lacks the memory:read scope"}
        event["headers"]["authorization"] = f"Bearer {key_for(container, 'acme', SCOPE_READ)}"
        answered = module.handler(event, FakeLambdaContext())
        assert answered["statusCode"] == 200, answered
        assert "result" in json.loads(answered["body"])


async def test_a_read_only_key_reads_but_every_write_tool_is_refused(deployment: tuple[ModuleType, Container]) -> None:
    module, container = deployment
    async with lambda_client(module, key_for(container, "acme", SCOPE_READ)) as client:
        assert (await call(client, "search_long_term_memory", text="tea"))["total"] == 0
        text = await error_of(client, "create_long_term_memories", memories=[{"text": "User likes tea"}])
        assert "permission denied (403): This credential lacks the memory:write scope" in text


def test_building_the_app_and_serving_rest_never_imports_the_mcp_sdk(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has imported the SDK already.
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from agent_memory.bootstrap import Container\n"
        "from agent_memory.config import Settings\n"
        "from agent_memory.http.app import create_app\n"
        f"settings = Settings(_env_file=None, AGENT_MEMORY_DATA_DIR={str(tmp_path)!r}, embedding_provider='fake')\n"
        "with TestClient(create_app(Container(settings))) as api:\n"
        "    assert api.post('/v1/long-term-memory/search', json={'text': 'x'}).status_code == 200\n"
        "    print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))\n"
        "    api.post('/mcp', json={'jsonrpc': '2.0', 'id': 1, 'method': 'tools/list'},\n"
        "             headers={'accept': 'application/json', 'mcp-protocol-version': '2025-11-25'})\n"
        "    print('mcp' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "True"]  # loaded by the first MCP request, not before


def test_the_rest_apis_limits_hold_for_mcp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ApiFunction with a burst of 2 requests per key (refilling at one every ~17 minutes) and at most
    # 2 memories per create
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    module = load_module(HANDLER_FILE)
    settings = make_settings(tmp_path, auth_mode="api_key", rate_limit_per_second=0.001, rate_limit_burst=2,
                             max_memories_per_request=2)  # fmt: skip
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    app = create_app(container, inline_blocking_calls=True, routers_on_demand=True)
    monkeypatch.setattr(module, "_asgi", Mangum(app, lifespan="off"))
    key = key_for(container, "acme", SCOPE_READ, SCOPE_WRITE)
    create = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "create_long_term_memories", "arguments": {"memories": [{"text": f"fact {i}"} for i in range(3)]}}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25", "authorization": f"Bearer {key}"}  # fmt: skip
    try:
        # When a create over the count limit is sent, Then it is a tool error naming the limit's setting
        over = module.handler(http_api_event("POST", "/mcp", headers, json.dumps(create).encode()),
                              FakeLambdaContext())  # fmt: skip
        result = json.loads(over["body"])["result"]
        assert over["statusCode"] == 200 and result["isError"] is True
        assert "too large (413)" in result["content"][0]["text"]
        assert "MAX_MEMORIES_PER_REQUEST" in result["content"][0]["text"]
        # And the key's second request still passes, its third is the REST API's 429 with Retry-After
        listing = json.dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}).encode()
        second = module.handler(http_api_event("POST", "/mcp", headers, listing), FakeLambdaContext())
        assert second["statusCode"] == 200
        limited = module.handler(http_api_event("POST", "/mcp", headers, listing), FakeLambdaContext())
        assert limited["statusCode"] == 429 and int(limited["headers"]["retry-after"]) >= 1
        assert json.loads(limited["body"])["detail"].startswith("rate limit exceeded")
    finally:
        container.close()
