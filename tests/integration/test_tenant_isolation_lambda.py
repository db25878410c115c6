"""The isolation matrix through ApiFunction's Lambda handler: every cell as an API Gateway HTTP API v2 event.

Given the two deployments of the matrix (tests/integration/tenancy.py) behind `functions/api/api_handler.py`
`handler` (Mangum, the Powertools decorators, inline blocking calls: what runs on Lambda), AUTH_MODE=api_key
with each tenant's key in the `authorization` header of the event
When tenant B sends every cell of the matrix as an event
Then B sees and changes nothing of A (the same four checks as in-process).

Every cell, on one combination only: embedded SQLite stores with API keys. The handler adds the
transport (events, Mangum, base64 and header handling), not storage: the stores and the x-tenant-id
mode are covered cell by cell in-process (test_tenant_isolation.py), and a second store here would
double the time for the same handler code path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from agent_memory.cli import FakeLambdaContext, load_module
from tests.fixtures.openai_stub import OpenAIStub
from tests.integration import tenancy
from tests.integration.tenancy import TENANT_A, TENANT_B, World
from tests.integration.tenancy_deploy import HANDLER_FILE, Template, from_template, http_api_event, make_template

CELLS = tenancy.matrix()


@pytest.fixture(scope="module")
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return make_template(request, tmp_path_factory, "sqlite", "api-key")


@pytest.fixture
def worlds(template: Template, tmp_path: Path, openai_stub: OpenAIStub, request: pytest.FixtureRequest,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, World]]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # keep EMF lines out of the test output
    with ExitStack() as stack:
        built = from_template(template, tmp_path, openai_stub, request, stack, transport="lambda")
        yield built["shared"], built["reference"]


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_tenant_b_cannot_reach_tenant_a_through_the_handler(
    cell: tenancy.Cell, worlds: tuple[World, World], openai_stub: OpenAIStub
) -> None:
    shared, reference = worlds
    tenancy.check_cell(cell, shared, reference, stub=openai_stub)


def test_an_event_with_b_s_key_naming_tenant_a_is_403_and_does_nothing(worlds: tuple[World, World]) -> None:
    shared, _ = worlds
    before = tenancy.snapshot(shared, TENANT_A)
    key = shared.headers[TENANT_B]["Authorization"].removeprefix("Bearer ")
    request = tenancy.Request("DELETE", f"/v1/working-memory/{tenancy.SESSION}", tuple(tenancy.SCOPE.items()))

    module = load_module(HANDLER_FILE)  # its app is the shared deployment's: the snapshot's call set it
    response = module.handler(http_api_event(request, {"x-api-key": key, "x-tenant-id": TENANT_A}),
                              FakeLambdaContext())

    assert response["statusCode"] == 403, response
    assert tenancy.snapshot(shared, TENANT_A) == before
