"""The isolation matrix's long-term cells with long-term memory on the OpenSearch test node, as on AWS.

Given tenants A and B seeded on the OpenSearch node (OPENSEARCH_TENANCY=index-per-tenant, the default:
each tenant's records in its own index) with the same record, namespace, user and session ids, API keys
on, working memory in SQLite, and a reference deployment on its own indexes where only B exists
When B sends each long-term cell of the matrix (create, search in every mode, delete, compact, forget,
get, patch, the prompt's long-term search)
Then B's answers equal the reference's (keyword and hybrid scores included: BM25 statistics are the
tenant's own), show nothing of A, and A's state is unchanged.

Seeded with records and sessions, without the summary view (its cells are not run here): once for all
read cells, afresh for each write cell (an OpenSearch index cannot be copied like a file).
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.fixtures.openai_stub import OpenAIStub
from tests.integration import tenancy
from tests.integration.tenancy import NS, QUIET_LLM, TENANT_A, TENANT_B, World
from tests.integration.tenancy_deploy import Deployment

pytestmark = pytest.mark.opensearch

LONG_TERM_CELLS = [c for c in tenancy.matrix() if c.route.startswith(("/v1/long-term-memory", "/v1/memory/prompt"))]


READS = [c for c in LONG_TERM_CELLS if c.method == "GET" or c.route.endswith(("/search", "/prompt"))]
WRITES = [c for c in LONG_TERM_CELLS if c not in READS]


@contextmanager
def fresh_indexes(node: str) -> Iterator[list[str]]:
    """Fresh OPENSEARCH_INDEX names, one per deployment; every index they own is deleted after."""
    from agent_memory.adapters.opensearch_long_term import owned_indexes

    names = [f"test-iso-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        yield names
    finally:
        for name in names:
            url = f"{node}/{owned_indexes(name)}?ignore_unavailable=true"
            with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30):
                pass


def deployments(root: Path, stub: OpenAIStub, node: str, names: list[str], tenancy_layout: str,
                stack: ExitStack) -> tuple[World, World]:
    stub.default_chat_content = QUIET_LLM
    deployment = Deployment(root, stub, None, "api-key", opensearch_url=node, opensearch_tenancy=tenancy_layout)
    deployment.stack = stack
    shared = deployment.world("shared", tenants=(TENANT_A, TENANT_B), views=False, opensearch_index=names[0])
    reference = deployment.world("reference", tenants=(TENANT_B,), views=False, opensearch_index=names[1])
    return shared, reference


@pytest.fixture(scope="module")
def seeded_once(opensearch_node_url: str, tmp_path_factory: pytest.TempPathFactory,
                _openai_stub_server: OpenAIStub) -> Iterator[tuple[World, World]]:
    """One seeding for every read cell: a read changes nothing, and each cell checks that it did not."""
    with fresh_indexes(opensearch_node_url) as names, ExitStack() as stack:
        _openai_stub_server.reset()
        yield deployments(tmp_path_factory.mktemp("iso-os"), _openai_stub_server, opensearch_node_url, names,
                          "index-per-tenant", stack)


@pytest.fixture
def worlds(tmp_path: Path, openai_stub: OpenAIStub, opensearch_node_url: str) -> Iterator[tuple[World, World]]:
    with fresh_indexes(opensearch_node_url) as names, ExitStack() as stack:
        yield deployments(tmp_path, openai_stub, opensearch_node_url, names, "index-per-tenant", stack)


@pytest.mark.parametrize("cell", READS, ids=[c.id for c in READS])
def test_tenant_b_cannot_read_tenant_a_on_opensearch(
    cell: tenancy.Cell, seeded_once: tuple[World, World], openai_stub: OpenAIStub
) -> None:
    openai_stub.default_chat_content = QUIET_LLM
    shared, reference = seeded_once
    tenancy.check_cell(cell, shared, reference, stub=openai_stub)


@pytest.mark.parametrize("cell", WRITES, ids=[c.id for c in WRITES])
def test_tenant_b_cannot_change_tenant_a_on_opensearch(
    cell: tenancy.Cell, worlds: tuple[World, World], openai_stub: OpenAIStub
) -> None:
    shared, reference = worlds
    tenancy.check_cell(cell, shared, reference, stub=openai_stub)


def _scores(world: World, tenant: str, mode: str) -> tuple[list[str], list[float]]:
    found = world.ok(tenant, "POST", "/v1/long-term-memory/search",
                     body={"text": "otter river tea", "search_mode": mode, "limit": 10})["memories"]
    return [r["id"] for r in found], [r["score"] for r in found]


def _flood(world: World) -> None:
    flood = [{"id": f"flood-{i}", "text": f"tea number {i}", "namespace": NS} for i in range(100)]
    world.ok(TENANT_A, "POST", "/v1/long-term-memory/", body={"memories": flood, "deduplicate": False})


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_another_tenants_records_do_not_move_a_tenants_scores_with_an_index_per_tenant(
    worlds: tuple[World, World], mode: str
) -> None:
    # Given B's scores for a query that scores B's records differently
    shared, _ = worlds
    ids, scores = _scores(shared, TENANT_B, mode)
    assert len(set(scores)) > 1
    # When A stores many records with one of the query's words ("tea": common, if statistics were shared)
    _flood(shared)
    # Then B's scores and order have not moved
    ids_after, scores_after = _scores(shared, TENANT_B, mode)
    assert ids_after == ids and scores_after == pytest.approx(scores, abs=1e-9)


def test_the_shared_layout_lets_another_tenant_move_keyword_scores(
    tmp_path: Path, openai_stub: OpenAIStub, opensearch_node_url: str
) -> None:
    # The check above can fail: with OPENSEARCH_TENANCY=shared (one index, BM25 statistics over every
    # tenant's texts) the same flood moves B's keyword scores, as docs/architecture.md (Tenancy) says.
    with fresh_indexes(opensearch_node_url) as names, ExitStack() as stack:
        shared, _ = deployments(tmp_path, openai_stub, opensearch_node_url, names, "shared", stack)
        _, scores = _scores(shared, TENANT_B, "keyword")
        _flood(shared)
        _, scores_after = _scores(shared, TENANT_B, "keyword")
    assert scores_after != pytest.approx(scores, abs=1e-6)
