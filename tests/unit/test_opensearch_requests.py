"""The exact requests OpenSearchLongTermStore sends, against a fake client that records every call.

These bodies were checked against the documentation cited next to each test; the shared contract suite
(tests/integration/test_long_term_stores.py) runs them for real on the OpenSearch test node. What only
OpenSearch Serverless accepts or refuses (no custom ids, no refresh, no engine parameter) is pinned
here, because no engine on this machine behaves like it.

Most tests use the shared layout, whose single index name keeps the bodies short; the bodies are the
same in the index-per-tenant layout, whose own requests (which index, when it is created and checked)
are pinned in the last section.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from opensearchpy.exceptions import (
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    RequestError,
    TransportError,
)

from agent_memory.adapters.opensearch_long_term import (
    MAX_BASE_NAME_BYTES,
    OpenSearchLongTermStore,
    Tenancy,
    distance_from_score,
    index_body,
    min_score_for_distance,
    tenant_index_name,
)
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError, InvalidInputError
from agent_memory.domain.filters import DateTimeFilter, EnumFilter, SearchFilters, SearchQuery, TagFilter
from agent_memory.domain.models import MemoryRecord, MemoryTypeEnum
from agent_memory.domain.temporal import time_reference

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T0_MS = 1_735_689_600_000
SOURCE = ["memory_id", "written_at", "record"]


class FakeIndices:
    def __init__(self, client: FakeClient, *, exists: bool, dimension: int, space: str = "innerproduct") -> None:
        self._client = client
        self._exists = exists
        self._dimension = dimension
        self._space = space
        self.create_error: Exception | None = None
        self.other_properties: dict[str, Any] = {}  # more fields the index's mapping answers with
        self.missing: set[str] = set()  # indexes get_mapping answers 404 for, until created
        self.tenant_indexes: dict[str, int] = {}  # name -> dimension, what a wildcard get_mapping finds

    def exists(self, **kwargs: Any) -> bool:
        self._client.calls.append(("indices.exists", kwargs))
        return self._exists

    def create(self, **kwargs: Any) -> dict[str, Any]:
        self._client.calls.append(("indices.create", kwargs))
        self.missing.discard(kwargs["index"])
        if self.create_error is not None:
            raise self.create_error
        return {"acknowledged": True}

    def get_mapping(self, **kwargs: Any) -> dict[str, Any]:
        self._client.calls.append(("indices.get_mapping", kwargs))
        index = kwargs["index"]
        if index.endswith("*"):
            return {name: self._mapping(dimension) for name, dimension in self.tenant_indexes.items()}
        if index in self.missing:
            raise NotFoundError(404, "index_not_found_exception", {})
        return {index: self._mapping(self._dimension)}

    def _mapping(self, dimension: int) -> dict[str, Any]:
        method = {"name": "hnsw", "space_type": self._space}
        vector = {"type": "knn_vector", "dimension": dimension, "method": method}
        text = {"type": "text", "analyzer": "memory_text"}
        return {"mappings": {"properties": {"vector": vector, "body": text, **self.other_properties}}}


class FakeCluster:
    def __init__(self, client: FakeClient) -> None:
        self._client = client

    def health(self, **kwargs: Any) -> dict[str, Any]:
        self._client.calls.append(("cluster.health", kwargs))
        return {"status": "green", "timed_out": False}


class FakeClient:
    """Records (method, kwargs); answers from per-method queues of responses or exceptions."""

    def __init__(self, *, exists: bool = False, dimension: int = 3, space: str = "innerproduct") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.replies: dict[str, list[Any]] = {"search": [], "count": [], "bulk": []}
        self.indices = FakeIndices(self, exists=exists, dimension=dimension, space=space)
        self.cluster = FakeCluster(self)

    def _answer(self, method: str, kwargs: dict[str, Any]) -> Any:
        self.calls.append((method, kwargs))
        reply = self.replies[method].pop(0) if self.replies[method] else None
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(kwargs)
        return reply

    def search(self, **kwargs: Any) -> Any:
        return self._answer("search", kwargs)

    def count(self, **kwargs: Any) -> Any:
        return self._answer("count", kwargs)

    def bulk(self, **kwargs: Any) -> Any:
        return self._answer("bulk", kwargs)

    def bodies(self, method: str) -> list[Any]:
        return [kwargs["body"] for name, kwargs in self.calls if name == method]


def hit(record: MemoryRecord, score: float | None = None, _id: str = "x", written_at: int = 1) -> dict[str, Any]:
    return {
        "_id": _id,
        "_score": score,
        "_source": {"memory_id": record.id, "written_at": written_at, "record": record.model_dump(mode="json")},
    }


def hits(*items: dict[str, Any], total: int | None = None, max_score: float | None = None) -> dict[str, Any]:
    return {
        "hits": {
            "total": {"value": len(items) if total is None else total},
            "max_score": max_score,
            "hits": list(items),
        }
    }


def make_store(
    serverless: bool = False, tenancy: Tenancy = "shared", **client_kwargs: Any
) -> tuple[OpenSearchLongTermStore, FakeClient]:
    client = FakeClient(**client_kwargs)
    store = OpenSearchLongTermStore(client, index_name="memories", serverless=serverless, dimensions=3, tenancy=tenancy)
    return store, client


def rec(record_id: str, text: str = "likes tea", **fields: Any) -> MemoryRecord:
    fields.setdefault("created_at", T0)
    fields.setdefault("last_accessed", T0)
    fields.setdefault("updated_at", T0)
    return MemoryRecord(id=record_id, text=text, **fields)


# -- index ------------------------------------------------------------------------------------------


def test_ensure_ready_creates_the_knn_index_with_the_documented_mapping() -> None:
    # Checked against https://docs.opensearch.org/latest/mappings/supported-field-types/knn-methods-engines/
    # (hnsw/faiss method object), .../knn-spaces/ (innerproduct), .../mappings/supported-field-types/object/
    # ("enabled": false keeps `record` in _source only) and .../analyzers/custom-analyzer/.
    store, client = make_store(exists=False, dimension=384)
    store.ensure_ready(384)
    keyword = {"type": "keyword"}
    date = {"type": "date", "format": "epoch_millis"}
    assert client.calls[:2] == [
        ("indices.exists", {"index": "memories"}),
        (
            "indices.create",
            {
                "index": "memories",
                "body": {
                    "settings": {
                        "index": {"knn": True},
                        "analysis": {
                            # .../analyzers/tokenizers/pattern/ and .../token-filters/stemmer/ ("porter2")
                            "tokenizer": {
                                "memory_words": {"type": "pattern", "pattern": "[^\\p{IsAlphabetic}\\p{N}]+"}
                            },
                            "filter": {"memory_stem": {"type": "stemmer", "language": "porter2"}},
                            "analyzer": {
                                "memory_text": {
                                    "type": "custom",
                                    "tokenizer": "memory_words",
                                    "filter": ["lowercase", "asciifolding", "memory_stem"],
                                }
                            },
                        },
                    },
                    "mappings": {
                        "dynamic": False,
                        "properties": {
                            "tenant": keyword,
                            "memory_id": keyword,
                            "namespace": keyword,
                            "user_id": keyword,
                            "session_id": keyword,
                            "topics": keyword,
                            "entities": keyword,
                            "memory_type": keyword,
                            "extraction_strategy": keyword,
                            "memory_hash": keyword,
                            "discrete_memory_extracted": keyword,
                            "created_at": date,
                            "last_accessed": date,
                            "updated_at": date,
                            "event_date": date,
                            "persisted_at": date,
                            "text": {"type": "text", "analyzer": "memory_text"},
                            "context": {"type": "text", "analyzer": "memory_text"},
                            "body": {"type": "text", "analyzer": "memory_text"},
                            "written_at": {"type": "long"},
                            "record": {"type": "object", "enabled": False},
                            "vector": {
                                "type": "knn_vector",
                                "dimension": 384,
                                "method": {"name": "hnsw", "space_type": "innerproduct", "engine": "faiss"},
                            },
                        },
                    },
                },
            },
        ),
    ]


def test_lucene_engine_can_be_chosen() -> None:
    assert index_body(8, "lucene")["mappings"]["properties"]["vector"]["method"]["engine"] == "lucene"


def test_ensure_ready_on_an_index_of_another_dimension_is_a_configuration_error() -> None:
    store, client = make_store(exists=True, dimension=1536)
    with pytest.raises(ConfigurationError, match="1536-dim vectors but the embedder produces 384"):
        store.ensure_ready(384)
    assert [(name, kwargs["index"]) for name, kwargs in client.calls] == [
        ("indices.exists", "memories"),
        ("indices.exists", "memories-hash-claims"),
        ("indices.get_mapping", "memories"),
    ]


def test_engine_none_leaves_the_engine_out_and_keeps_inner_product() -> None:
    # OPENSEARCH_ENGINE=none: the issue reports that OpenSearch Serverless next-gen vector collections
    # refuse an `engine` parameter (not verifiable here); the AWS::OpenSearchServerless::Index `Method`
    # reference lists `Engine` as "Required: No" and `SpaceType` innerproduct as allowed
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-opensearchserverless-index-method.html).
    method = index_body(8, "none")["mappings"]["properties"]["vector"]["method"]
    assert method == {"name": "hnsw", "space_type": "innerproduct"}


def test_serverless_needs_no_hash_claims_index() -> None:
    # AOSS has no custom document ids, so no claim documents (see opensearch_dedup.py).
    store, client = make_store(serverless=True, exists=True, dimension=3)
    store.ensure_ready(3)
    assert [(name, kwargs["index"]) for name, kwargs in client.calls] == [
        ("indices.exists", "memories"),
        ("indices.get_mapping", "memories"),
    ]


def test_ensure_ready_on_a_conflicting_mapping_names_each_field() -> None:
    store, client = make_store(exists=True, dimension=3)
    client.indices.other_properties = {"tenant": {"type": "text"}, "created_at": {"type": "long"}}
    with pytest.raises(ConfigurationError, match="'tenant' is 'text', needs 'keyword'; 'created_at' is 'long'"):
        store.ensure_ready(3)


def test_ensure_ready_on_an_index_whose_vector_is_no_knn_vector() -> None:
    store, client = make_store(exists=True, dimension=3)
    client.indices.other_properties = {"vector": {"type": "float"}}
    with pytest.raises(ConfigurationError, match="maps 'vector' as 'float', but this version needs 'knn_vector'"):
        store.ensure_ready(3)


def test_ensure_ready_on_a_cosine_index_of_an_earlier_version_is_a_configuration_error() -> None:
    store, _ = make_store(exists=True, dimension=3, space="cosinesimil")
    with pytest.raises(ConfigurationError, match="'cosinesimil', but this version needs 'innerproduct'"):
        store.ensure_ready(3)


def test_ensure_ready_tolerates_a_concurrent_create() -> None:
    store, client = make_store(exists=False, dimension=3)
    client.indices.create_error = RequestError(400, "resource_already_exists_exception", {})
    store.ensure_ready(3)


# -- searches -------------------------------------------------------------------------------------


def test_semantic_search_sends_an_efficient_filter_knn_query_and_counts_filtered_records() -> None:
    # Checked against https://docs.opensearch.org/latest/vector-search/filter-search-knn/efficient-knn-filtering/
    # (`filter` inside the knn clause) and https://docs.opensearch.org/latest/query-dsl/compound/bool/.
    store, client = make_store()
    near, far = rec("a"), rec("b")
    client.replies["search"] = [hits(hit(near, 1.9), hit(far, 1.0), total=2)]  # inner products 0.9 and 0
    client.replies["count"] = [{"count": 7}]
    filters = SearchFilters(
        namespace=TagFilter(eq="ns"),
        user_id=TagFilter(ne="u2"),
        topics=TagFilter(all=["a", "b"], none=["c"]),
        entities=TagFilter(startswith="par"),
        memory_type=EnumFilter(any=["semantic", "episodic"]),
        created_at=DateTimeFilter(gte=T0, lt=datetime(2025, 1, 2, tzinfo=UTC)),
        event_date=DateTimeFilter(ne=T0),
    )
    query = SearchQuery(tenant="t1", mode="semantic", vector=[0.1, 0.2, 0.3], filters=filters, limit=2)

    page, total = store.search(query)

    expected_filter = {
        "bool": {
            "filter": [
                {"term": {"tenant": "t1"}},
                {"terms": {"namespace": ["ns"]}},
                {"terms": {"topics": ["a"]}},
                {"terms": {"topics": ["b"]}},
                {"prefix": {"entities": "par"}},
                {"terms": {"memory_type": ["semantic", "episodic"]}},
                {"exists": {"field": "created_at"}},
                {"range": {"created_at": {"gte": T0_MS, "lt": T0_MS + 86_400_000}}},
                {"exists": {"field": "event_date"}},
            ],
            "must_not": [
                {"terms": {"user_id": ["u2"]}},
                {"terms": {"topics": ["c"]}},
                {"range": {"event_date": {"gte": T0_MS, "lt": T0_MS + 1}}},
            ],
        }
    }
    assert client.bodies("search") == [
        {
            "size": 2,
            "track_total_hits": True,
            "_source": SOURCE,
            "query": {"knn": {"vector": {"vector": [0.1, 0.2, 0.3], "k": 2, "filter": expected_filter}}},
        }
    ]
    # a k-NN total stops at k, so the true total is a count of the filtered records
    assert client.bodies("count") == [{"query": expected_filter}]
    assert total == 7
    assert [(r.id, r.score_type) for r in page] == [("a", "semantic"), ("b", "semantic")]
    assert page[0].dist == pytest.approx(0.1) and page[0].score == pytest.approx(0.9)
    assert page[1].dist == pytest.approx(1.0) and page[1].score == pytest.approx(0.0)


def test_semantic_search_with_a_threshold_is_a_radial_search() -> None:
    # Checked against https://docs.opensearch.org/latest/vector-search/specialized-operations/radial-search-knn/
    store, client = make_store()
    client.replies["search"] = [hits(hit(rec("a"), 0.9), total=12)]
    query = SearchQuery(tenant="t1", mode="semantic", vector=[1, 0, 0], distance_threshold=0.3, offset=0, limit=5)
    page, total = store.search(query)
    knn = client.bodies("search")[0]["query"]["knn"]["vector"]
    assert "k" not in knn and knn["min_score"] == pytest.approx(1.7)  # inner product 0.7 → score 0.7 + 1
    assert client.bodies("count") == []
    assert (len(page), total) == (1, 12)


@pytest.mark.parametrize(
    ("score", "dist"), [(2.0, 0.0), (1.5, 0.5), (1.0, 1.0), (2 / 3, 1.5), (0.5, 2.0), (0.0, 2.0), (2.0000001, 0.0)]
)
def test_innerproduct_score_converts_back_to_distance(score: float, dist: float) -> None:
    # https://docs.opensearch.org/latest/mappings/supported-field-types/knn-spaces/, innerproduct (faiss):
    # d = -ip; score = 1 / (1 + d) when d >= 0, else -d + 1. Our dist is 1 - ip.
    assert distance_from_score(score) == pytest.approx(dist)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.0, 1.2, 2.0])
def test_radial_min_score_is_the_score_at_the_threshold(threshold: float) -> None:
    assert distance_from_score(min_score_for_distance(threshold)) == pytest.approx(threshold)


def test_keyword_search_requires_phrases_ors_words_and_normalises_by_max_score() -> None:
    # Checked against https://docs.opensearch.org/latest/query-dsl/full-text/match-phrase/ (a one-word phrase
    # is a term query on the analysed word) and .../compound/bool/ (a bool of only `should` clauses
    # needs one to match and sums their scores; `filter` clauses do not score)
    store, client = make_store()
    client.replies["search"] = [hits(hit(rec("a"), 2.0), hit(rec("b"), 1.0), total=9, max_score=8.0)]
    query = SearchQuery(tenant="t1", mode="keyword", text='"New York" pizza (b* -c) NEAR:', offset=4, limit=2)
    page, total = store.search(query)
    assert client.bodies("search") == [
        {
            "from": 4,
            "size": 2,
            "track_total_hits": True,
            "_source": SOURCE,
            "query": {
                "bool": {
                    "filter": [{"term": {"tenant": "t1"}}, {"match_phrase": {"text": "New York"}}],
                    "must": [
                        {
                            "bool": {
                                "should": [
                                    {"match_phrase": {"body": words}}
                                    for words in ("pizza", "b", "c", "NEAR", "New York")
                                ]
                            }
                        }
                    ],
                }
            },
        }
    ]
    assert total == 9
    assert [(r.score, r.dist, r.score_type) for r in page] == [(0.25, 0.75, "keyword"), (0.125, 0.875, "keyword")]


def test_keyword_search_without_words_sends_nothing() -> None:
    store, client = make_store()
    assert store.search(SearchQuery(tenant="t1", mode="keyword", text=' ?! "" -* ')) == ([], 0)
    assert client.calls == []


def test_list_sorts_newest_first_with_a_tie_breaker() -> None:
    store, client = make_store()
    client.replies["search"] = [hits(hit(rec("a")), total=3)]
    page, total = store.search(SearchQuery(tenant="t1", mode="list", offset=1, limit=1))
    assert client.bodies("search") == [
        {
            "from": 1,
            "size": 1,
            "track_total_hits": True,
            "_source": SOURCE,
            "query": {"bool": {"filter": [{"term": {"tenant": "t1"}}]}},
            "sort": [{"created_at": {"order": "desc"}}, {"memory_id": {"order": "desc"}}],
        }
    ]
    assert (total, [(r.dist, r.score, r.score_type) for r in page]) == (3, [(0.0, None, None)])


def test_hybrid_fetches_candidate_pools_from_both_sides_and_fuses_them() -> None:
    store, client = make_store()
    both, vector_only, keyword_only = rec("both"), rec("vec"), rec("kw")
    client.replies["search"] = [
        hits(hit(both, 1.9), hit(vector_only, 1.8), total=2),
        hits(hit(keyword_only, 4.0), hit(both, 2.0), total=2, max_score=4.0),
    ]
    client.replies["count"] = [{"count": 40}]
    query = SearchQuery(tenant="t1", mode="hybrid", text="tea", vector=[1, 0, 0], alpha=0.5, limit=3)
    page, total = store.search(query)
    knn_body, keyword_body = client.bodies("search")
    assert knn_body["query"]["knn"]["vector"]["k"] == 100 and knn_body["size"] == 100
    assert (keyword_body["from"], keyword_body["size"]) == (0, 100)
    # both: 0.5 * 1 + 0.5 * 0.5; keyword only: 0.5 * 1; vector only: the pool's minimum → 0
    assert [(r.id, r.score) for r in page] == [("both", 0.75), ("kw", 0.5), ("vec", 0.0)]
    assert all(r.score_type == "hybrid" and r.dist == pytest.approx(1 - (r.score or 0)) for r in page)
    assert total == 40


def test_hybrid_lifts_candidates_dated_in_the_period_the_text_names() -> None:
    store, client = make_store()
    in_july = rec("july", event_date=datetime(2023, 7, 20, tzinfo=UTC))
    reported_later = rec("late", created_at=datetime(2023, 8, 5, tzinfo=UTC))  # within the week of grace
    in_may = rec("may", event_date=datetime(2023, 5, 2, tzinfo=UTC), created_at=datetime(2023, 7, 10, tzinfo=UTC))
    client.replies["search"] = [
        hits(hit(in_may, 1.9), hit(in_july, 1.8), hit(reported_later, 1.7), total=3),
        hits(total=0),
    ]
    client.replies["count"] = [{"count": 3}]
    query = SearchQuery(
        tenant="t1", mode="hybrid", text="what in July 2023", vector=[1, 0, 0], alpha=0.5,
        time_window=time_reference("what in July 2023"),
    )
    page, _ = store.search(query)
    # may: 0.5 * 1; july: 0.5 * 0.5 + 0.3; late: 0 + 0.3; all over 1.3. event_date wins over created_at.
    assert [(r.id, round(r.score or 0, 3)) for r in page] == [("july", 0.423), ("may", 0.385), ("late", 0.231)]


# -- writes ---------------------------------------------------------------------------------------


def test_domain_upsert_uses_tenant_scoped_ids_and_waits_for_refresh() -> None:
    # Checked against https://docs.opensearch.org/latest/api-reference/document-apis/bulk/ (refresh=wait_for)
    store, client = make_store(serverless=False)
    client.replies["bulk"] = [{"errors": False, "items": [{"index": {"_id": "t1:a", "status": 201}}]}]
    record = rec("a", topics=["x"], namespace="", memory_type=MemoryTypeEnum.SEMANTIC, event_date=T0)
    store.upsert("t1", [record], [[1.0, 0.0, 0.0]])
    ((name, kwargs),) = client.calls
    assert name == "bulk" and kwargs["refresh"] == "wait_for" and kwargs["index"] == "memories"
    action, doc = kwargs["body"]
    assert action == {"index": {"_index": "memories", "_id": "t1:a"}}
    written_at = doc.pop("written_at")
    assert isinstance(written_at, int)
    assert doc == {
        "tenant": "t1",
        "memory_id": "a",
        "text": "likes tea",
        "context": None,
        "body": ["likes tea", "likes tea"],  # BM25 scores the text twice and the context once
        "namespace": None,
        "user_id": None,
        "session_id": None,
        "topics": ["x"],
        "entities": [],
        "memory_type": "semantic",
        "extraction_strategy": "discrete",
        "memory_hash": None,
        "discrete_memory_extracted": "f",
        "vector": [1.0, 0.0, 0.0],
        "record": record.model_dump(mode="json"),
        "created_at": T0_MS,
        "last_accessed": T0_MS,
        "updated_at": T0_MS,
        "event_date": T0_MS,
        "persisted_at": None,
    }


def test_serverless_upsert_sends_no_id_and_no_refresh_and_replaces_old_versions() -> None:
    # AOSS vector collections reject custom ids ("Document ID is not supported in create/index operation
    # request"; https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-genref.html
    # lists _doc/<id>, _create/<id>, _update/<id> "for search collection types only") and expose no refresh.
    store, client = make_store(serverless=True)
    old = rec("a", text="old")
    client.replies["search"] = [hits(hit(old, _id="gen-1"), hit(old, _id="gen-2"))]
    client.replies["bulk"] = [{"errors": False, "items": []}]
    store.upsert("t1", [rec("a", text="new")], [[0.0, 1.0, 0.0]])
    (lookup,) = client.bodies("search")
    assert lookup["query"] == {"bool": {"filter": [{"term": {"tenant": "t1"}}, {"terms": {"memory_id": ["a"]}}]}}
    ((_, bulk),) = [call for call in client.calls if call[0] == "bulk"]
    assert "refresh" not in bulk
    lines = bulk["body"]
    assert lines[:3] == [
        {"delete": {"_index": "memories", "_id": "gen-1"}},
        {"delete": {"_index": "memories", "_id": "gen-2"}},
        {"index": {"_index": "memories"}},
    ]
    assert (lines[3]["memory_id"], lines[3]["text"]) == ("a", "new")
    assert not any("_id" in line.get("index", {}) for line in lines)


def test_serverless_reads_keep_the_newest_of_duplicate_versions() -> None:
    store, client = make_store(serverless=True)
    client.replies["search"] = [
        hits(hit(rec("a", text="older"), written_at=1), hit(rec("a", text="newer"), written_at=2))
    ]
    assert [r.text for r in store.get("t1", ["a"])] == ["newer"]


def test_delete_counts_records_whose_documents_were_deleted() -> None:
    store, client = make_store(serverless=False)
    client.replies["search"] = [hits(hit(rec("a"), _id="t1:a"), hit(rec("b"), _id="t1:b"))]
    client.replies["bulk"] = [
        {
            "errors": True,
            "items": [
                {"delete": {"_id": "t1:a", "status": 200, "result": "deleted"}},
                {"delete": {"_id": "t1:b", "status": 404, "result": "not_found"}},
            ],
        }
    ]
    assert store.delete("t1", ["a", "b", "zzz"]) == 1
    ((_, bulk),) = [call for call in client.calls if call[0] == "bulk"]
    assert bulk["refresh"] == "wait_for"
    assert bulk["body"] == [
        {"delete": {"_index": "memories", "_id": "t1:a"}},
        {"delete": {"_index": "memories", "_id": "t1:b"}},
    ]


def test_touch_rewrites_the_whole_document_with_its_vector() -> None:
    store, client = make_store(serverless=True)
    found = hit(rec("a", access_count=2), _id="gen-1")
    found["_source"]["vector"] = [0.0, 0.0, 1.0]
    client.replies["search"] = [hits(found)]
    client.replies["bulk"] = [{"errors": False, "items": []}]
    when = datetime(2025, 2, 1, tzinfo=UTC)
    store.touch("t1", ["a"], when)
    assert client.bodies("search")[0]["_source"] is True
    delete, action, doc = client.bodies("bulk")[0]
    assert (delete, action) == ({"delete": {"_index": "memories", "_id": "gen-1"}}, {"index": {"_index": "memories"}})
    assert doc["vector"] == [0.0, 0.0, 1.0]
    assert (doc["record"]["access_count"], doc["last_accessed"]) == (3, int(when.timestamp() * 1000))


def test_a_document_the_engine_refuses_is_bad_input_with_the_engine_reason() -> None:
    store, client = make_store()
    error = {"type": "mapper_parsing_exception", "reason": "failed to parse field [created_at]"}
    client.replies["bulk"] = [{"errors": True, "items": [{"index": {"status": 400, "error": error}}]}]
    with pytest.raises(InvalidInputError, match=r"nothing was stored: failed to parse field \[created_at\]"):
        store.upsert("t1", [rec("a")], [[1.0, 0.0, 0.0]])


def test_a_partly_failed_bulk_write_deletes_what_it_created_then_raises() -> None:
    # Bulk items succeed or fail one by one (https://docs.opensearch.org/latest/api-reference/document-apis/bulk/,
    # "Response": per-item status); a 429 item is a rejected execution.
    store, client = make_store()
    client.replies["bulk"] = [
        {
            "errors": True,
            "items": [
                {"index": {"_id": "t1:a", "status": 201, "result": "created"}},
                {"index": {"_id": "t1:b", "status": 200, "result": "updated"}},
                {"index": {"_id": "t1:c", "status": 429, "error": {"type": "es_rejected_execution_exception"}}},
            ],
        },
        {"errors": False, "items": [{"delete": {"_id": "t1:a", "status": 200, "result": "deleted"}}]},
    ]
    with pytest.raises(DependencyUnavailableError, match=r"1 of 3 documents failed.*rejected") as raised:
        store.upsert("t1", [rec("a"), rec("b"), rec("c")], [[1.0, 0.0, 0.0]] * 3)
    assert not isinstance(raised.value, ConfigurationError)
    write, compensation = client.bodies("bulk")
    assert len(write) == 6
    assert compensation == [{"delete": {"_index": "memories", "_id": "t1:a"}}]  # "updated" b keeps its new version


# -- errors -----------------------------------------------------------------------------------------

Failure = Callable[[], Exception]


@pytest.mark.parametrize(
    "failure",
    [
        lambda: ConnectionError("N/A", "refused", OSError("refused")),
        lambda: ConnectionTimeout("TIMEOUT", "timed out", TimeoutError()),
        lambda: TransportError(503, "unavailable", {}),
    ],
)
def test_transport_failures_become_dependency_unavailable(failure: Failure) -> None:
    store, client = make_store()
    client.replies["search"] = [failure()]
    with pytest.raises(DependencyUnavailableError) as caught:
        store.search(SearchQuery(tenant="t1", mode="list"))
    assert caught.value.dependency == "opensearch"
    assert not isinstance(caught.value, ConfigurationError)


def test_access_denied_is_a_configuration_error() -> None:
    store, client = make_store()
    client.replies["search"] = [AuthorizationException(403, "forbidden", {})]
    with pytest.raises(ConfigurationError, match="403"):
        store.get("t1", ["a"])


def test_a_missing_index_reads_as_empty() -> None:
    store, client = make_store()
    client.replies["search"] = [NotFoundError(404, "index_not_found_exception", {}), NotFoundError(404, "x", {})]
    assert store.get("t1", ["a"]) == []
    assert store.search(SearchQuery(tenant="t1", mode="list")) == ([], 0)


def test_a_query_vector_of_the_wrong_dimension_is_a_configuration_error() -> None:
    store, client = make_store()
    with pytest.raises(ConfigurationError, match="3-dim"):
        store.search(SearchQuery(tenant="t1", mode="semantic", vector=[1.0, 0.0]))
    assert client.calls == []


# -- client factory -------------------------------------------------------------------------------


def test_factory_signs_aoss_requests_with_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    from opensearchpy import Urllib3AWSV4SignerAuth

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    store = OpenSearchLongTermStore.from_settings_values(
        url="https://abc123.us-east-1.aoss.amazonaws.com",
        index="memories",
        auth="sigv4",
        service="aoss",
        region="us-east-1",
        username=None,
        password=None,
        timeout_seconds=3,
    )
    transport = store._client.transport
    assert store._serverless is True
    assert isinstance(transport.kwargs["http_auth"], Urllib3AWSV4SignerAuth)
    assert transport.kwargs["http_auth"].service == "aoss"
    assert (transport.kwargs["timeout"], transport.max_retries, transport.retry_on_timeout) == (3, 1, False)
    assert transport.hosts == [{"host": "abc123.us-east-1.aoss.amazonaws.com", "port": 443}]


def test_factory_rejects_basic_auth_without_credentials() -> None:
    with pytest.raises(ConfigurationError, match="username"):
        OpenSearchLongTermStore.from_settings_values(
            "http://localhost:9200", "memories", "basic", "es", None, None, None, 3
        )


def test_upsert_writes_the_context_and_scales_long_vectors_to_unit_length() -> None:
    store, client = make_store(serverless=False)
    client.replies["bulk"] = [{"errors": False, "items": [{"index": {"_id": "t1:a", "status": 201}}] * 2}]
    store.upsert("t1", [rec("a"), rec("b")], [[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]], ["Q: what tea?", None])
    _, doc_a, _, doc_b = client.bodies("bulk")[0]
    assert (doc_a["context"], doc_a["vector"]) == ("Q: what tea?", pytest.approx([0.6, 0.8, 0.0]))
    # a shorter vector (the mean of two unit vectors) is kept as it is: its inner product is the mean
    assert (doc_b["context"], doc_b["vector"]) == (None, pytest.approx([0.3, 0.4, 0.0]))


def test_touch_keeps_the_context() -> None:
    store, client = make_store(serverless=False)
    source = {**hit(rec("a"))["_source"], "vector": [1.0, 0.0, 0.0], "context": "before"}
    client.replies["search"] = [hits({"_id": "t1:a", "_score": None, "_source": source})]
    client.replies["bulk"] = [{"errors": False, "items": [{"index": {"_id": "t1:a", "status": 200}}]}]
    store.touch("t1", ["a"], T0)
    _, doc = client.bodies("bulk")[0]
    assert doc["context"] == "before" and doc["vector"] == [1.0, 0.0, 0.0]


# -- index per tenant -----------------------------------------------------------------------------

T1_INDEX = tenant_index_name("memories", "t1")
LEGAL_INDEX_NAME = r"[a-z0-9][a-z0-9._-]*"  # lowercase, no \\ / * ? " < > | space , # : (OpenSearch "Create index")


def test_tenant_index_names_are_legal_readable_and_distinct() -> None:
    # Given tenants that differ only in case, punctuation or script, one too long, and one with no
    # ASCII letter at all
    tenants = ["Acme", "acme", "ACME", "acme:eu", "acme/eu", "acme eu", "Zürich", "zurich", "東京", "大阪",
               "-_-", "", "a" * 1000, "a" * 1001, "tenant\ud800"]  # fmt: skip
    longest_base = "b" * MAX_BASE_NAME_BYTES
    names = [tenant_index_name(longest_base, tenant) for tenant in tenants]
    # Then every name is a legal index name within 255 bytes, even on the longest base
    for name in names:
        assert re.fullmatch(LEGAL_INDEX_NAME, name) and len(name.encode()) <= 255, name
    # And no two tenants share one; the same tenant always gets the same
    assert len(set(names)) == len(tenants)
    assert [tenant_index_name(longest_base, t) for t in tenants] == names
    # And a person can tell whose index it is
    assert tenant_index_name("memories", "Zürich").startswith("memories-t-zurich-")
    assert tenant_index_name("memories", "Acme Corp:EU").startswith("memories-t-acme-corp-eu-")


def test_a_tenants_first_write_creates_its_index_with_the_same_body_then_writes_there() -> None:
    # Given a domain store, index per tenant, and a tenant with no index yet
    store, client = make_store(tenancy="index-per-tenant")
    client.indices.missing = {T1_INDEX}
    client.replies["bulk"] = [{"errors": False, "items": [{"index": {"_id": "t1:a", "status": 201}}]}] * 2
    # When the tenant writes twice
    store.upsert("t1", [rec("a")], [[1.0, 0.0, 0.0]])
    store.upsert("t1", [rec("a")], [[1.0, 0.0, 0.0]])
    # Then its index is created with the mapping of the shared layout, checked once (its primary shard
    # started: a create another process won may still be starting it), and written to
    names = [(name, kwargs["index"]) for name, kwargs in client.calls]
    assert names == [
        ("indices.get_mapping", T1_INDEX),
        ("indices.create", T1_INDEX),
        ("indices.get_mapping", T1_INDEX),
        ("cluster.health", T1_INDEX),
        ("bulk", T1_INDEX),
        ("bulk", T1_INDEX),
    ]
    assert client.calls[1][1]["body"] == index_body(3, "faiss")
    assert client.calls[3][1] == {"index": T1_INDEX, "wait_for_active_shards": "1"}
    action, doc = client.bodies("bulk")[0]
    assert action == {"index": {"_index": T1_INDEX, "_id": "t1:a"}} and doc["tenant"] == "t1"
    assert client.calls[4][1]["refresh"] == "wait_for"


def test_serverless_first_write_creates_the_tenant_index_and_sends_no_id_and_no_refresh() -> None:
    # AOSS accepts index creation with a custom analyzer and knn settings (the same body as the shared
    # layout's, pinned above); documents still get no custom id and writes no refresh.
    store, client = make_store(serverless=True, tenancy="index-per-tenant")
    client.indices.missing = {T1_INDEX}
    client.replies["bulk"] = [{"errors": False, "items": []}]
    store.upsert("t1", [rec("a")], [[1.0, 0.0, 0.0]])
    assert client.bodies("search") == []  # no index, so no old versions to look up
    assert "cluster.health" not in [name for name, _ in client.calls]  # AOSS has no cluster health API
    ((_, create),) = [call for call in client.calls if call[0] == "indices.create"]
    assert create == {"index": T1_INDEX, "body": index_body(3, "faiss")}
    ((_, bulk),) = [call for call in client.calls if call[0] == "bulk"]
    assert "refresh" not in bulk and bulk["body"][0] == {"index": {"_index": T1_INDEX}}


def test_a_create_another_process_won_is_fine() -> None:
    store, client = make_store(tenancy="index-per-tenant")
    client.indices.missing = {T1_INDEX}
    client.indices.create_error = RequestError(400, "resource_already_exists_exception", {})
    client.replies["bulk"] = [{"errors": False, "items": []}]
    store.upsert("t1", [rec("a")], [[1.0, 0.0, 0.0]])
    assert [name for name, _ in client.calls][-3:] == ["indices.get_mapping", "cluster.health", "bulk"]


def test_a_tenant_without_an_index_reads_empty_without_searching() -> None:
    store, client = make_store(tenancy="index-per-tenant")
    client.indices.missing = {T1_INDEX}
    assert store.get("t1", ["a"]) == []
    assert store.find_by_hash("t1", "h") == []
    assert store.delete("t1", ["a"]) == 0
    for mode, vector in (("list", None), ("keyword", None), ("semantic", [1.0, 0.0, 0.0]), ("hybrid", [1, 0, 0])):
        assert store.search(SearchQuery(tenant="t1", mode=mode, text="tea", vector=vector)) == ([], 0)  # type: ignore[arg-type]
    store.touch("t1", ["a"], T0)
    assert {name for name, _ in client.calls} == {"indices.get_mapping"}  # nothing created, nothing searched


def test_a_tenant_index_of_another_dimension_is_refused_when_first_touched() -> None:
    store, client = make_store(tenancy="index-per-tenant", dimension=1536)
    with pytest.raises(ConfigurationError, match=rf"'{T1_INDEX}' was built with 1536-dim vectors but the embedder"):
        store.search(SearchQuery(tenant="t1", mode="list"))
    assert client.bodies("search") == []


def test_ensure_ready_checks_every_tenant_index_once_and_names_a_wrong_one() -> None:
    # Given two tenant indexes of the right dimension, one of another, and an index of another base
    store, client = make_store(tenancy="index-per-tenant", exists=False)
    good, other = tenant_index_name("memories", "t1"), tenant_index_name("memories", "t2")
    wrong = tenant_index_name("memories", "t3")
    client.indices.tenant_indexes = {good: 3, other: 3, wrong: 5, "memories-t-hash-claims": 7}
    # Then start-up names the wrong one
    with pytest.raises(
        ConfigurationError, match=rf"'{wrong}' was built with 5-dim vectors but the embedder produces 3"
    ):
        store.ensure_ready(3)
    # When it is gone, start-up passes, and the tenants' reads need no further check
    del client.indices.tenant_indexes[wrong]
    store.ensure_ready(3)
    client.calls.clear()
    client.replies["search"] = [hits(), hits()]
    store.search(SearchQuery(tenant="t1", mode="list"))
    store.search(SearchQuery(tenant="t2", mode="list"))
    assert [name for name, _ in client.calls] == ["search", "search"]
    # And a second start-up check (the deep health check) does not scan again
    client.calls.clear()
    store.ensure_ready(3)
    assert "indices.get_mapping" not in [name for name, _ in client.calls]


def test_ensure_ready_refuses_a_shared_index_that_still_holds_records() -> None:
    # A deployment that ran the shared layout and now gets index-per-tenant would read none of its records
    store, client = make_store(tenancy="index-per-tenant", exists=True)
    client.replies["count"] = [{"count": 3}]
    with pytest.raises(ConfigurationError, match=r"'memories' holds 3 memory records of the shared layout.*shared"):
        store.ensure_ready(3)


def test_serverless_ensure_ready_with_index_per_tenant_creates_nothing() -> None:
    store, client = make_store(serverless=True, tenancy="index-per-tenant", exists=False)
    store.ensure_ready(3)
    assert [(name, kwargs["index"]) for name, kwargs in client.calls] == [("indices.exists", "memories")]


def test_a_tenant_index_deleted_under_a_running_process_reads_empty_then_is_checked_again() -> None:
    store, client = make_store(tenancy="index-per-tenant")
    client.replies["search"] = [hits(), NotFoundError(404, "index_not_found_exception", {})]
    store.search(SearchQuery(tenant="t1", mode="list"))  # checks and remembers the index
    assert store.search(SearchQuery(tenant="t1", mode="list")) == ([], 0)
    client.indices.missing = {T1_INDEX}
    client.calls.clear()
    assert store.get("t1", ["a"]) == []
    assert [name for name, _ in client.calls] == ["indices.get_mapping"]
