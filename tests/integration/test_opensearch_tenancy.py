"""The index-per-tenant layout on the OpenSearch test node: what the store contract suite cannot see.

The contract suite (test_long_term_stores.py) runs every store behaviour on this layout with lucene and
faiss, and on the shared layout with lucene; `test_keyword_statistics_are_per_tenant` there checks that
another tenant's records leave a tenant's raw BM25 and hybrid scores unchanged (and that on the shared
layout they do not). Here: which index a tenant's records land in, creating it on the first write when
several processes write at once, reading a tenant that has none, and the start-up refusal of a
shared-layout index that still holds records. Wrong-dimension and conflicting tenant indexes are in
test_opensearch_faults.py, beside the shared layout's.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.opensearch_long_term import (
    OpenSearchLongTermStore,
    index_body,
    owned_indexes,
    tenant_index_name,
)
from agent_memory.bootstrap import Container
from agent_memory.domain.errors import ConfigurationError
from agent_memory.domain.filters import SearchQuery
from agent_memory.domain.models import MemoryRecord
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings

pytestmark = pytest.mark.opensearch

DIMS = 64
EMBEDDER = FakeEmbedder(DIMS)
ODD_TENANTS = ["Acme Corp:EU", "acme corp:eu", "zürich/東京 ✓"]


def _store(url: str, index: str, *, engine: str = "lucene", tenancy: str = "index-per-tenant") -> Any:
    """One store stands for one process (a Lambda execution environment): its own client and caches."""
    return OpenSearchLongTermStore.from_settings_values(
        url=url, index=index, auth="none", service="es", region=None, username=None, password=None,
        timeout_seconds=10, engine=engine, tenancy=tenancy,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def index(opensearch_node_url: str) -> Iterator[str]:
    name = f"test-tenancy-{uuid.uuid4().hex[:12]}"
    yield name
    _store(opensearch_node_url, name)._client.indices.delete(index=owned_indexes(name), ignore_unavailable=True)


def _put(store: Any, tenant: str, *texts: str) -> list[MemoryRecord]:
    records = [MemoryRecord(text=text) for text in texts]
    store.upsert(tenant, records, EMBEDDER.embed_documents(list(texts)))
    return records


def _indexes(store: Any, index: str) -> dict[str, int]:
    """Every index of this base on the node, with its document count."""
    rows = store._client.cat.indices(index=f"{index}*", format="json", h="index,docs.count")
    return {row["index"]: int(row["docs.count"]) for row in rows}


def test_each_tenant_writes_to_its_own_index(opensearch_node_url: str, index: str) -> None:
    # Given tenants whose names differ only in case, or hold `:`, `/`, spaces and non-ASCII letters
    store = _store(opensearch_node_url, index)
    store.ensure_ready(DIMS)
    for n, tenant in enumerate(ODD_TENANTS, start=1):
        _put(store, tenant, *(f"{tenant} record {i}" for i in range(n)))
    # Then each has its own index, named from the tenant, holding only its records (and the one shared
    # index of hash claims); no records index for every tenant was made
    store._client.indices.refresh(index=owned_indexes(index), ignore_unavailable=True)
    expected = {tenant_index_name(index, tenant): n for n, tenant in enumerate(ODD_TENANTS, start=1)}
    assert _indexes(store, index) == {**expected, f"{index}-hash-claims": 0}
    # And each tenant reads its own
    for n, tenant in enumerate(ODD_TENANTS, start=1):
        page, total = store.search(SearchQuery(tenant=tenant, mode="keyword", text="record", limit=10))
        assert total == n and all(r.text.startswith(tenant) for r in page)


@pytest.mark.parametrize("engine", ["lucene", "faiss"])
def test_concurrent_first_writes_create_one_index_and_lose_nothing(
    opensearch_node_url: str, index: str, engine: str
) -> None:
    # Given six processes that have never seen the tenant, each writing its own record at the same moment
    stores = [_store(opensearch_node_url, index, engine=engine) for _ in range(6)]
    for store in stores:
        store.ensure_ready(DIMS)
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []
    written: list[MemoryRecord] = []

    def first_write(store: Any, n: int) -> None:
        try:
            record = MemoryRecord(text=f"first write number {n}")
            barrier.wait(timeout=30)
            store.upsert("tenant-x", [record], EMBEDDER.embed_documents([record.text]))
            written.append(record)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_write, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # Then every write succeeded (a create another process won is fine), into one index with our mapping
    assert errors == []
    tenant_index = tenant_index_name(index, "tenant-x")
    mapping = stores[0]._client.indices.get_mapping(index=tenant_index)[tenant_index]["mappings"]
    vector = mapping["properties"]["vector"]
    assert (vector["dimension"], vector["method"]["engine"]) == (DIMS, engine)
    assert mapping["properties"]["body"] == index_body(DIMS, engine)["mappings"]["properties"]["body"]  # type: ignore[arg-type]
    # And each process reads all six records
    for store in stores:
        page, total = store.search(SearchQuery(tenant="tenant-x", mode="list", limit=10))
        assert (total, {r.id for r in page}) == (6, {r.id for r in written})


def test_a_tenant_without_an_index_reads_empty_and_creates_nothing(
    tmp_path: Path, opensearch_node_url: str, index: str
) -> None:
    # Given a store that has written for another tenant only
    store = _store(opensearch_node_url, index)
    store.ensure_ready(DIMS)
    _put(store, "someone", "apples and pears")
    vector = EMBEDDER.embed_query("apples")
    # When a tenant with no index reads in every way
    for mode in ("list", "keyword", "semantic", "hybrid"):
        query = SearchQuery(tenant="nobody", mode=mode, text="apples", vector=vector)  # type: ignore[arg-type]
        assert store.search(query) == ([], 0), mode
    assert store.get("nobody", ["a"]) == []
    assert store.find_by_hash("nobody", "h") == []
    assert store.delete("nobody", ["a"]) == 0
    # Then nothing was created for it
    assert not store._client.indices.exists(index=tenant_index_name(index, "nobody"))
    # And the API answers such a tenant as it answers an empty one: 404 for an id, an empty search
    settings = make_settings(tmp_path, opensearch_url=opensearch_node_url, opensearch_index=index)
    with TestClient(create_app(Container(settings, embedder=EMBEDDER))) as api:
        assert api.get("/v1/long-term-memory/missing").status_code == 404
        found = api.post("/v1/long-term-memory/search", json={"text": "apples", "limit": 5})
        assert found.status_code == 200 and found.json()["memories"] == [], found.text
    assert not store._client.indices.exists(index=tenant_index_name(index, settings.default_tenant))


def test_startup_refuses_a_shared_index_that_still_holds_records(
    tmp_path: Path, opensearch_node_url: str, index: str
) -> None:
    # Given a deployment that stored records in the shared layout
    shared = _store(opensearch_node_url, index, tenancy="shared")
    shared.ensure_ready(DIMS)
    _put(shared, "default", "kept in the shared index")
    # When it starts with an index per tenant (the default), which would never read them
    settings = make_settings(tmp_path, opensearch_url=opensearch_node_url, opensearch_index=index)
    # Then start-up stops, saying how to keep them
    with pytest.raises(ConfigurationError, match=rf"'{index}' holds 1 memory records of the shared layout"):
        Container(settings, embedder=EMBEDDER).check_startup()
    # And the shared layout still serves them
    settings = make_settings(
        tmp_path, opensearch_url=opensearch_node_url, opensearch_index=index, opensearch_tenancy="shared"
    )
    with TestClient(create_app(Container(settings, embedder=EMBEDDER))) as api:
        found = api.post("/v1/long-term-memory/search", json={"text": "shared", "limit": 5})
        assert [m["text"] for m in found.json()["memories"]] == ["kept in the shared index"], found.text
    assert [name for name in _indexes(shared, index) if "-t-" in name] == []
