"""The cleanup's forgetting on the OpenSearch test node: the store names its tenants (so a tenant with
long-term records and no session is visited too), in both tenancy layouts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore, owned_indexes
from agent_memory.adapters.sqlite_documents import SqliteDocumentStore
from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore
from agent_memory.domain.models import MemoryRecord
from agent_memory.services.cleanup import CleanupService
from agent_memory.services.long_term import LongTermService
from agent_memory.services.maintenance import ForgetPolicy

pytestmark = pytest.mark.opensearch

DIMS = 16
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["index-per-tenant", "shared"])
def store(request: pytest.FixtureRequest, opensearch_node_url: str) -> Iterator[Any]:
    index = f"test-cleanup-{uuid.uuid4().hex[:12]}"
    opensearch = OpenSearchLongTermStore.from_settings_values(
        url=opensearch_node_url, index=index, auth="none", service="es", region=None, username=None, password=None,
        timeout_seconds=10, engine="lucene", tenancy=request.param,  # type: ignore[arg-type]
    )  # fmt: skip
    opensearch.ensure_ready(DIMS)
    yield opensearch
    opensearch._client.indices.delete(index=owned_indexes(index), ignore_unavailable=True)


def record(record_id: str, *, age_days: float, pinned: bool = False) -> MemoryRecord:
    when = NOW - timedelta(days=age_days)
    return MemoryRecord(id=record_id, text=f"fact {record_id}", created_at=when, last_accessed=when, pinned=pinned,
                        discrete_memory_extracted="t")  # fmt: skip


def test_an_empty_store_has_no_tenants(store: Any) -> None:
    assert store.tenants() == []


def test_forgetting_reaches_tenants_that_have_no_session(store: Any, tmp_path: Path) -> None:
    # Given long-term records of two tenants (one with an odd name), and no working memory at all
    service = LongTermService(store, FakeEmbedder(dimensions=DIMS))
    service.create("acme", [record("a-old", age_days=400), record("a-pin", age_days=400, pinned=True),
                            record("a-new", age_days=1)], deduplicate=False)  # fmt: skip
    service.create("Zürich:EU", [record("z-old", age_days=500), record("z-new", age_days=2)], deduplicate=False)
    store._client.indices.refresh(index=f"{store._index}*")
    assert store.tenants() == ["Zürich:EU", "acme"]

    # When the cleanup applies a one-year maximum age
    cleanup = CleanupService(
        SqliteWorkingMemoryStore(tmp_path / "wm.sqlite3"), SqliteDocumentStore(tmp_path / "docs.sqlite3"),
        interval_seconds=900, long_term=service, long_term_tenants=store, policy=ForgetPolicy(max_age_days=365),
        clock=lambda: NOW,
    )  # fmt: skip
    report = cleanup.run()

    # Then both tenants lost their old unpinned records
    assert (report.tenants, report.records_forgotten) == (2, 2)
    assert sorted(r.id for r in store.get("acme", ["a-old", "a-pin", "a-new"])) == ["a-new", "a-pin"]
    assert [r.id for r in store.get("Zürich:EU", ["z-old", "z-new"])] == ["z-new"]
