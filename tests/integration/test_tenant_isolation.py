"""Two tenants with the same namespace, user, session and record ids: no route lets one see or touch the other.

Given tenant A and tenant B seeded identically but for their texts (tests/integration/tenancy.py), and a
reference deployment where only B exists
When B sends each cell of the matrix (every route the app serves, several cases each)
Then B's answer is what B gets where A does not exist, shows nothing of A, and A's state is unchanged.

Run on both working-memory stores (embedded SQLite, a real redis-server), with the caller's tenant
named by `x-tenant-id` (AUTH_MODE=disabled) and by an API key of that tenant (AUTH_MODE=api_key).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from tests.integration.tenancy import (
    NS,
    QUIET_LLM,
    SESSION,
    TENANT_A,
    TENANT_B,
    Answer,
    Request,
    World,
    matrix,
)

CELLS = matrix()


class Deployment:
    """Builds worlds (tests/integration/tenancy.World) for one (store, identity) pair under `root`."""

    def __init__(self, root: Path, stub: OpenAIStub, redis_url: str | None, identity: str) -> None:
        self.root, self.stub, self.redis_url, self.identity = root, stub, redis_url, identity
        self.stack = ExitStack()

    def world(self, name: str, headers: dict[str, dict[str, str]] | None = None,
              tenants: tuple[str, ...] = ()) -> World:
        """The deployment `name` over the files under root/name; seeds `tenants` (else `headers` says who)."""
        settings = make_settings(
            self.root / name, redis_url=self.redis_url, redis_key_prefix=name,
            openai_api_key="test", openai_base_url=self.stub.base_url, extraction_debounce_seconds=0,
            auth_mode="api_key" if self.identity == "api-key" else "disabled",
        )
        container = Container(settings, embedder=FakeEmbedder(dimensions=64))
        self.stack.callback(container.close)
        client = self.stack.enter_context(TestClient(create_app(container)))
        known = dict(headers or {t: self.headers(container, t) for t in tenants})

        def send(tenant: str, request: Request) -> Answer:
            response = client.request(request.method, request.path, params=list(request.params),
                                      json=request.json, headers=known[tenant])
            return Answer(response.status_code, response.json() if response.content else None)

        world = World(container, send, headers=known)
        for tenant in tenants:
            tenancy.seed(world, tenant, stub=self.stub)
        return world

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
    redis_keys: dict[bytes, tuple[bytes, int]]
    seeds: dict[str, dict[str, tenancy.Seed]]
    headers: dict[str, dict[str, dict[str, str]]]


COMBINATIONS = [("sqlite", "x-tenant-id"), ("sqlite", "api-key"), ("redis", "x-tenant-id"), ("redis", "api-key")]


def make_template(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, store: str, identity: str,
                  *, reference: bool = True) -> Template:
    stub: OpenAIStub = request.getfixturevalue("_openai_stub_server")
    stub.reset()
    redis_url = request.getfixturevalue("redis_server") if store == "redis" else None
    if redis_url:
        _flush(redis_url)
    stub.default_chat_content = QUIET_LLM
    root = factory.mktemp(f"isolation-{store}-{identity}")
    deployment = Deployment(root, stub, redis_url, identity)
    with deployment.stack:
        worlds = {"shared": deployment.world("shared", tenants=(TENANT_A, TENANT_B))}
        if reference:
            worlds["reference"] = deployment.world("reference", tenants=(TENANT_B,))
        if identity == "api-key":  # for the scope cases: a key of B that may only read
            _, read_only = ApiKeyService(worlds["shared"].container.api_key_store).create(
                TENANT_B, name="read only", scopes=[SCOPE_READ])
            worlds["shared"].headers["read-only"] = {"Authorization": f"Bearer {read_only}"}
    stub.reset()
    return Template(root, _dump(redis_url) if redis_url else {},
                    {name: w.seeds for name, w in worlds.items()}, {name: w.headers for name, w in worlds.items()})


@pytest.fixture(scope="module", params=COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return make_template(request, tmp_path_factory, *request.param)


def from_template(template: Template, tmp_path: Path, stub: OpenAIStub, request: pytest.FixtureRequest,
                  stack: ExitStack) -> dict[str, World]:
    """Fresh deployments over a copy of the template's files (and its Redis keys, restored)."""
    stub.default_chat_content = QUIET_LLM
    redis_url = request.getfixturevalue("redis_url") if template.redis_keys else None  # emptied
    if redis_url:
        _restore(redis_url, template.redis_keys)
    shutil.copytree(template.root, tmp_path, dirs_exist_ok=True)
    identity = "api-key" if "Authorization" in template.headers["shared"][TENANT_A] else "x-tenant-id"
    deployment = Deployment(tmp_path, stub, redis_url, identity)
    deployment.stack = stack
    built = {}
    for name, headers in template.headers.items():
        built[name] = deployment.world(name, headers)
        built[name].seeds = dict(template.seeds[name])
    return built


@pytest.fixture
def worlds(template: Template, tmp_path: Path, openai_stub: OpenAIStub, request: pytest.FixtureRequest
           ) -> Iterator[tuple[World, World]]:
    """Tenant A and B as seeded (`shared`), and B alone (`reference`)."""
    with ExitStack() as stack:
        built = from_template(template, tmp_path, openai_stub, request, stack)
        yield built["shared"], built["reference"]


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


def test_the_matrix_covers_every_route_the_app_serves(tmp_path: Path) -> None:
    # A route added without a matrix entry fails here: add its cells to tenancy.matrix().
    app = create_app(Container(make_settings(tmp_path), embedder=FakeEmbedder(dimensions=64)))
    served = tenancy.served_routes(app)
    covered = tenancy.routes_of(CELLS)

    assert served - covered == set(), "routes with no isolation cell"
    assert covered - served == set(), "cells for routes the app does not serve"
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= served  # the OpenAPI document lists no route the app does not route


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_tenant_b_cannot_reach_tenant_a(
    cell: tenancy.Cell, worlds: tuple[World, World], openai_stub: OpenAIStub
) -> None:
    shared, reference = worlds
    tenancy.check_cell(cell, shared, reference, stub=openai_stub)


def test_the_seed_is_what_the_matrix_assumes(worlds: tuple[World, World]) -> None:
    # The matrix is only as good as the data: both tenants hold the same ids, with their own texts.
    shared, _ = worlds
    for tenant, marker in tenancy.MARKER.items():
        session = shared.ok(tenant, "GET", f"/v1/working-memory/{SESSION}", params=tenancy.SCOPE)
        assert [m["content"].split()[0] for m in session["messages"]] == [marker, marker]
        records = shared.ok(tenant, "POST", "/v1/long-term-memory/search", body={"limit": 100})["memories"]
        ids = {r["id"] for r in records}
        assert set(tenancy.SHARED_RECORDS) | {"shared-wm-rec"} <= ids
        assert all(marker in r["text"] or r["text"] == tenancy.PLAIN_A_TEXT for r in records)
        [view] = shared.ok(tenant, "GET", "/v1/summary-views")
        [partition] = shared.ok(tenant, "GET", f"/v1/summary-views/{view['id']}/partitions")
        assert marker in partition["summary"]
        assert shared.ok(tenant, "GET", f"/v1/tasks/{shared.seeds[tenant].task_id}")["status"] == "success"
    assert shared.ok(TENANT_B, "GET", "/v1/working-memory/", params={"namespace": NS})["total"] == 2


# -- keyword statistics over HTTP ------------------------------------------------------------------------


def _scores(world: World, tenant: str, mode: str) -> tuple[list[str], list[float]]:
    found = world.ok(tenant, "POST", "/v1/long-term-memory/search",
                     body={"text": "otter river tea", "search_mode": mode, "limit": 10})["memories"]
    return [r["id"] for r in found], [r["score"] for r in found]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_another_tenants_records_do_not_move_a_tenants_keyword_scores(
    worlds: tuple[World, World], mode: str
) -> None:
    # Given B's keyword scores for a query
    shared, _ = worlds
    ids, scores = _scores(shared, TENANT_B, mode)
    assert len(set(scores)) > 1, "the query scores B's records differently (else no statistic could move them)"
    # When A stores many records full of the query's words (document frequencies and lengths change)
    flood = [{"id": f"flood-{i}", "text": f"otter river tea {i}", "namespace": NS} for i in range(100)]
    shared.ok(TENANT_A, "POST", "/v1/long-term-memory/", body={"memories": flood, "deduplicate": False})
    # Then B's scores and order are exactly what they were
    ids_after, scores_after = _scores(shared, TENANT_B, mode)
    assert ids_after == ids and scores_after == pytest.approx(scores, abs=1e-9)


# -- what auth adds: the principal decides, not the header -----------------------------------------------


@pytest.fixture(scope="module")
def keyed_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return make_template(request, tmp_path_factory, "sqlite", "api-key", reference=False)


@pytest.fixture
def keyed(keyed_template: Template, tmp_path: Path, openai_stub: OpenAIStub, request: pytest.FixtureRequest
          ) -> Iterator[tuple[World, dict[str, str]]]:
    """The shared deployment with API keys on (SQLite), and the headers of a read-only key of tenant B."""
    with ExitStack() as stack:
        world = from_template(keyed_template, tmp_path, openai_stub, request, stack)["shared"]
        yield world, world.headers["read-only"]


def _raw(world: World, request: Request, headers: dict[str, str]) -> Any:
    # `World.send` adds the tenant's own key; these cases send their own headers instead.
    return TestClient(create_app(world.container)).request(
        request.method, request.path, params=list(request.params), json=request.json, headers=headers)


WRITES = [c for c in CELLS if c.method in ("PUT", "PATCH", "DELETE")
          or (c.method == "POST" and not c.route.endswith(("/search", "/prompt")))]


# `/` and `/v1/health` are open (they hold no tenant's data), so they do not look at x-tenant-id.
TENANT_CELLS = [c for c in CELLS if c.route not in ("/", "/v1/health")]


@pytest.mark.parametrize("cell", TENANT_CELLS, ids=[c.id for c in TENANT_CELLS])
def test_a_key_of_b_naming_tenant_a_in_x_tenant_id_is_403_and_does_nothing(
    cell: tenancy.Cell, keyed: tuple[World, dict[str, str]]
) -> None:
    world, _ = keyed
    before = {t: tenancy.snapshot(world, t) for t in (TENANT_A, TENANT_B)}
    b_key = {"X-API-Key": world.headers[TENANT_B]["Authorization"].removeprefix("Bearer ")}  # the other header

    response = _raw(world, cell.build(world.seeds[TENANT_B], world.seeds[TENANT_A]),
                    {**b_key, "x-tenant-id": TENANT_A})
    world.drain()

    assert response.status_code == 403, response.text
    assert "detail" in response.json()
    assert {t: tenancy.snapshot(world, t) for t in (TENANT_A, TENANT_B)} == before


@pytest.mark.parametrize("cell", WRITES, ids=[c.id for c in WRITES])
def test_a_read_only_key_cannot_write(cell: tenancy.Cell, keyed: tuple[World, dict[str, str]]) -> None:
    world, read_only = keyed
    before = {t: tenancy.snapshot(world, t) for t in (TENANT_A, TENANT_B)}

    response = _raw(world, cell.build(world.seeds[TENANT_B], world.seeds[TENANT_A]), read_only)
    world.drain()

    assert response.status_code == 403, response.text
    assert {t: tenancy.snapshot(world, t) for t in (TENANT_A, TENANT_B)} == before


# -- the matrix can fail: every tenant-data cell catches a call that acts as tenant A --------------------


@pytest.fixture(scope="module")
def plain_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return make_template(request, tmp_path_factory, "sqlite", "x-tenant-id")


@pytest.mark.parametrize("cell", TENANT_CELLS, ids=[c.id for c in TENANT_CELLS])
def test_each_cell_catches_a_call_served_as_tenant_a(
    cell: tenancy.Cell, plain_template: Template, tmp_path: Path, openai_stub: OpenAIStub,
    request: pytest.FixtureRequest,
) -> None:
    # Given the shared deployment broken on purpose: B's call of this cell is served as tenant A
    with ExitStack() as stack:
        built = from_template(plain_template, tmp_path, openai_stub, request, stack)
        shared, reference = built["shared"], built["reference"]

        def as_tenant_a(tenant: str, req: Request) -> Answer:
            return shared.send(TENANT_A, req)

        # Then the cell's check fails
        with pytest.raises(AssertionError):
            tenancy.check_cell(cell, shared, reference, stub=openai_stub, send_cell=as_tenant_a)
