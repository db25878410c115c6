"""Two tenants with the same namespace, user, session and record ids: no route lets one see or touch the other.

Given tenant A and tenant B seeded identically but for their texts (tests/integration/tenancy.py), and a
reference deployment where only B exists
When B sends each cell of the matrix (every route the app serves, several cases each)
Then B's answer is what B gets where A does not exist, shows nothing of A, and A's state is unchanged.

Run on both working-memory stores (embedded SQLite, a real redis-server), with the caller's tenant
named by `x-tenant-id` (AUTH_MODE=disabled) and by an API key of that tenant (AUTH_MODE=api_key).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings
from tests.fixtures.openai_stub import OpenAIStub
from tests.integration import tenancy, test_mcp_isolation
from tests.integration.tenancy import NS, SESSION, TENANT_A, TENANT_B, Answer, Request, World, matrix
from tests.integration.tenancy_deploy import COMBINATIONS, Template, from_template, make_template

CELLS = matrix()


@pytest.fixture(scope="module", params=COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return make_template(request, tmp_path_factory, *request.param)


@pytest.fixture
def worlds(template: Template, tmp_path: Path, openai_stub: OpenAIStub, request: pytest.FixtureRequest
           ) -> Iterator[tuple[World, World]]:
    """Tenant A and B as seeded (`shared`), and B alone (`reference`)."""
    with ExitStack() as stack:
        built = from_template(template, tmp_path, openai_stub, request, stack)
        yield built["shared"], built["reference"]


def test_the_matrix_covers_every_route_the_app_serves(tmp_path: Path) -> None:
    # A route added without a matrix entry fails here: add its cells to tenancy.matrix().
    app = create_app(Container(make_settings(tmp_path), embedder=FakeEmbedder(dimensions=64)))
    served = tenancy.served_routes(app)
    # POST /mcp: its cells are tests/integration/test_mcp_isolation.py (JSON-RPC through the MCP client).
    covered = tenancy.routes_of(CELLS) | test_mcp_isolation.ROUTES

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
    # When A stores many records with one of the query's words: shared statistics would make "tea" common
    # and lower B's tea record against its otter/river one
    flood = [{"id": f"flood-{i}", "text": f"tea number {i}", "namespace": NS} for i in range(100)]
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
        request.method, request.path, params=list(request.params), json=request.json,
        headers={**dict(request.headers), **headers})


# MCP: the route itself reads (tools/list); its write tools check memory:write and answer in-band.
WRITES = [c for c in CELLS if c.method in ("PUT", "PATCH", "DELETE")
          or (c.method == "POST" and not c.route.endswith(("/search", "/prompt", "/mcp")))
          or (c.route == "/mcp" and c.case.startswith("delete"))]


# `/`, `/v1/health` and the Visualizer's files are open (they hold no tenant's data), so they do not look at
# x-tenant-id.
TENANT_CELLS = [c for c in CELLS if c.route not in ("/", "/v1/health", "/ui", "/ui/{asset}")]


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

    if cell.route == "/mcp":  # a tool's refusal is a JSON-RPC tool error (isError), as MCP specifies
        result = response.json()["result"]
        assert result["isError"] is True and "(403)" in result["content"][0]["text"], response.text
    else:
        assert response.status_code == 403, response.text
    assert {t: tenancy.snapshot(world, t) for t in (TENANT_A, TENANT_B)} == before


# -- the matrix can fail: every tenant-data cell catches a call that acts as tenant A --------------------


@pytest.fixture(scope="module")
def plain_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return make_template(request, tmp_path_factory, "sqlite", "x-tenant-id")


DATA_CELLS = [c for c in CELLS if c.tenant_data]


@pytest.mark.parametrize("cell", DATA_CELLS, ids=[c.id for c in DATA_CELLS])
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
