"""OpenSearch down, paused, throttled or refusing: the API answers 503 (or 400 for a refused record)
within the configured timeout, writes leave nothing half stored, and a mismatched index stops start-up.

The stop/pause tests use a private node (`opensearch_node_factory`), so the session's shared node stays
healthy; a 429/5xx cluster is a small loopback HTTP server that answers like a throttled OpenSearch.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore, owned_indexes, tenant_index_name
from agent_memory.bootstrap import Container
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError, InvalidInputError
from agent_memory.domain.filters import SearchQuery
from agent_memory.domain.models import MemoryRecord
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings

pytestmark = pytest.mark.opensearch

DIMS = 64
TIMEOUT_SECONDS = 2.0  # what the API gets; set-up calls get more, so a busy machine does not fail them
EMBEDDER = FakeEmbedder(DIMS)


def _store(url: str, index: str, *, timeout: float = TIMEOUT_SECONDS, tenancy: str = "index-per-tenant") -> Any:
    return OpenSearchLongTermStore.from_settings_values(
        url=url, index=index, auth="none", service="es", region=None, username=None, password=None,
        timeout_seconds=timeout, tenancy=tenancy,  # type: ignore[arg-type]
    )  # fmt: skip


def _container(tmp_path: Path, url: str, index: str, tenancy: str = "index-per-tenant") -> Container:
    settings = make_settings(
        tmp_path, opensearch_url=url, opensearch_index=index, opensearch_timeout_seconds=TIMEOUT_SECONDS,
        opensearch_tenancy=tenancy,
    )  # fmt: skip
    return Container(settings, embedder=EMBEDDER)


def _default_tenant_index(tmp_path: Path, index: str, tenancy: str) -> str:
    """The index the API's (default) tenant reads in this layout."""
    tenant = make_settings(tmp_path).default_tenant
    return index if tenancy == "shared" else tenant_index_name(index, tenant)


@pytest.fixture
def index(opensearch_node_url: str) -> Iterator[str]:
    name = f"test-faults-{uuid.uuid4().hex[:12]}"
    yield name
    client = _store(opensearch_node_url, name, timeout=10)._client
    client.indices.delete(index=owned_indexes(name), ignore_unavailable=True)


def _search_body() -> dict[str, Any]:
    return {"text": "tea", "limit": 5}


# -- the node stops or stalls ---------------------------------------------------------------------------


def test_a_stopped_or_paused_node_is_a_503_within_the_timeout(tmp_path: Path, opensearch_node_factory) -> None:  # type: ignore[no-untyped-def]
    with opensearch_node_factory() as node:
        # Index creation is the slowest call: the default tenant's index is made here, by a write
        warm = _store(node.url, "faults", timeout=30)
        warm.ensure_ready(DIMS)
        warm.upsert(make_settings(tmp_path).default_tenant, [MemoryRecord(id="warm", text="warm")], [[1.0] * DIMS])
        warm.delete(make_settings(tmp_path).default_tenant, ["warm"])
        container = _container(tmp_path, node.url, "faults")
        with TestClient(create_app(container)) as api:
            created = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "likes tea"}]})
            assert created.status_code == 200, created.text
            # When the JVM is paused (SIGSTOP): the kernel still accepts connections, nothing answers
            node.pause()
            try:
                started = time.monotonic()
                stalled = api.post("/v1/long-term-memory/search", json=_search_body())
                stalled_for = time.monotonic() - started
            finally:
                node.resume()
            # Then the request fails as a dependency failure, bounded by the timeout (one try, no retry
            # of a timed-out request), with Retry-After
            assert stalled.status_code == 503, stalled.text
            assert "opensearch" in stalled.json()["detail"]
            assert stalled.headers.get("retry-after")
            assert stalled_for < 3 * TIMEOUT_SECONDS + 1
            # And once it runs again, so does the API, with the memory intact
            found = api.post("/v1/long-term-memory/search", json=_search_body())
            assert found.status_code == 200 and [m["id"] for m in found.json()["memories"]] == ["m1"]
            # When the node is stopped: connection refused, 503 at once
            node.stop()
            started = time.monotonic()
            down = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m2", "text": "likes coffee"}]})
            assert down.status_code == 503, down.text
            assert time.monotonic() - started < 3 * TIMEOUT_SECONDS + 1
            assert api.get("/v1/long-term-memory/m1").status_code == 503


# -- a cluster that throttles or fails ----------------------------------------------------------------


class _Refusing(BaseHTTPRequestHandler):
    status = 429

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        kind = "es_rejected_execution_exception" if self.status == 429 else "internal_server_error"
        body = json.dumps({"error": {"type": kind, "reason": "refused by test"}, "status": self.status}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_a_throttled_or_failing_cluster_is_a_503(tmp_path: Path, status: int) -> None:
    handler = type("Refusing", (_Refusing,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(DependencyUnavailableError) as raised:
            _container(tmp_path, url, "faults").check_startup()
        assert str(status) in str(raised.value) and not isinstance(raised.value, ConfigurationError)
        api = TestClient(create_app(_container(tmp_path, url, "faults")))
        response = api.post("/v1/long-term-memory/search", json=_search_body())
        assert response.status_code == 503, response.text
    finally:
        server.shutdown()
        server.server_close()


# -- half writes and refused records --------------------------------------------------------------------


def test_a_batch_with_a_record_the_engine_refuses_stores_nothing(opensearch_node_url: str, index: str) -> None:
    # Given a batch whose middle record has a topic over Lucene's 32 KB term limit (the engine refuses
    # that document alone; the others are written by the same bulk request)
    store = _store(opensearch_node_url, index, timeout=10)
    store.ensure_ready(DIMS)
    batch = [MemoryRecord(text="first"), MemoryRecord(text="second", topics=["x" * 40_000]), MemoryRecord(text="third")]
    # When it is written
    with pytest.raises(InvalidInputError, match="immense term"):
        store.upsert("t1", batch, EMBEDDER.embed_documents([r.text for r in batch]))
    # Then what was written was deleted again: nothing of the batch remains
    assert store.get("t1", [r.id for r in batch]) == []
    assert store.search(SearchQuery(tenant="t1", mode="list")) == ([], 0)


def test_the_api_answers_a_refused_record_with_400_and_stores_nothing(
    tmp_path: Path, opensearch_node_url: str, index: str
) -> None:
    with TestClient(create_app(_container(tmp_path, opensearch_node_url, index))) as api:
        memories = [{"id": "ok", "text": "fine"}, {"id": "bad", "text": "too big", "entities": ["y" * 40_000]}]
        response = api.post("/v1/long-term-memory/", json={"memories": memories})
        assert response.status_code == 400, response.text
        assert "nothing was stored" in response.json()["detail"]
        assert api.get("/v1/long-term-memory/ok").status_code == 404


# -- an index that does not fit -------------------------------------------------------------------------


LAYOUTS = pytest.mark.parametrize("tenancy", ["index-per-tenant", "shared"])


@LAYOUTS
def test_an_index_of_another_dimension_stops_startup_naming_both(
    tmp_path: Path, opensearch_node_url: str, index: str, tenancy: str
) -> None:
    # Given the (default) tenant's index built with 32-dim vectors
    old = _store(opensearch_node_url, index, timeout=10, tenancy=tenancy)
    old.ensure_ready(32)
    old.upsert(make_settings(tmp_path).default_tenant, [MemoryRecord(text="old")], [[1.0] * 32])
    target = _default_tenant_index(tmp_path, index, tenancy)
    # Then a start-up with a 64-dim embedder stops, naming the index and both dimensions
    expected = rf"'{target}' was built with 32-dim vectors but the embedder produces 64"
    with pytest.raises(ConfigurationError, match=expected):
        _container(tmp_path, opensearch_node_url, index, tenancy).check_startup()
    # And a request of that tenant that reaches it anyway is a 503 saying so
    api = TestClient(create_app(_container(tmp_path, opensearch_node_url, index, tenancy)))
    response = api.post("/v1/long-term-memory/search", json=_search_body())
    assert response.status_code == 503 and "32-dim" in response.json()["detail"], response.text


@LAYOUTS
def test_an_index_of_another_space_stops_startup_naming_both(
    tmp_path: Path, opensearch_node_url: str, index: str, tenancy: str
) -> None:
    # Given an index an earlier version (or a person) made with cosine similarity
    store = _store(opensearch_node_url, index, timeout=10)
    vector = {"type": "knn_vector", "dimension": DIMS, "method": {"name": "hnsw", "space_type": "cosinesimil",
                                                                    "engine": "lucene"}}  # fmt: skip
    store._client.indices.create(
        index=_default_tenant_index(tmp_path, index, tenancy),
        body={"settings": {"index": {"knn": True}}, "mappings": {"properties": {"vector": vector}}},
    )
    with pytest.raises(ConfigurationError, match="'cosinesimil', but this version needs 'innerproduct'"):
        _container(tmp_path, opensearch_node_url, index, tenancy).check_startup()


@LAYOUTS
def test_a_conflicting_mapping_stops_startup_and_is_a_503_with_the_reason(
    tmp_path: Path, opensearch_node_url: str, index: str, tenancy: str
) -> None:
    # Given an index that already maps our fields otherwise (e.g. made by dynamic mapping)
    store = _store(opensearch_node_url, index, timeout=10)
    mappings = {"properties": {"tenant": {"type": "text"}, "created_at": {"type": "keyword"}}}
    store._client.indices.create(index=_default_tenant_index(tmp_path, index, tenancy), body={"mappings": mappings})
    # Then start-up names each conflict
    with pytest.raises(ConfigurationError, match="'tenant' is 'text', needs 'keyword'; 'created_at' is 'keyword'"):
        _container(tmp_path, opensearch_node_url, index, tenancy).check_startup()
    # And a request that reaches it anyway gets a 503 saying so, never a 500
    container = _container(tmp_path, opensearch_node_url, index, tenancy)
    api = TestClient(create_app(container), raise_server_exceptions=False)
    response = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "likes tea"}]})
    assert response.status_code == 503, response.text
    assert "conflicts" in response.json()["detail"]
