"""Deployments for the isolation matrix (tests/integration/tenancy.py): built, seeded once, copied per test.

A `Template` is both deployments (shared: A and B; reference: B alone) seeded once per module for one
store and identity: their data files, their Redis keys (DUMP), the server-assigned seed ids and the
headers each tenant sends. Each test starts from a copy (files copied, Redis keys RESTOREd), so the
seeding (LLM calls, queue runs) is paid once, not per cell.

Transports: "asgi" (the app in-process through Starlette's TestClient) and "lambda" (ApiFunction's
`handler` with API Gateway HTTP API v2.0 events, through Mangum, as on Lambda).
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.domain.auth import ALL_SCOPES, SCOPE_READ
from agent_memory.http.app import create_app
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_settings
from tests.fixtures.openai_stub import OpenAIStub
from tests.integration import tenancy
from tests.integration.tenancy import QUIET_LLM, TENANT_A, TENANT_B, Answer, Request, Send, World

REPO = Path(__file__).resolve().parents[2]
HANDLER_FILE = REPO / "functions" / "api" / "api_handler.py"

class Deployment:
    """Builds worlds (tests/integration/tenancy.World) for one (store, identity) pair under `root`."""

    def __init__(self, root: Path, stub: OpenAIStub, redis_url: str | None, identity: str,
                 transport: str = "asgi", **settings: object) -> None:
        self.root, self.stub, self.redis_url, self.identity = root, stub, redis_url, identity
        self.transport, self.settings = transport, settings
        self.stack = ExitStack()

    def world(self, name: str, headers: dict[str, dict[str, str]] | None = None,
              tenants: tuple[str, ...] = (), *, views: bool = True, **overrides: object) -> World:
        """The deployment `name` over the files under root/name; seeds `tenants` (else `headers` says who)."""
        settings = make_settings(
            self.root / name, redis_url=self.redis_url, redis_key_prefix=name,
            openai_api_key="test", openai_base_url=self.stub.base_url, extraction_debounce_seconds=0,
            rate_limit_per_second=0,  # on by default with auth; the matrix's hundreds of calls are not a flood
            auth_mode="api_key" if self.identity == "api-key" else "disabled", **{**self.settings, **overrides},
        )
        container = Container(settings, embedder=FakeEmbedder(dimensions=64))
        self.stack.callback(container.close)
        known = dict(headers or {t: self.headers(container, t) for t in tenants})
        send = self.lambda_send(container, known) if self.transport == "lambda" else self.asgi_send(container, known)
        world = World(container, send, headers=known)
        for tenant in tenants:
            tenancy.seed(world, tenant, stub=self.stub, views=views)
        return world

    def asgi_send(self, container: Container, headers: dict[str, dict[str, str]]) -> Send:
        client = self.stack.enter_context(TestClient(create_app(container)))

        def send(tenant: str, request: Request) -> Answer:
            response = client.request(request.method, request.path, params=list(request.params),
                                      json=request.json, headers={**dict(request.headers), **headers[tenant]})
            return Answer(response.status_code, _body(response.text, response.headers.get("content-type", "")))

        return send

    def lambda_send(self, container: Container, headers: dict[str, dict[str, str]]) -> Send:
        from mangum import Mangum

        from agent_memory.cli import FakeLambdaContext, load_module

        module = load_module(HANDLER_FILE)
        # The app exactly as the handler builds it (api_handler.asgi_adapter), over this deployment's container.
        adapter = Mangum(create_app(container, inline_blocking_calls=True, routers_on_demand=True), lifespan="off")

        def send(tenant: str, request: Request) -> Answer:
            module._asgi = adapter  # the handler's cached app: this deployment's (two share one module)
            event = http_api_event(request, {**dict(request.headers), **headers[tenant]})
            response: dict[str, Any] = module.handler(event, FakeLambdaContext())
            assert response["isBase64Encoded"] is False, response
            answered = {k.lower(): v for k, v in response.get("headers", {}).items()}
            content_type = answered.get("content-type", "")
            return Answer(int(response["statusCode"]), _body(response.get("body") or "", content_type))

        return send

    def headers(self, container: Container, tenant: str) -> dict[str, str]:
        if self.identity == "x-tenant-id":
            return {"x-tenant-id": tenant}
        # Every scope: the matrix includes the user-data routes (memory:admin).
        _, key = ApiKeyService(container.api_key_store).create(tenant, name="isolation matrix", scopes=ALL_SCOPES)
        return {"Authorization": f"Bearer {key}"}


@dataclass
class Template:
    """Both deployments seeded once per (store, identity): their files, Redis keys, seeds and headers.
    Each test starts from a copy, so seeding (LLM calls, queue runs) is paid once, not per cell."""

    root: Path
    store: str
    identity: str
    redis_keys: dict[bytes, tuple[bytes, int]]
    seeds: dict[str, dict[str, tenancy.Seed]]
    headers: dict[str, dict[str, dict[str, str]]]


# (store, identity): the working-memory/document store and how a caller names its tenant.
# Redis with x-tenant-id is left out: how a caller names its tenant does not depend on the store, and
# each combination costs a full matrix.
COMBINATIONS = [("sqlite", "x-tenant-id"), ("sqlite", "api-key"), ("redis", "api-key")]


def make_template(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, store: str, identity: str,
                  *, reference: bool = True, **settings: object) -> Template:
    """Seed the shared deployment (and the reference one) once; `settings` override Settings fields.
    `store` "redis" needs the `redis_server` fixture; "opensearch" long-term memory needs `settings`."""
    stub: OpenAIStub = request.getfixturevalue("_openai_stub_server")
    stub.reset()
    redis_url = request.getfixturevalue("redis_server") if store == "redis" else None
    if redis_url:
        _flush(redis_url)
    stub.default_chat_content = QUIET_LLM
    root = factory.mktemp(f"isolation-{store}-{identity}")
    deployment = Deployment(root, stub, redis_url, identity, **settings)
    with deployment.stack:
        worlds = {"shared": deployment.world("shared", tenants=(TENANT_A, TENANT_B))}
        if reference:
            worlds["reference"] = deployment.world("reference", tenants=(TENANT_B,))
        if identity == "api-key":  # for the scope cases: a key of B that may only read
            _, read_only = ApiKeyService(worlds["shared"].container.api_key_store).create(
                TENANT_B, name="read only", scopes=[SCOPE_READ])
            worlds["shared"].headers["read-only"] = {"Authorization": f"Bearer {read_only}"}
    stub.reset()
    return Template(root, store, identity, _dump(redis_url) if redis_url else {},
                    {name: w.seeds for name, w in worlds.items()}, {name: w.headers for name, w in worlds.items()})


def from_template(template: Template, tmp_path: Path, stub: OpenAIStub, request: pytest.FixtureRequest,
                  stack: ExitStack, *, transport: str = "asgi", **settings: object) -> dict[str, World]:
    """Fresh deployments over a copy of the template's files (and its Redis keys, restored)."""
    stub.default_chat_content = QUIET_LLM
    redis_url = request.getfixturevalue("redis_url") if template.store == "redis" else None  # emptied
    if redis_url:
        _restore(redis_url, template.redis_keys)
    shutil.copytree(template.root, tmp_path, dirs_exist_ok=True)
    deployment = Deployment(tmp_path, stub, redis_url, template.identity, transport, **settings)
    deployment.stack = stack
    built = {}
    for name, headers in template.headers.items():
        built[name] = deployment.world(name, headers)
        built[name].seeds = dict(template.seeds[name])
    return built


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


def _dump(url: str) -> dict[bytes, tuple[bytes, int]]:
    client = redis.Redis.from_url(url)
    try:
        return {key: (client.dump(key), max(0, client.pttl(key))) for key in client.scan_iter(count=1000)}
    finally:
        client.close()


def _restore(url: str, keys: dict[bytes, tuple[bytes, int]]) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key, (value, ttl) in keys.items():
            client.restore(key, ttl, value, replace=True)
    finally:
        client.close()




def _body(text: str, content_type: str) -> Any:
    """A JSON answer decoded; anything else (a page, a script) as its text."""
    if not text:
        return None
    return json.loads(text) if content_type.startswith("application/json") else text


def http_api_event(request: Request, headers: dict[str, str]) -> dict[str, Any]:
    """`request` as API Gateway (HTTP API, payload 2.0) hands it to ApiFunction (see events/*.json)."""
    body = json.dumps(request.json) if request.json is not None else None
    sent = {k.lower(): v for k, v in headers.items()}  # API Gateway lowercases header names
    sent.update({"accept": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com"})
    if body is not None:
        sent.update({"content-type": "application/json", "content-length": str(len(body.encode()))})
    path = quote(request.path)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(list(request.params)),
        "headers": sent,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": sent["host"], "domainPrefix": "abc123",
            "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "isolation-matrix"},
            "requestId": "isolation", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2025:12:00:00 +0000", "timeEpoch": 1735732800000,
        },
        "isBase64Encoded": False,
    }
    if request.params:
        event["queryStringParameters"] = {k: ",".join(v for key, v in request.params if key == k)
                                          for k, _ in request.params}
    if body is not None:
        event["body"] = body
    return event
