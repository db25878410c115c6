"""The LongTermStore contract, run against every adapter: SQLite (tmp file), and OpenSearch on the test
node (tests/fixtures/opensearch_node.py: a real OpenSearch 2.19 with k-NN, or the cluster at
OPENSEARCH_URL) once with the lucene engine and once with faiss (on the node, its exact-search path),
both with an index per tenant (the default layout), and once more with lucene on the shared layout.
AOSS is eventually consistent and cannot pass the read-your-writes checks, see opensearch_long_term.py.

Filter semantics are checked against `SearchFilters.matches()`, the reference, on a small corpus that
covers missing values, empty lists and every field. Vectors come from the deterministic FakeEmbedder.
Datetimes are whole seconds so OpenSearch's millisecond dates compare the same way.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
from agent_memory.domain.errors import ConfigurationError
from agent_memory.domain.filters import DateTimeFilter, EnumFilter, SearchFilters, SearchQuery, TagFilter
from agent_memory.domain.models import MemoryRecord, MemoryRecordResult, MemoryTypeEnum
from agent_memory.domain.temporal import time_reference
from agent_memory.ports import LongTermStore

DIMS = 64
EMBEDDER = FakeEmbedder(DIMS)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _opensearch_store(url: str, index: str, engine: str, tenancy: str = "index-per-tenant") -> Any:
    from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore

    username = os.environ.get("OPENSEARCH_USERNAME")
    return OpenSearchLongTermStore.from_settings_values(
        url=url,
        index=index,
        engine=engine,  # type: ignore[arg-type]
        tenancy=tenancy,  # type: ignore[arg-type]
        auth="basic" if username else "none",
        service="es",
        region=None,
        username=username,
        password=os.environ.get("OPENSEARCH_PASSWORD"),
        timeout_seconds=10,
    )


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("opensearch-lucene", marks=pytest.mark.opensearch),
        pytest.param("opensearch-faiss", marks=pytest.mark.opensearch),
        pytest.param("opensearch-lucene-shared", marks=pytest.mark.opensearch),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LongTermStore]:
    if request.param == "sqlite":
        sqlite_store = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
        sqlite_store.ensure_ready(DIMS)
        yield sqlite_store
        sqlite_store.close()
    else:
        url = request.getfixturevalue("opensearch_node_url")
        index = f"test-ltm-{uuid.uuid4().hex[:12]}"
        _, engine, *shared = request.param.split("-")
        opensearch_store = _opensearch_store(url, index, engine, "shared" if shared else "index-per-tenant")
        opensearch_store.ensure_ready(DIMS)
        yield opensearch_store
        delete_opensearch_indexes(opensearch_store, index)


def delete_opensearch_indexes(store: Any, index: str) -> None:
    from agent_memory.adapters.opensearch_long_term import owned_indexes

    store._client.indices.delete(index=owned_indexes(index), ignore_unavailable=True)


def rec(text: str, **fields: Any) -> MemoryRecord:
    fields.setdefault("created_at", T0)
    fields.setdefault("last_accessed", T0)
    return MemoryRecord(text=text, **fields)


def put(store: LongTermStore, tenant: str, *records: MemoryRecord) -> list[MemoryRecord]:
    store.upsert(tenant, records, EMBEDDER.embed_documents([r.text for r in records]))
    return list(records)


def search(store: LongTermStore, tenant: str, mode: str, text: str | None = None, **kw: Any) -> Any:
    vector = EMBEDDER.embed_query(text) if text is not None and mode in ("semantic", "hybrid") else None
    return store.search(SearchQuery(tenant=tenant, mode=mode, text=text, vector=vector, **kw))  # type: ignore[arg-type]


def texts(page: list[MemoryRecordResult]) -> list[str]:
    return [r.text for r in page]


def test_adapters_satisfy_the_port(store: LongTermStore) -> None:
    assert isinstance(store, LongTermStore)


# -- CRUD ---------------------------------------------------------------------------------------------


def test_upsert_then_get_round_trips_every_field(store: LongTermStore) -> None:
    # Given a record using every field
    record = rec(
        "likes green tea",
        session_id="s1",
        user_id="u1",
        namespace="ns",
        topics=["drinks", "tea"],
        entities=["green tea"],
        memory_hash="h1",
        discrete_memory_extracted="t",
        memory_type=MemoryTypeEnum.SEMANTIC,
        persisted_at=T0,
        extracted_from=["m1"],
        event_date=T0 + timedelta(days=3),
        extraction_strategy="custom",
        extraction_strategy_config={"prompt": "x"},
        metadata={"k": [1, "two", None]},
        pinned=True,
        access_count=4,
    )
    # When it is stored and read back
    put(store, "t1", record)
    # Then every field survives, and unknown ids are skipped in request order
    assert store.get("t1", ["missing", record.id]) == [record]
    assert store.get("t1", []) == []


def test_get_returns_records_in_requested_order(store: LongTermStore) -> None:
    a, b, c = put(store, "t1", rec("alpha"), rec("beta"), rec("gamma"))
    assert [r.text for r in store.get("t1", [c.id, a.id, b.id, a.id])] == ["gamma", "alpha", "beta"]


def test_upsert_replaces_by_id(store: LongTermStore) -> None:
    # Given a stored record
    (original,) = put(store, "t1", rec("the old text about kayaks"))
    # When a record with the same id is upserted
    put(store, "t1", original.model_copy(update={"text": "the new text about canoes"}))
    # Then only the new version exists, in get and in every search mode
    assert [r.text for r in store.get("t1", [original.id])] == ["the new text about canoes"]
    assert search(store, "t1", "keyword", "kayaks") == ([], 0)
    assert texts(search(store, "t1", "keyword", "canoes")[0]) == ["the new text about canoes"]
    page, total = search(store, "t1", "list")
    assert (texts(page), total) == (["the new text about canoes"], 1)
    assert search(store, "t1", "semantic", "kayaks")[1] == 1


def test_upsert_of_one_id_twice_in_a_batch_keeps_the_last(store: LongTermStore) -> None:
    first = rec("first version")
    put(store, "t1", first, first.model_copy(update={"text": "second version"}))
    assert [r.text for r in store.get("t1", [first.id])] == ["second version"]
    assert search(store, "t1", "list")[1] == 1


def test_delete_counts_only_records_actually_deleted(store: LongTermStore) -> None:
    a, b, c = put(store, "t1", rec("one"), rec("two"), rec("three"))
    assert store.delete("t1", [a.id, b.id, "unknown", a.id]) == 2
    assert store.delete("t1", [a.id]) == 0
    assert [r.id for r in store.get("t1", [a.id, b.id, c.id])] == [c.id]
    assert texts(search(store, "t1", "keyword", "one two three")[0]) == ["three"]


def test_find_by_hash(store: LongTermStore) -> None:
    a, b, _ = put(
        store,
        "t1",
        rec("first", memory_hash="same", created_at=T0),
        rec("second", memory_hash="same", created_at=T0 + timedelta(seconds=1)),
        rec("third", memory_hash="other"),
    )
    assert [r.id for r in store.find_by_hash("t1", "same")] == [a.id, b.id]
    assert store.find_by_hash("t1", "nothing") == []


def test_touch_sets_last_accessed_and_counts_accesses(store: LongTermStore) -> None:
    a, b = put(store, "t1", rec("touched", access_count=2), rec("untouched"))
    later = T0 + timedelta(days=10)
    store.touch("t1", [a.id, "unknown"], later)
    store.touch("t1", [a.id], later + timedelta(hours=1))
    touched, untouched = store.get("t1", [a.id, b.id])
    assert (touched.access_count, touched.last_accessed) == (4, later + timedelta(hours=1))
    assert (untouched.access_count, untouched.last_accessed) == (0, T0)
    # and the stored filter column follows, so last_accessed filters see the touch
    filters = SearchFilters(last_accessed=DateTimeFilter(gt=later))
    assert texts(search(store, "t1", "list", filters=filters)[0]) == ["touched"]
    # and the vector was kept
    assert texts(search(store, "t1", "semantic", "touched", limit=1)[0]) == ["touched"]


def test_tenants_never_see_each_other(store: LongTermStore) -> None:
    # Given the same id and hash in two tenants
    mine = rec("shared secret about apples", memory_hash="h", namespace="ns")
    put(store, "t1", mine)
    put(store, "t2", mine.model_copy(update={"text": "other tenant apples"}))
    # Then reads and searches of t1 see only t1
    assert [r.text for r in store.get("t1", [mine.id])] == ["shared secret about apples"]
    assert [r.text for r in store.find_by_hash("t1", "h")] == ["shared secret about apples"]
    for mode in ("list", "semantic", "keyword", "hybrid"):
        page, total = search(store, "t1", mode, None if mode == "list" else "apples")
        assert (texts(page), total) == (["shared secret about apples"], 1), mode
    # And writes to t1 leave t2 alone
    store.touch("t1", [mine.id], T0 + timedelta(days=1))
    assert store.delete("t1", [mine.id]) == 1
    (theirs,) = store.get("t2", [mine.id])
    assert (theirs.text, theirs.access_count) == ("other tenant apples", 0)
    assert search(store, "t3", "list") == ([], 0)


def test_keyword_statistics_are_per_tenant(store: LongTermStore) -> None:
    # Given the same records in two tenants
    texts = ("the otter swims in the river", "the otter eats a fish by the river bank", "a heron waits")
    for tenant in ("t1", "t2"):
        put(store, tenant, *(rec(t) for t in texts))
    query = "otter river fish"
    raw_before = raw_keyword_scores(store, "t1", query)
    hybrid_before = [(r.id, r.score) for r in search(store, "t1", "hybrid", query, alpha=0.5)[0]]
    # When the other tenant stores many records full of the query's words
    put(store, "t2", *(rec(f"otter river fish {i}") for i in range(200)))
    # Then this tenant's raw BM25 scores and hybrid scores have not moved (not on the shared OpenSearch
    # layout, whose statistics are per shard: test_opensearch_tenancy.py shows that they do there)
    if getattr(store, "_tenancy", None) == "shared":
        assert raw_keyword_scores(store, "t1", query) != pytest.approx(raw_before)
        return
    assert raw_keyword_scores(store, "t1", query) == pytest.approx(raw_before)
    hybrid_after = [(r.id, r.score) for r in search(store, "t1", "hybrid", query, alpha=0.5)[0]]
    assert [i for i, _ in hybrid_after] == [i for i, _ in hybrid_before]
    assert [s for _, s in hybrid_after] == pytest.approx([s for _, s in hybrid_before])


def raw_keyword_scores(store: LongTermStore, tenant: str, text: str) -> list[float]:
    """The engine's own BM25 scores of the tenant's best keyword matches, before normalisation."""
    from agent_memory.domain.keywords import parse_keyword_query

    query, keywords = SearchQuery(tenant=tenant, mode="keyword", text=text), parse_keyword_query(text)
    if isinstance(store, SqliteLongTermStore):
        with store._transaction(write=False) as conn:
            found: Any = store._keywords.candidates(conn, query, keywords, start=0, size=10)
    else:
        from agent_memory.adapters.opensearch_search import OpenSearchCandidates

        found = OpenSearchCandidates(store).keyword_candidates(query, keywords, start=0, size=10)  # type: ignore[arg-type]
    assert found.hits, "the query matches nothing: the test would prove nothing"
    return [score for _, score in found.hits]


# -- filters ------------------------------------------------------------------------------------------


def corpus() -> list[MemoryRecord]:
    """Records that exercise missing values, empty lists and every filterable field."""
    spec = [
        # namespace, user, session, topics, entities, type, strategy, event_date day
        ("ns-a", "u1", "s1", ["food", "travel"], ["paris"], "semantic", "discrete", 1),
        ("ns-a", "u2", "s2", ["food"], ["rome", "paris"], "episodic", "summary", None),
        ("ns-b", "u1", None, [], None, "message", "discrete", 3),
        (None, None, "s1", None, ["paris"], "semantic", "custom", 4),
        ("ws:abc", "u3", "s3", ["work", "travel"], [], "episodic", "discrete", 5),
        ("ws:abd", "u2", "s1", ["work"], ["berlin"], "message", "preferences", None),
        ("", "", "", ["travel"], ["rome"], "semantic", "discrete", 7),
    ]
    return [
        rec(
            f"memory number {i} about things",
            namespace=ns,
            user_id=user,
            session_id=session,
            topics=topics,
            entities=entities,
            memory_type=MemoryTypeEnum(kind),
            extraction_strategy=strategy,
            created_at=T0 + timedelta(days=i),
            last_accessed=T0 + timedelta(days=10 - i),
            event_date=None if day is None else T0 + timedelta(days=day),
        )
        for i, (ns, user, session, topics, entities, kind, strategy, day) in enumerate(spec)
    ]


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


FILTERS: dict[str, SearchFilters] = {
    "none": SearchFilters(),
    "ns eq": SearchFilters(namespace=TagFilter(eq="ns-a")),
    "ns eq blank": SearchFilters(namespace=TagFilter(eq="")),
    "ns ne": SearchFilters(namespace=TagFilter(ne="ns-a")),
    "ns any": SearchFilters(namespace=TagFilter(any=["ns-b", "ws:abc"])),
    "ns all": SearchFilters(namespace=TagFilter(all=["ns-a"])),
    "ns in_": SearchFilters(namespace=TagFilter(in_=["ns-a", "ns-b"])),
    "ns not_eq": SearchFilters(namespace=TagFilter(not_eq="ns-b")),
    "ns not_in": SearchFilters(namespace=TagFilter(not_in=["ns-a", "ns-b"])),
    "ns none": SearchFilters(namespace=TagFilter(none=["ns-a"])),
    "ns startswith": SearchFilters(namespace=TagFilter(startswith="ws:ab")),
    "ns startswith case": SearchFilters(namespace=TagFilter(startswith="WS:")),
    "ns eq+not_in": SearchFilters(namespace=TagFilter(in_=["ns-a", "ns-b"], not_in=["ns-b"])),
    "user ne": SearchFilters(user_id=TagFilter(ne="u1")),
    "session in_": SearchFilters(session_id=TagFilter(in_=["s1", "s3"])),
    "strategy eq": SearchFilters(extraction_strategy=TagFilter(eq="discrete")),
    "topics eq": SearchFilters(topics=TagFilter(eq="travel")),
    "topics ne": SearchFilters(topics=TagFilter(ne="food")),
    "topics any": SearchFilters(topics=TagFilter(any=["food", "work"])),
    "topics all": SearchFilters(topics=TagFilter(all=["travel", "work"])),
    "topics in_": SearchFilters(topics=TagFilter(in_=["travel"])),
    "topics not_eq": SearchFilters(topics=TagFilter(not_eq="travel")),
    "topics not_in": SearchFilters(topics=TagFilter(not_in=["food", "work"])),
    "topics none": SearchFilters(topics=TagFilter(none=["travel"])),
    "topics startswith": SearchFilters(topics=TagFilter(startswith="tra")),
    "entities all": SearchFilters(entities=TagFilter(all=["rome", "paris"])),
    "entities any+none": SearchFilters(entities=TagFilter(any=["paris", "rome"], none=["berlin", "rome"])),
    "type eq": SearchFilters(memory_type=EnumFilter(eq="semantic")),
    "type ne": SearchFilters(memory_type=EnumFilter(ne="message")),
    "type any": SearchFilters(memory_type=EnumFilter(any=["episodic", "message"])),
    "created gt": SearchFilters(created_at=DateTimeFilter(gt=day(3))),
    "created gte": SearchFilters(created_at=DateTimeFilter(gte=day(3))),
    "created lt": SearchFilters(created_at=DateTimeFilter(lt=day(3))),
    "created lte": SearchFilters(created_at=DateTimeFilter(lte=day(3))),
    "created eq": SearchFilters(created_at=DateTimeFilter(eq=day(2))),
    "created ne": SearchFilters(created_at=DateTimeFilter(ne=day(2))),
    "created gte+lte range": SearchFilters(created_at=DateTimeFilter(gte=day(2), lte=day(4))),
    "created gt+lt range": SearchFilters(created_at=DateTimeFilter(gt=day(2), lt=day(4))),
    "created between": SearchFilters(created_at=DateTimeFilter(between=[day(1), day(3)])),
    "created between neither": SearchFilters(created_at=DateTimeFilter(between=[day(1), day(3)], inclusive="neither")),
    "created between left": SearchFilters(created_at=DateTimeFilter(between=[day(1), day(3)], inclusive="left")),
    "created between right": SearchFilters(created_at=DateTimeFilter(between=[day(1), day(3)], inclusive="right")),
    "last_accessed lte": SearchFilters(last_accessed=DateTimeFilter(lte=day(6))),
    "event_date gte (missing excluded)": SearchFilters(event_date=DateTimeFilter(gte=day(3))),
    "event_date ne (missing excluded)": SearchFilters(event_date=DateTimeFilter(ne=day(3))),
    "combined": SearchFilters(
        namespace=TagFilter(ne="ns-b"),
        topics=TagFilter(any=["travel", "food"]),
        memory_type=EnumFilter(ne="message"),
        created_at=DateTimeFilter(lte=day(5)),
        event_date=DateTimeFilter(gt=day(0)),
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_agree_with_the_reference_in_every_mode(store: LongTermStore, name: str) -> None:
    # Given the corpus and a filter
    records = put(store, "t1", *corpus())
    filters = FILTERS[name]
    expected = {r.text for r in records if filters.matches(r)}
    # Then every mode returns exactly the records the reference semantics accept, with a true total
    for mode, text in (("list", None), ("semantic", "memory"), ("keyword", "memory"), ("hybrid", "memory")):
        page, total = search(store, "t1", mode, text, filters=filters, limit=50)
        assert (set(texts(page)), total) == (expected, len(expected)), mode
    assert expected or name in ("ns eq blank", "ns startswith case", "topics all"), "filter selects nothing"


def test_date_bounds_before_1970_and_at_the_edges_include_the_date_itself(store: LongTermStore) -> None:
    # OpenSearch rounds an inclusive upper bound up, which for a negative epoch_millis value left out the
    # date itself (found on the test node); every bound must compare like the reference.
    dates = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
             datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]  # fmt: skip
    records = put(store, "t1", *(rec(f"dated {i}", event_date=when) for i, when in enumerate(dates)))
    for when in dates:
        for filters in (
            SearchFilters(event_date=DateTimeFilter(lte=when)),
            SearchFilters(event_date=DateTimeFilter(lt=when)),
            SearchFilters(event_date=DateTimeFilter(gte=when)),
            SearchFilters(event_date=DateTimeFilter(gt=when)),
            SearchFilters(event_date=DateTimeFilter(eq=when)),
            SearchFilters(event_date=DateTimeFilter(ne=when)),
        ):
            expected = {r.text for r in records if filters.matches(r)}
            page, total = search(store, "t1", "list", filters=filters)
            assert (set(texts(page)), total) == (expected, len(expected)), (when, filters)


# -- modes --------------------------------------------------------------------------------------------

ANIMALS = [
    "the quokka is a small marsupial from western australia",
    "kangaroos and wallabies are marsupials too",
    "my favourite pizza has olives and anchovies",
    "we went hiking in the swiss alps last summer",
    "she hikes every weekend in the mountains",
    "the stock market fell sharply on monday",
]


def test_list_is_newest_first_with_no_scores(store: LongTermStore) -> None:
    put(store, "t1", *(rec(f"item {i}", created_at=day(i)) for i in range(5)))
    page, total = search(store, "t1", "list")
    assert (texts(page), total) == ([f"item {i}" for i in (4, 3, 2, 1, 0)], 5)
    assert all((r.dist, r.score, r.score_type) == (0.0, None, None) for r in page)


def test_semantic_orders_by_cosine_distance(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    page, total = search(store, "t1", "semantic", ANIMALS[3], limit=10)
    assert total == len(ANIMALS)
    assert page[0].text == ANIMALS[3]
    assert page[0].dist == pytest.approx(0.0, abs=1e-5)
    dists = [r.dist for r in page]
    assert dists == sorted(dists) and all(0.0 <= d <= 2.0 for d in dists)
    for r in page:
        assert r.score == pytest.approx(max(0.0, 1.0 - r.dist), abs=1e-6)
        assert r.score_type == "semantic"


def test_distance_threshold_keeps_only_close_records_and_counts_them(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    everything, _ = search(store, "t1", "semantic", ANIMALS[0], limit=10)
    threshold = (everything[1].dist + everything[2].dist) / 2  # between the 2nd and 3rd nearest
    page, total = search(store, "t1", "semantic", ANIMALS[0], distance_threshold=threshold, limit=1)
    assert (texts(page), total) == ([ANIMALS[0]], 2)
    assert search(store, "t1", "semantic", ANIMALS[0], distance_threshold=-0.5) == ([], 0)


def test_keyword_scores_bm25_normalised_over_all_matches(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    # "hiking" also finds "hikes": both stores stem (porter)
    page, total = search(store, "t1", "keyword", "hiking marsupial", limit=10)
    assert total == 4
    assert set(texts(page)) == {ANIMALS[0], ANIMALS[1], ANIMALS[3], ANIMALS[4]}
    scores = [r.score for r in page]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(1.0)
    assert all(r.score_type == "keyword" and r.dist == pytest.approx(1.0 - r.score) for r in page)
    # the second page is scored against the best match overall, not its own best
    second, total = search(store, "t1", "keyword", "hiking marsupial", limit=2, offset=2)
    assert total == 4 and all(r.score < 1.0 for r in second)
    assert [r.id for r in second] == [r.id for r in page[2:4]]


def test_keyword_quoted_phrases_are_required(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    page, total = search(store, "t1", "keyword", '"swiss alps" mountains')
    assert (texts(page), total) == ([ANIMALS[3]], 1)
    assert search(store, "t1", "keyword", '"alps swiss"') == ([], 0)


@pytest.mark.parametrize(
    "text",
    ['"a" OR (b* -c) NEAR:', "?!...", "   ", "", '"unclosed quote', "text:pizza", "pizza^2 NOT", "*", "NEAR(a b)", "'"],
)
def test_keyword_never_fails_on_punctuation(store: LongTermStore, text: str) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    page, total = search(store, "t1", "keyword", text)
    assert total == len(page)
    if "pizza" in text:
        assert texts(page) == [ANIMALS[2]]
    elif not any(c.isalnum() for c in text):
        assert (page, total) == ([], 0)


def test_hybrid_ranks_a_record_strong_on_both_sides_first(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    # Given a query whose nearest vector neighbour after the quokka ("market", shared trigrams) has no
    # keyword match, while the kangaroo record matches "marsupial" but is further away
    semantic_order = texts(search(store, "t1", "semantic", "quokka marsupial", limit=3)[0])
    assert semantic_order[0] == ANIMALS[0] and semantic_order[2] == ANIMALS[1]
    # When searching both sides with equal weight
    page, total = search(store, "t1", "hybrid", "quokka marsupial", alpha=0.5, limit=10)
    # Then the record strong on both sides leads and the keyword match overtakes the vector-only one
    assert total == len(ANIMALS)
    assert texts(page[:2]) == [ANIMALS[0], ANIMALS[1]]
    scores = [r.score for r in page]
    assert scores == sorted(scores, reverse=True)
    assert all(r.score_type == "hybrid" and 0.0 <= r.score <= 1.0 for r in page)
    assert all(r.dist == pytest.approx(1.0 - r.score) for r in page)


def test_hybrid_alpha_moves_between_the_two_sides(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    query = "hiking in the mountains"
    keyword_order = texts(search(store, "t1", "keyword", query, limit=10)[0])
    semantic_order = texts(search(store, "t1", "semantic", query, limit=10)[0])
    assert texts(search(store, "t1", "hybrid", query, alpha=0.0, limit=10)[0])[: len(keyword_order)] == keyword_order
    assert texts(search(store, "t1", "hybrid", query, alpha=1.0, limit=10)[0]) == semantic_order


def test_hybrid_threshold_applies_to_the_vector_side_only(store: LongTermStore) -> None:
    put(store, "t1", *(rec(t) for t in ANIMALS))
    # a threshold nothing passes leaves the keyword matches
    page, total = search(store, "t1", "hybrid", "pizza", distance_threshold=-1.0)
    assert (texts(page), total) == ([ANIMALS[2]], 1)


def test_pagination_has_stable_pages_and_a_true_total(store: LongTermStore) -> None:
    put(store, "t1", *(rec(f"note {i} about gardening", created_at=day(i)) for i in range(25)))
    for mode in ("list", "semantic", "keyword", "hybrid"):
        text = None if mode == "list" else "gardening note"
        full, total = search(store, "t1", mode, text, limit=25)
        assert total == 25, mode
        pages = [search(store, "t1", mode, text, limit=10, offset=o) for o in (0, 10, 20)]
        assert [total for _, total in pages] == [25, 25, 25], mode
        assert [r.id for page, _ in pages for r in page] == [r.id for r in full], mode
        assert search(store, "t1", mode, text, limit=10, offset=30) == ([], 25)


def test_filters_apply_before_top_k(store: LongTermStore) -> None:
    # Given 200 records close to the query and 3 far away ones that alone pass the filter
    crowd = [rec(f"coffee tasting notes batch {i}", namespace="crowd") for i in range(200)]
    needles = [rec(f"tax return paperwork {i} coffee", namespace="needle") for i in range(3)]
    put(store, "t1", *crowd, *needles)
    filters = SearchFilters(namespace=TagFilter(eq="needle"))
    # Then every mode returns all three
    for mode in ("semantic", "keyword", "hybrid"):
        page, total = search(store, "t1", mode, "coffee tasting notes", filters=filters, limit=10)
        assert (sorted(texts(page)), total) == (sorted(r.text for r in needles), 3), mode


# -- conversation context, mean vectors, time match ----------------------------------------------------


def test_context_is_searched_by_keyword_below_own_text_and_never_returned(store: LongTermStore) -> None:
    # Given an answer whose question is only in its context, and a record that says the word itself
    answer = rec("It's a mix of drama and romance!", memory_type=MemoryTypeEnum.MESSAGE, session_id="s")
    own = rec("My screenplay genre notes", memory_type=MemoryTypeEnum.SEMANTIC)
    store.upsert("t1", [answer, own], EMBEDDER.embed_documents([answer.text, own.text]),
                 ["Nate: What genre is your screenplay?", None])
    # When searching by the word only the context holds
    page, total = search(store, "t1", "keyword", "genre")
    # Then both match, the record's own text weighs more, and the context is not part of any result
    assert (texts(page), total) == ([own.text, answer.text], 2)
    assert store.get("t1", [answer.id]) == [answer]
    # And a required phrase must be in the record's own text
    assert texts(search(store, "t1", "keyword", '"screenplay genre"')[0]) == [own.text]


def test_a_shorter_vector_scores_its_inner_product(store: LongTermStore) -> None:
    # The mean of two unit vectors (see the port): its score is the mean of the two cosine similarities
    a, b = [1.0] + [0.0] * (DIMS - 1), [0.0, 1.0] + [0.0] * (DIMS - 2)
    mean = [(x + y) / 2 for x, y in zip(a, b, strict=True)]
    store.upsert("t1", [rec("mean"), rec("long")], [mean, [3.0 * x for x in a]])
    page, _ = store.search(SearchQuery(tenant="t1", mode="semantic", vector=a, limit=2))
    # "long" was scaled to unit length: cosine 1; "mean": (1 + 0) / 2
    assert [(r.text, round(r.dist, 6)) for r in page] == [("long", 0.0), ("mean", 0.5)]


def test_hybrid_lifts_records_dated_in_the_named_period(store: LongTermStore) -> None:
    # Given three equally relevant records: one happened in May, one in July, one was written days after July
    may = rec("went hiking", id="may", event_date=datetime(2023, 5, 12, tzinfo=UTC),
              created_at=datetime(2023, 7, 2, tzinfo=UTC))  # event_date, not created_at, says when
    july = rec("went hiking", id="july", event_date=datetime(2023, 7, 12, tzinfo=UTC))
    after = rec("went hiking", id="after", created_at=datetime(2023, 8, 3, tzinfo=UTC))
    put(store, "t1", may, july, after)
    text = "hiking in July 2023"
    # When searching with and without the period the text names
    plain, _ = search(store, "t1", "hybrid", text)
    timed, _ = search(store, "t1", "hybrid", text, time_window=time_reference(text))
    # Then only the window moves the two July records ahead, and scores stay within [0, 1]
    assert len({r.score for r in plain}) == 1
    assert sorted(r.id for r in timed[:2]) == ["after", "july"] and timed[2].id == "may"
    assert timed[0].score == pytest.approx(1.0) and timed[2].score == pytest.approx(1 / 1.3)


def test_dimension_mismatch_is_a_configuration_error(store: LongTermStore) -> None:
    # (with an index per tenant, the tenant's index exists once it has a record)
    put(store, "t1", rec("hello"))
    with pytest.raises(ConfigurationError, match=f"{DIMS}.*32"):
        store.ensure_ready(32)
    with pytest.raises(ConfigurationError):
        store.search(SearchQuery(tenant="t1", mode="semantic", vector=[1.0] * 32))
    with pytest.raises(ConfigurationError):
        store.upsert("t1", [rec("x")], [[1.0] * 32])
    store.ensure_ready(DIMS)  # the right dimension is still fine


# -- content dedup (upsert_unique) ---------------------------------------------------------------------


def test_upsert_unique_keeps_the_first_record_of_a_content(store: LongTermStore) -> None:
    # Given a stored record with a hash
    (first,) = put(store, "t1", rec("likes tea", memory_hash="h-tea"))
    # When records arrive: same content under a new id, the same id again, no hash, and a batch duplicate
    again = rec("likes tea", memory_hash="h-tea")
    same_id = first.model_copy(update={"topics": ["drinks"]})
    unhashed = rec("no hash here")
    fresh, fresh_twin = rec("likes coffee", memory_hash="h-coffee"), rec("likes coffee", memory_hash="h-coffee")
    batch = [again, same_id, unhashed, fresh, fresh_twin]
    kept = store.upsert_unique("t1", batch, EMBEDDER.embed_documents([r.text for r in batch]))
    # Then each caller learns which id holds its content, and only new content was written
    assert kept == [first.id, first.id, unhashed.id, fresh.id, fresh.id]
    assert store.get("t1", [again.id, fresh_twin.id]) == []
    assert store.get("t1", [first.id])[0].topics == ["drinks"]
    assert search(store, "t1", "list")[1] == 3
    # And other tenants are not deduplicated against it
    assert store.upsert_unique("t2", [again], EMBEDDER.embed_documents([again.text])) == [again.id]


def test_upsert_unique_stores_a_deleted_or_replaced_content_again(store: LongTermStore) -> None:
    (gone,) = put(store, "t1", rec("was deleted", memory_hash="h-gone"))
    (moved,) = put(store, "t1", rec("old text", memory_hash="h-old"))
    store.upsert_unique("t1", [gone], EMBEDDER.embed_documents([gone.text]))  # holds its content
    store.delete("t1", [gone.id])
    put(store, "t1", moved.model_copy(update={"text": "new text", "memory_hash": "h-new"}))
    revived, reused = rec("was deleted", memory_hash="h-gone"), rec("old text", memory_hash="h-old")
    kept = store.upsert_unique("t1", [revived, reused], EMBEDDER.embed_documents([revived.text, reused.text]))
    assert kept == [revived.id, reused.id]


def test_concurrent_creates_of_one_content_store_it_once(store: LongTermStore) -> None:
    # Given 20 writers with the same text under 20 ids, released together
    records = [rec("the same fact, told twenty times", memory_hash="h-same") for _ in range(20)]
    vector = EMBEDDER.embed_documents([records[0].text])
    barrier = threading.Barrier(len(records))
    answers: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def create(record: MemoryRecord) -> None:
        try:
            barrier.wait(timeout=10)
            answers[record.id] = store.upsert_unique("t1", [record], vector)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then exactly one record is stored, and every writer was told its id
    assert errors == []
    page, total = search(store, "t1", "list")
    assert total == 1
    assert {ids[0] for ids in answers.values()} == {page[0].id}
    assert len(answers) == 20


# -- both stores, one input -----------------------------------------------------------------------------

PARITY_RECORDS = [
    *ANIMALS,
    "the quokka smiles at hikers on rottnest island",
    "marsupial mothers carry their young in a pouch",
    "we ate pizza after hiking to the alpine hut",
    "my brother hikes and climbs in the swiss mountains every july",
    "a café in zürich serves the best rösti",
    "mountain weather changes quickly in the alps",
    "she donated generously to the museum",
]
# (mode, text, extra SearchQuery fields): every mode, filters, phrases, offsets, thresholds, a time window
PARITY_QUERIES: list[tuple[str, str | None, dict[str, Any]]] = [
    ("list", None, {}),
    ("semantic", "hiking in the swiss mountains", {}),
    ("semantic", "marsupials of australia", {"distance_threshold": 0.9}),
    ("keyword", "hiking marsupial", {}),
    ("keyword", "mountains alps hut", {"offset": 2, "limit": 3}),
    ('keyword', '"swiss mountains" hikes', {}),
    ("keyword", "cafe zurich rosti", {}),
    ("keyword", "generation", {}),  # one stemmer on both: Porter (not Porter2) stems "generously" alike
    ("keyword", "quokka pizza", {"filters": SearchFilters(namespace=TagFilter(eq="odd"))}),
    ("hybrid", "quokka marsupial", {"alpha": 0.5}),
    ("hybrid", "hiking in the mountains", {"alpha": 0.3, "offset": 1, "limit": 4}),
    ("hybrid", "where did we go hiking in July 2023", {"time_window": time_reference("in July 2023")}),
    ("hybrid", "pizza olives", {"distance_threshold": 0.8, "filters": SearchFilters(namespace=TagFilter(ne="odd"))}),
]


def _parity_corpus() -> tuple[list[MemoryRecord], list[str | None]]:
    records = [
        rec(text, id=f"p{i:02d}", namespace="odd" if i % 2 else "even", created_at=day(i),
            event_date=datetime(2023, 7, 3 + i, tzinfo=UTC) if i % 3 == 0 else None)
        for i, text in enumerate(PARITY_RECORDS)
    ]
    # Some records have a context and some not, as in a tenant with both message and semantic memories
    contexts: list[str | None] = [f"Ana: what did you do on day {i}? Ben: guess" if i % 2 else None
                                  for i in range(len(records))]
    contexts[4] = "Ana: where do you go hiking? Ben: the alps"
    return records, contexts


@pytest.mark.opensearch
@pytest.mark.parametrize("engine", ["lucene", "faiss"])
def test_the_same_input_ranks_the_same_on_both_stores(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given the same records, vectors and contexts in a SQLite store and an OpenSearch index
    sqlite_store = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    index = f"test-parity-{uuid.uuid4().hex[:12]}"
    opensearch_store = _opensearch_store(request.getfixturevalue("opensearch_node_url"), index, engine)
    records, contexts = _parity_corpus()
    vectors = EMBEDDER.embed_documents([r.text for r in records])
    try:
        for one in (sqlite_store, opensearch_store):
            one.ensure_ready(DIMS)
            one.upsert("t1", records, vectors, contexts)
        # When each query runs on both
        for mode, text, extra in PARITY_QUERIES:
            extra = {"limit": 20, **extra}
            a_page, a_total = search(sqlite_store, "t1", mode, text, **extra)
            b_page, b_total = search(opensearch_store, "t1", mode, text, **extra)
            # Then both return the same records in the same order, with the same scores and totals
            assert a_total == b_total, (mode, text)
            assert [r.id for r in a_page] == [r.id for r in b_page], (mode, text)
            for a, b in zip(a_page, b_page, strict=True):
                assert (a.score_type, a.dist) == (b.score_type, pytest.approx(b.dist, abs=2e-3)), (mode, text, a.id)
    finally:
        sqlite_store.close()
        delete_opensearch_indexes(opensearch_store, index)


# -- OpenSearch only ------------------------------------------------------------------------------------


@pytest.mark.opensearch
def test_opensearch_engine_none_lets_the_cluster_choose_and_still_scores_inner_product(
    opensearch_node_url: str,
) -> None:
    # OPENSEARCH_ENGINE=none: no `engine` in the mapping (for collections that refuse one)
    index = f"test-ltm-{uuid.uuid4().hex[:12]}"
    store = _opensearch_store(opensearch_node_url, index, "none")
    try:
        from agent_memory.adapters.opensearch_long_term import tenant_index_name

        store.ensure_ready(DIMS)
        a = [1.0] + [0.0] * (DIMS - 1)
        mean = [0.5, 0.5] + [0.0] * (DIMS - 2)
        store.upsert("t1", [rec("mean"), rec("same")], [mean, a])
        # the cluster fills in its default (faiss on 2.19), and a second start accepts what it chose
        t1_index = tenant_index_name(index, "t1")
        mapping = store._client.indices.get_mapping(index=t1_index)[t1_index]["mappings"]
        method = mapping["properties"]["vector"]["method"]
        assert (method["engine"], method["space_type"]) == ("faiss", "innerproduct")
        store = _opensearch_store(opensearch_node_url, index, "none")
        store.ensure_ready(DIMS)
        page, _ = store.search(SearchQuery(tenant="t1", mode="semantic", vector=a, limit=2))
        assert [(r.text, round(r.dist, 6)) for r in page] == [("same", 0.0), ("mean", 0.5)]
    finally:
        delete_opensearch_indexes(store, index)


# -- SQLite only ----------------------------------------------------------------------------------------


def test_sqlite_dimension_is_remembered_by_the_file(tmp_path: Path) -> None:
    first = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    first.ensure_ready(384)
    first.close()
    second = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    with pytest.raises(ConfigurationError, match="384-dim vectors but the embedder produces 1536"):
        second.ensure_ready(1536)


def test_sqlite_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    # Given two stores (as two processes would) on one file, one with a warm vector cache
    writer = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    reader = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    writer.ensure_ready(DIMS)
    put(writer, "t1", rec("first memory about owls"))
    assert search(reader, "t1", "semantic", "owls")[1] == 1
    # When the other store writes
    (later,) = put(writer, "t1", rec("second memory about owls"))
    # Then the cached vectors are not stale
    page, total = search(reader, "t1", "semantic", "second memory about owls")
    assert (page[0].id, total) == (later.id, 2)
    writer.delete("t1", [later.id])
    assert search(reader, "t1", "semantic", "owls")[1] == 1


def test_sqlite_warm_vector_cache_follows_writes_and_deletes(tmp_path: Path) -> None:
    # Given a store whose vector cache is warm
    warm = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    warm.ensure_ready(DIMS)
    records = put(warm, "t1", *(rec(f"note {i} on birds") for i in range(40)))
    search(warm, "t1", "semantic", "birds")
    # When records are added, replaced and deleted (enough to compact the cache)
    put(warm, "t1", *(rec(f"extra {i} on fish") for i in range(5)))
    put(warm, "t1", records[0].model_copy(update={"text": "replaced note on fish"}))
    warm.delete("t1", [r.id for r in records[10:30]])
    put(warm, "t1", rec("late note on birds and fish"))
    # Then its answers equal those of a store that reads everything from the file
    cold = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    for text in ("birds", "fish", "replaced note on fish"):
        expected = search(cold, "t1", "semantic", text, limit=50)
        assert search(warm, "t1", "semantic", text, limit=50) == expected
        assert expected[1] == 26


def test_sqlite_is_safe_under_concurrent_threads(tmp_path: Path) -> None:
    store = SqliteLongTermStore(tmp_path / "ltm.sqlite3")
    store.ensure_ready(DIMS)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                put(store, "t1", rec(f"worker {worker} note {i}"))
                search(store, "t1", "hybrid", f"worker {worker} note")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert search(store, "t1", "list")[1] == 80
