"""The official agent_memory_client 0.14.0 drives long-term memory on a live server (issue 3).

Every test runs for the three `backend` params of the `live_server` fixture (SQLite; Redis; Redis with
long-term memory on the OpenSearch node). The embedder is the deterministic FakeEmbedder (texts that
share words are close; the same text is at distance 0) and there is no LLM, so nothing is merged or
rewritten behind the tests' back.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from agent_memory_client import (
    ForgetPolicy,
    MemoryAPIClient,
    MemoryNotFoundError,
    MemoryServerError,
)
from agent_memory_client.filters import (
    CreatedAt,
    Entities,
    LastAccessed,
    MemoryType,
    Namespace,
    SessionId,
    Topics,
    UserId,
)
from agent_memory_client.models import ClientMemoryRecord, RecencyConfig, WorkingMemory

from tests.fixtures.app import WITH_OPENSEARCH, LiveServer
from tests.integration._client import ago, connect, ids, message, prompt_texts, record

pytestmark = pytest.mark.filterwarnings("ignore:get_working_memory is deprecated:DeprecationWarning")

SUMMARY_HEADER = "## A summary of the conversation so far:\n"
MEMORIES_HEADER = "## Long term memories related to the user's query\n "
NO_MEMORIES = MEMORIES_HEADER + "No relevant long-term memories found."



@pytest.fixture(params=WITH_OPENSEARCH)
def backend(request: pytest.FixtureRequest) -> str:
    """Working memory on SQLite, on Redis, and on Redis with long-term memory on the OpenSearch node."""
    return str(request.param)


@pytest.fixture
async def client(live_server: LiveServer):
    async with connect(live_server) as c:
        yield c


async def _create(client: MemoryAPIClient, *records: ClientMemoryRecord) -> list[ClientMemoryRecord]:
    ack = await client.create_long_term_memory(list(records))
    assert ack.status == "ok"
    return list(records)


async def _found(client: MemoryAPIClient, text: str, **kw: Any) -> tuple[set[str], int]:
    results = await client.search_long_term_memory(text=text, limit=kw.pop("limit", 50), **kw)
    return ids(results.memories), results.total


# --- create / search / get / edit / delete ----------------------------------------------------------


async def test_created_memory_is_found_by_the_very_next_search(client: MemoryAPIClient) -> None:
    # Given a memory created through the client (read-your-writes: no waiting)
    [tea] = await _create(
        client, record("User likes green tea in the morning", namespace="ns", user_id="u1", topics=["drinks"])
    )
    await _create(client, record("The office printer is on the third floor", namespace="ns", user_id="u1"))
    # When the next request searches for it
    results = await client.search_long_term_memory(text="green tea in the morning", namespace=Namespace(eq="ns"))
    # Then it comes first, with its fields, a distance and the true total
    assert results.total == 2
    best = results.memories[0]
    assert best.id == tea.id and best.text == tea.text
    assert (best.namespace, best.user_id, best.topics) == ("ns", "u1", ["drinks"])
    assert 0 <= best.dist < results.memories[1].dist


async def test_a_message_is_found_through_the_question_before_it(client: MemoryAPIClient) -> None:
    # Given the same answer stored twice as message memories: once right after its question in a
    # session, once in a session of its own
    question = record("Nate: What genre is your screenplay?", memory_type="message", session_id="s1", namespace="c")
    answered = record("Joanna: A mix of drama and romance!", memory_type="message", session_id="s1", namespace="c")
    alone = record("Joanna: A mix of drama and romance!", memory_type="message", session_id="s2", namespace="c")
    await _create(client, question, answered)
    await _create(client, alone)
    # When searching with the question's words (the 0.14 client searches semantically)
    results = await client.search_long_term_memory(text="screenplay genre", namespace=Namespace(eq="c"), limit=3)
    # Then the answer indexed with its question ranks above the same text without one, text unchanged
    order = [m.id for m in results.memories]
    assert order.index(answered.id) < order.index(alone.id)
    found = {m.id: m for m in results.memories}
    assert found[answered.id].text == found[alone.id].text == "Joanna: A mix of drama and romance!"
    assert found[answered.id].dist < found[alone.id].dist


async def test_get_long_term_memory_round_trips_the_record(client: MemoryAPIClient) -> None:
    # Given a fully specified episodic record
    event = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    [trip] = await _create(
        client,
        record(
            "User flew to Lisbon for a conference",
            memory_type="episodic",
            namespace="ns",
            user_id="u1",
            session_id="s1",
            topics=["travel", "work"],
            entities=["Lisbon"],
            event_date=event,
        ),
    )
    # When it is fetched by id
    got = await client.get_long_term_memory(trip.id)
    # Then every field the client sent comes back, and the server set persisted_at
    assert (got.id, got.text, got.memory_type.value) == (trip.id, trip.text, "episodic")
    assert (got.namespace, got.user_id, got.session_id) == ("ns", "u1", "s1")
    assert (got.topics, got.entities, got.event_date) == (["travel", "work"], ["Lisbon"], event)
    assert got.persisted_at is not None
    # And an unknown id is a MemoryNotFoundError
    with pytest.raises(MemoryNotFoundError):
        await client.get_long_term_memory("01NOSUCHMEMORY0000000000000")


async def test_edit_long_term_memory_is_visible_to_get_and_search(client: MemoryAPIClient) -> None:
    # Given a record
    [pet] = await _create(client, record("User has a cat named Tom", namespace="ns", topics=["pets"]))
    before = await client.get_long_term_memory(pet.id)
    # When the client edits its text, topics and type
    edited = await client.edit_long_term_memory(
        pet.id, {"text": "User has a dog named Rex", "topics": ["pets", "dogs"], "memory_type": "episodic"}
    )
    # Then the answer, a later get and a search by the new text all show the edit
    assert (edited.text, edited.topics, edited.memory_type.value) == (
        "User has a dog named Rex",
        ["pets", "dogs"],
        "episodic",
    )
    got = await client.get_long_term_memory(pet.id)
    assert got.text == "User has a dog named Rex" and got.namespace == "ns"
    assert got.updated_at > before.updated_at
    results = await client.search_long_term_memory(text="User has a dog named Rex", distance_threshold=0.01)
    assert [m.id for m in results.memories] == [pet.id]
    # And the old text no longer matches exactly (the record was re-embedded)
    assert (await client.search_long_term_memory(text="User has a cat named Tom", distance_threshold=0.01)).total == 0
    # And an edit with no editable field is a 400
    with pytest.raises(MemoryServerError) as caught:
        await client.edit_long_term_memory(pet.id, {"unknown": 1})
    assert caught.value.status_code == 400


async def test_delete_long_term_memories_reports_the_count(client: MemoryAPIClient) -> None:
    # Given three records
    a, b, c = await _create(client, record("alpha fact"), record("beta fact"), record("gamma fact"))
    # When two of them and an unknown id are deleted
    ack = await client.delete_long_term_memories([a.id, b.id, "01UNKNOWN000000000000000000"])
    # Then the status counts only what existed, and only the third remains
    assert ack.status == "ok, deleted 2 memories"
    for gone in (a, b):
        with pytest.raises(MemoryNotFoundError):
            await client.get_long_term_memory(gone.id)
    assert await _found(client, "fact") == ({c.id}, 1)


async def test_create_drops_exact_duplicates_unless_deduplicate_is_false(client: MemoryAPIClient) -> None:
    # Given a record
    [first] = await _create(client, record("User is allergic to peanuts", namespace="ns", user_id="u1"))
    # When the same memory is created again under a new id (deduplicate defaults to true)
    await _create(client, record("User is allergic to peanuts", namespace="ns", user_id="u1"))
    # Then only the first is stored
    assert await _found(client, "", namespace=Namespace(eq="ns")) == ({first.id}, 1)
    # And re-creating with the same id overwrites in place
    await client.create_long_term_memory(
        [record("User is allergic to peanuts", id=first.id, namespace="ns", user_id="u1", topics=["health"])]
    )
    assert (await client.get_long_term_memory(first.id)).topics == ["health"]
    # And with deduplicate=False the copy is kept
    copy = record("User is allergic to peanuts", namespace="ns", user_id="u1")
    await client.create_long_term_memory([copy], deduplicate=False)
    assert await _found(client, "", namespace=Namespace(eq="ns")) == ({first.id, copy.id}, 2)


async def test_out_of_range_search_limit_is_a_422_server_error(client: MemoryAPIClient) -> None:
    # When the client asks for more results than one page may hold
    with pytest.raises(MemoryServerError) as caught:
        await client.search_long_term_memory(text="anything", limit=1000)
    # Then the validation error surfaces with its status code
    assert caught.value.status_code == 422


# --- filters --------------------------------------------------------------------------------------

OLD_ACCESS = datetime(2024, 1, 10, tzinfo=UTC)


def _filter_corpus() -> dict[str, ClientMemoryRecord]:
    """Five records spread over sessions, namespaces, users, topics, entities, dates and types."""
    return {
        "r1": record(
            "hiking trip in the mountains",
            memory_type="episodic",
            session_id="s1",
            user_id="u1",
            namespace="n1",
            topics=["travel", "outdoors"],
            entities=["Alps"],
            created_at=datetime(2024, 1, 10, tzinfo=UTC),
            last_accessed=OLD_ACCESS,
        ),
        "r2": record(
            "cooking a pasta recipe",
            session_id="s1",
            user_id="u1",
            namespace="n1",
            topics=["food"],
            entities=["Italy"],
            created_at=datetime(2024, 3, 15, tzinfo=UTC),
        ),
        "r3": record(
            "travel to Italy for the food",
            session_id="s2",
            user_id="u2",
            namespace="n1",
            topics=["travel", "food"],
            entities=["Italy", "Rome"],
            created_at=datetime(2024, 6, 1, tzinfo=UTC),
        ),
        "r4": record(
            "reading a long novel",
            memory_type="message",
            session_id="s2",
            user_id="u2",
            namespace="n2",
            topics=["books"],
            created_at=datetime(2024, 9, 1, 12, 30, tzinfo=UTC),
            last_accessed=datetime(2024, 9, 1, tzinfo=UTC),
        ),
        "r5": record(
            "camping gear for the outdoors",
            memory_type="episodic",
            session_id="s3",
            user_id="u3",
            namespace="n2",
            topics=["outdoors"],
            entities=["REI"],
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        ),
    }


FILTER_CASES: dict[str, list[tuple[dict[str, Any], set[str]]]] = {
    "session_id": [
        ({"session_id": SessionId(eq="s1")}, {"r1", "r2"}),
        ({"session_id": SessionId(in_=["s1", "s3"])}, {"r1", "r2", "r5"}),
        ({"session_id": SessionId(not_eq="s1")}, {"r3", "r4", "r5"}),
        ({"session_id": SessionId(not_in=["s1", "s2"])}, {"r5"}),
    ],
    "namespace": [
        ({"namespace": Namespace(eq="n2")}, {"r4", "r5"}),
        ({"namespace": Namespace(in_=["n1"])}, {"r1", "r2", "r3"}),
        ({"namespace": Namespace(not_eq="n1")}, {"r4", "r5"}),
        ({"namespace": Namespace(not_in=["n1", "n2"])}, set()),
    ],
    "user_id": [
        ({"user_id": UserId(eq="u2")}, {"r3", "r4"}),
        ({"user_id": UserId(in_=["u1", "u3"])}, {"r1", "r2", "r5"}),
        ({"user_id": UserId(not_eq="u1")}, {"r3", "r4", "r5"}),
        ({"user_id": UserId(not_in=["u1", "u2"])}, {"r5"}),
        ({"user_id": {"eq": "u3"}}, {"r5"}),  # the client passes a dict user_id through as-is
    ],
    "topics": [
        ({"topics": Topics(any=["outdoors", "books"])}, {"r1", "r4", "r5"}),
        ({"topics": Topics(all=["travel", "food"])}, {"r3"}),
        ({"topics": Topics(none=["travel"])}, {"r2", "r4", "r5"}),
    ],
    "entities": [
        ({"entities": Entities(any=["Italy", "REI"])}, {"r2", "r3", "r5"}),
        ({"entities": Entities(all=["Italy", "Rome"])}, {"r3"}),
        ({"entities": Entities(none=["Italy"])}, {"r1", "r4", "r5"}),
    ],
    "created_at": [
        (
            {"created_at": CreatedAt(gte=datetime(2024, 3, 1, tzinfo=UTC), lte=datetime(2024, 7, 1, tzinfo=UTC))},
            {"r2", "r3"},
        ),
        ({"created_at": CreatedAt(gte=datetime(2024, 6, 1, tzinfo=UTC))}, {"r3", "r4", "r5"}),
        ({"created_at": CreatedAt(lte=datetime(2024, 3, 15, tzinfo=UTC))}, {"r1", "r2"}),
        ({"created_at": CreatedAt(eq=datetime(2024, 9, 1, 12, 30, tzinfo=UTC))}, {"r4"}),
    ],
    "last_accessed": [
        ({"last_accessed": LastAccessed(lte=datetime(2025, 1, 1, tzinfo=UTC))}, {"r1", "r4"}),
        ({"last_accessed": LastAccessed(gte=datetime(2024, 6, 1, tzinfo=UTC))}, {"r2", "r3", "r4", "r5"}),
        ({"last_accessed": LastAccessed(eq=OLD_ACCESS)}, {"r1"}),
    ],
    "memory_type": [
        ({"memory_type": MemoryType(eq="episodic")}, {"r1", "r5"}),
        ({"memory_type": MemoryType(in_=["semantic", "message"])}, {"r2", "r3", "r4"}),
        ({"memory_type": MemoryType(not_eq="episodic")}, {"r2", "r3", "r4"}),
        ({"memory_type": MemoryType(not_in=["episodic", "semantic"])}, {"r4"}),
    ],
    "combined": [
        ({"user_id": UserId(eq="u1"), "topics": Topics(any=["travel"])}, {"r1"}),
        (
            {
                "namespace": Namespace(eq="n1"),
                "entities": Entities(any=["Italy"]),
                "created_at": CreatedAt(gte=datetime(2024, 4, 1, tzinfo=UTC)),
            },
            {"r3"},
        ),
        ({"namespace": Namespace(eq="n2"), "memory_type": MemoryType(eq="semantic")}, set()),
    ],
}


@pytest.mark.parametrize("family", list(FILTER_CASES))
async def test_search_filters_return_exact_result_sets(client: MemoryAPIClient, family: str) -> None:
    corpus = _filter_corpus()
    by_id = {r.id: name for name, r in corpus.items()}
    for filters, expected in FILTER_CASES[family]:
        for text in ("", "travel food outdoors books"):  # a filter-only listing and a semantic search
            # Given the corpus as created (re-created each time: a search refreshes last_accessed)
            await _create(client, *corpus.values())
            # When the client searches with the filter
            found, total = await _found(client, text, **filters)
            # Then exactly the matching records come back, and the total counts exactly them
            assert {by_id[i] for i in found} == expected, (family, filters, repr(text))
            assert total == len(expected), (family, filters, repr(text))


async def test_distance_threshold_keeps_only_close_records(client: MemoryAPIClient) -> None:
    # Given three records with disjoint vocabularies
    tea, _, _ = await _create(
        client, record("green tea with lemon"), record("black coffee at noon"), record("red wine with dinner")
    )
    # When searching with a tight threshold, only the identical text is within it
    tight = await client.search_long_term_memory(text="green tea with lemon", distance_threshold=0.01)
    assert [m.id for m in tight.memories] == [tea.id] and tight.total == 1
    assert tight.memories[0].dist <= 0.01
    # And the widest threshold (cosine distance ≤ 2) admits everything
    assert (await client.search_long_term_memory(text="green tea with lemon", distance_threshold=2.0)).total == 3
    # And every result honours the threshold asked for
    mid = await client.search_long_term_memory(text="green tea with lemon", distance_threshold=0.9)
    assert all(m.dist <= 0.9 for m in mid.memories) and tea.id in ids(mid.memories)


async def test_recency_config_is_accepted_and_changes_the_ranking(client: MemoryAPIClient) -> None:
    # Given an old record that matches the query exactly and a new one that matches it loosely
    old, new = await _create(
        client,
        record("quarterly budget review meeting notes", created_at=datetime(2020, 1, 1, tzinfo=UTC)),
        record("budget spreadsheet"),
    )
    query = "quarterly budget review meeting notes"
    # When recency boosting is off, the ranking is by distance alone
    plain = await client.search_long_term_memory(text=query, recency=RecencyConfig(recency_boost=False))
    assert [m.id for m in plain.memories] == [old.id, new.id]
    # When only novelty counts, the newer record ranks first; dist is left as the store computed it
    novelty = RecencyConfig(
        recency_boost=True,
        semantic_weight=0.0,
        recency_weight=1.0,
        freshness_weight=0.0,
        novelty_weight=1.0,
        half_life_last_access_days=7.0,
        half_life_created_days=30.0,
    )
    boosted = await client.search_long_term_memory(text=query, recency=novelty)
    assert [m.id for m in boosted.memories] == [new.id, old.id]
    assert {m.id: m.dist for m in boosted.memories} == {m.id: m.dist for m in plain.memories}
    # And server_side_recency (a Redis-only option upstream) is accepted
    server_side = await client.search_long_term_memory(text=query, recency=RecencyConfig(server_side_recency=True))
    assert ids(server_side.memories) == {old.id, new.id}


@pytest.mark.parametrize("text", ["", "pagination note"])
async def test_pagination_with_limit_offset_total_and_next_offset(client: MemoryAPIClient, text: str) -> None:
    # Given 23 records
    created = await _create(client, *[record(f"pagination note number {i} topic{i}") for i in range(23)])
    # When paging through them ten at a time
    pages = [await client.search_long_term_memory(text=text, limit=10, offset=o) for o in (0, 10, 20)]
    # Then the pages are 10, 10 and 3 long, disjoint, cover everything, and carry the true total
    assert [len(p.memories) for p in pages] == [10, 10, 3]
    assert [p.total for p in pages] == [23, 23, 23]
    assert [p.next_offset for p in pages] == [10, 20, None]
    seen = [m.id for p in pages for m in p.memories]
    assert len(set(seen)) == 23 and set(seen) == ids(created)
    # And an offset past the end is an empty page
    beyond = await client.search_long_term_memory(text=text, limit=10, offset=30)
    assert beyond.memories == [] and beyond.next_offset is None


@pytest.mark.parametrize("text", ["", "pagination note"])
async def test_search_all_long_term_memories_iterates_every_page(client: MemoryAPIClient, text: str) -> None:
    # Given 23 records in one namespace and some in another
    created = await _create(client, *[record(f"pagination note {i} item{i}", namespace="p") for i in range(23)])
    await _create(client, record("pagination note elsewhere", namespace="other"))
    # When the client auto-paginates with batches of ten
    seen = [m.id async for m in client.search_all_long_term_memories(text=text, namespace={"eq": "p"}, batch_size=10)]
    # Then every record of the namespace is yielded exactly once
    assert len(seen) == 23 and set(seen) == ids(created)


# --- namespace isolation --------------------------------------------------------------------------


async def test_search_never_widens_beyond_the_namespace_filter(live_server: LiveServer) -> None:
    async with connect(live_server) as client, connect(live_server, default_namespace="tenant-b") as tenant_b:
        # Given records only in namespace A (B is empty)
        await _create(
            client,
            record("the secret apple pie recipe", namespace="tenant-a", topics=["food"]),
            record("apple orchard visit", namespace="tenant-a", topics=["food"]),
        )
        # When B searches for exactly that text, filtered to its namespace
        results = await client.search_long_term_memory(
            text="the secret apple pie recipe", namespace=Namespace(eq="tenant-b")
        )
        # Then nothing from A leaks in (AMS's soft-filter fallback would drop the namespace filter)
        assert results.memories == [] and results.total == 0
        assert await _found(client, "", namespace=Namespace(eq="tenant-b")) == (set(), 0)
        # And a client whose default namespace is B sees nothing either, by search or prompt
        assert (await tenant_b.search_long_term_memory(text="apple")).memories == []
        assert [m async for m in tenant_b.search_all_long_term_memories(text="", batch_size=10)] == []
        hydrated = await tenant_b.hydrate_memory_prompt(query="apple pie")
        assert prompt_texts(hydrated) == [("system", NO_MEMORIES), ("user", "apple pie")]
        # And once B has a record of its own, B's searches return only it
        [own] = await _create(tenant_b, record("banana bread notes"))
        assert own.namespace == "tenant-b"
        assert await _found(tenant_b, "the secret apple pie recipe") == ({own.id}, 1)
        # And a topic filter that matches nothing is not dropped either
        assert await _found(
            client, "apple", namespace=Namespace(eq="tenant-a"), topics=Topics(any=["no-such-topic"])
        ) == (set(), 0)


# --- memory prompt --------------------------------------------------------------------------------


async def _prompt_fixture(client: MemoryAPIClient) -> tuple[list[Any], ClientMemoryRecord]:
    messages = [
        message("user", "Where should I stay in Rome?", minutes_ago=3),
        message("assistant", "Trastevere is charming.", minutes_ago=2),
        message("tool", "hotel search returned three results", minutes_ago=1),
    ]
    await client.put_working_memory(
        "trip",
        WorkingMemory(
            session_id="trip",
            namespace="travel",
            user_id="alice",
            messages=messages,
            context="The user is planning a trip to Rome.",
        ),
    )
    [mine] = await _create(client, record("alice loves Italian food and pasta", namespace="travel", user_id="alice"))
    await _create(
        client,
        record("bob loves Italian food", namespace="travel", user_id="bob"),
        record("alice loves Italian food", namespace="elsewhere", user_id="alice"),
    )
    return messages, mine


async def test_memory_prompt_orders_summary_session_long_term_and_query(client: MemoryAPIClient) -> None:
    # Given a session with a summary and messages, and long-term records of several users/namespaces
    _, mine = await _prompt_fixture(client)
    query = "What Italian food should I try?"
    # When the client builds a prompt from the session plus a long-term search (window sent as a string)
    prompt = await client.memory_prompt(
        query=query,
        session_id="trip",
        namespace="travel",
        user_id="alice",
        context_window_max=4000,
        long_term_search={"limit": 5},
    )
    # Then: summary (system), session messages (non-user roles become assistant), memories (system), query
    assert prompt_texts(prompt) == [
        ("system", SUMMARY_HEADER + "The user is planning a trip to Rome."),
        ("user", "Where should I stay in Rome?"),
        ("assistant", "Trastevere is charming."),
        ("assistant", "hotel search returned three results"),
        ("system", MEMORIES_HEADER + f"- {mine.text} (ID: {mine.id})"),
        ("user", query),
    ]
    # And only the session user's records in the namespace asked for are used
    assert [m["id"] for m in prompt["long_term_memories"]] == [mine.id]


async def test_memory_prompt_truncates_session_messages_to_the_window(client: MemoryAPIClient) -> None:
    # Given the same session
    await _prompt_fixture(client)
    # When the window is too small for all messages
    prompt = await client.memory_prompt(
        query="hi", session_id="trip", namespace="travel", user_id="alice", context_window_max=12
    )
    # Then the oldest messages are left out, the newest kept; with no long-term search there is no such message
    texts = prompt_texts(prompt)
    assert texts[0] == ("system", SUMMARY_HEADER + "The user is planning a trip to Rome.")
    assert texts[-1] == ("user", "hi")
    session_part = texts[1:-1]
    assert 1 <= len(session_part) < 3
    assert session_part[-1] == ("assistant", "hotel search returned three results")
    assert prompt.get("long_term_memories") is None


async def test_memory_prompt_without_context_has_no_summary_message(client: MemoryAPIClient) -> None:
    # Given a session without a context summary and no long-term records
    await client.put_working_memory("plain", WorkingMemory(session_id="plain", messages=[message("user", "hello")]))
    # When a prompt is built with a long-term search
    prompt = await client.memory_prompt(query="what now?", session_id="plain", long_term_search={"limit": 3})
    # Then the session messages come first and the search says it found nothing
    assert prompt_texts(prompt) == [("user", "hello"), ("system", NO_MEMORIES), ("user", "what now?")]
    # And a missing session is treated as empty, not created
    missing = await client.memory_prompt(query="q", session_id="nope", long_term_search={"limit": 3})
    assert prompt_texts(missing) == [("system", NO_MEMORIES), ("user", "q")]
    assert "nope" not in (await client.list_sessions()).sessions


async def test_hydrate_memory_prompt_uses_only_long_term_search(client: MemoryAPIClient) -> None:
    # Given records in two namespaces
    [food] = await _create(
        client, record("alice loves Italian food", namespace="travel", user_id="alice", topics=["food"])
    )
    await _create(client, record("alice loves Italian food", namespace="elsewhere", user_id="alice", topics=["food"]))
    # When a prompt is hydrated with filters only
    prompt = await client.hydrate_memory_prompt(
        query="Italian food?", namespace={"eq": "travel"}, user_id={"eq": "alice"}, topics={"any": ["food"]}, limit=5
    )
    # Then it holds the matching memories and the query, nothing else
    assert prompt_texts(prompt) == [
        ("system", MEMORIES_HEADER + f"- {food.text} (ID: {food.id})"),
        ("user", "Italian food?"),
    ]
    # And a filter matching nothing says so
    empty = await client.hydrate_memory_prompt(
        query="Italian food?", namespace={"eq": "travel"}, topics={"any": ["sports"]}
    )
    assert prompt_texts(empty) == [("system", NO_MEMORIES), ("user", "Italian food?")]
    assert empty.get("long_term_memories") is None


# --- forgetting -----------------------------------------------------------------------------------


async def _forget_corpus(client: MemoryAPIClient) -> tuple[ClientMemoryRecord, ClientMemoryRecord, ClientMemoryRecord]:
    old1, old2, fresh = await _create(
        client,
        record("old fact one", namespace="f", created_at=ago(days=400)),
        record("old fact two", namespace="f", created_at=ago(days=400)),
        record("fresh fact", namespace="f"),
    )
    await _create(client, record("old fact elsewhere", namespace="other", created_at=ago(days=400)))
    return old1, old2, fresh


async def test_forget_with_client_default_dry_run_false_deletes_nothing(client: MemoryAPIClient) -> None:
    # Given two old records and a fresh one in namespace "f"
    old1, old2, fresh = await _forget_corpus(client)
    # When the client calls forget with its default dry_run=False: 0.14.0 omits the parameter,
    # so the server default (dry_run=true, as in AMS) applies
    result = await client.forget_long_term_memories(ForgetPolicy(max_age_days=30), namespace="f")
    # Then the answer is a dry run naming the old records of that namespace, and nothing is deleted
    assert result.dry_run is True
    assert (result.scanned, result.deleted, set(result.deleted_ids)) == (3, 2, {old1.id, old2.id})
    assert await _found(client, "", namespace=Namespace(eq="f")) == ({old1.id, old2.id, fresh.id}, 3)


async def test_forget_dry_run_true_lists_candidates_and_respects_pinned_ids(client: MemoryAPIClient) -> None:
    # Given two old records and a fresh one
    old1, old2, fresh = await _forget_corpus(client)
    # When an explicit dry run pins one old record
    result = await client.forget_long_term_memories(
        ForgetPolicy(max_age_days=30), namespace="f", dry_run=True, pinned_ids=[old1.id]
    )
    # Then only the unpinned old record is named, and nothing is deleted
    assert result.dry_run is True and result.deleted_ids == [old2.id] and result.deleted == 1
    assert await _found(client, "", namespace=Namespace(eq="f")) == ({old1.id, old2.id, fresh.id}, 3)


async def test_forget_deletes_when_dry_run_false_reaches_the_server(client: MemoryAPIClient) -> None:
    # Given two old records and a fresh one
    old1, old2, fresh = await _forget_corpus(client)
    # When dry_run=false is actually sent (client 0.14.0 cannot; the client's own httpx session can)
    response = await client._client.post(
        "/v1/long-term-memory/forget",
        params={"namespace": "f", "dry_run": "false"},
        json={"policy": {"max_age_days": 30}},
    )
    # Then the old records of that namespace are deleted and the rest stay
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is False and set(response.json()["deleted_ids"]) == {old1.id, old2.id}
    assert await _found(client, "", namespace=Namespace(eq="f")) == ({fresh.id}, 1)
    assert (await _found(client, "", namespace=Namespace(eq="other")))[1] == 1


# --- promotion from working memory ----------------------------------------------------------------


async def test_memories_added_to_working_memory_are_promoted_and_searchable(client: MemoryAPIClient) -> None:
    # Given a session stored with a user
    await client.put_working_memory(
        "s1", WorkingMemory(session_id="s1", namespace="ns", user_id="u1", messages=[message("user", "I love sailing")])
    )
    # When the client adds structured memories to the session's working memory (no ids: the client assigns)
    await client.add_memories_to_working_memory(
        "s1",
        [
            ClientMemoryRecord(
                text="User enjoys sailing on weekends", memory_type="semantic", topics=["hobbies"], user_id="u1"
            )
        ],
        namespace="ns",
    )
    # Then the very next search finds it, scoped to the session, namespace and user
    results = await client.search_long_term_memory(
        text="User enjoys sailing on weekends", namespace=Namespace(eq="ns"), distance_threshold=0.01
    )
    [found] = results.memories
    assert (found.session_id, found.namespace, found.user_id, found.topics) == ("s1", "ns", "u1", ["hobbies"])
    # And the working memory marks it persisted, in the same session
    session = await client.get_working_memory("s1", namespace="ns", user_id="u1")
    assert [(m.id, m.persisted_at is not None) for m in session.memories] == [(found.id, True)]
    assert (await client.list_sessions(namespace="ns")).total == 1
    # And adding a second one promotes only the new one (no duplicates)
    await client.add_memories_to_working_memory(
        "s1",
        [ClientMemoryRecord(text="User owns a small boat", memory_type="semantic", user_id="u1")],
        namespace="ns",
    )
    assert (await _found(client, "", session_id=SessionId(eq="s1")))[1] == 2


# --- tools through resolve_function_call ----------------------------------------------------------

# Every tool of get_all_memory_tool_schemas() and the test below that resolves it against the server.
TOOL_TESTS = {
    "search_memory": "test_tool_search_memory",
    "get_or_create_working_memory": "test_tool_get_or_create_working_memory",
    "lazily_create_long_term_memory": "test_tool_lazily_create_long_term_memory",
    "update_working_memory_data": "test_tool_update_working_memory_data",
    "get_long_term_memory": "test_tool_get_long_term_memory",
    "eagerly_create_long_term_memory": "test_tool_eagerly_create_long_term_memory",
    "edit_long_term_memory": "test_tool_edit_long_term_memory",
    "delete_long_term_memories": "test_tool_delete_long_term_memories",
    "get_current_datetime": "test_tool_get_current_datetime",
}


def test_every_client_tool_schema_is_resolved_by_a_test() -> None:
    # Given the client's full tool list (OpenAI and Anthropic formats)
    openai_names = MemoryAPIClient.get_all_memory_tool_schemas().names()
    listed = [t["function"]["name"] for t in MemoryAPIClient.get_all_memory_tool_schemas().to_list()]
    anthropic = [t["name"] for t in MemoryAPIClient.get_all_memory_tool_schemas_anthropic().to_list()]
    # Then each tool has a test here that resolves it against the live server (a new tool fails this)
    assert openai_names == listed == anthropic
    assert set(openai_names) == set(TOOL_TESTS), set(openai_names) ^ set(TOOL_TESTS)
    for test_name in TOOL_TESTS.values():
        assert callable(globals().get(test_name)), test_name


async def _resolve(client: MemoryAPIClient, name: str, args: dict[str, Any] | str, **scope: Any) -> Any:
    outcome = await client.resolve_function_call(
        function_name=name, function_arguments=args, session_id=scope.pop("session_id", "chat"), **scope
    )
    assert outcome["success"] is True, outcome["error"]
    assert outcome["function_name"] == name and outcome["error"] is None
    return outcome["result"]


async def test_tool_search_memory(client: MemoryAPIClient) -> None:
    # Given records with topics, types and users
    pasta, _, _ = await _create(
        client,
        record("User loves fresh pasta", topics=["food"], user_id="u1"),
        record("User loves fresh bread", topics=["food"], user_id="u2", memory_type="episodic"),
        record("User loves fresh air", topics=["outdoors"], user_id="u1"),
    )
    # When an LLM searches by topic, type and user (arguments as a JSON string)
    result = await _resolve(
        client,
        "search_memory",
        '{"query": "User loves fresh pasta", "topics": ["food"], "memory_type": "semantic", "user_id": "u1",'
        ' "max_results": 5}',
    )
    # Then exactly the matching record comes back, formatted for the LLM with its id
    [hit] = result["memories"]
    assert (hit["id"], hit["text"], hit["topics"]) == (pasta.id, pasta.text, ["food"])
    assert 0.99 <= hit["relevance_score"] <= 1.0
    assert result["total_found"] == 1 and result["has_more"] is False
    assert result["summary"] == "Found 1 relevant memories for: User loves fresh pasta"
    # And min_relevance (sent as distance_threshold = 1 - min_relevance) filters out the other records
    strict = await _resolve(client, "search_memory", {"query": "User loves fresh pasta", "min_relevance": 0.99})
    assert [m["id"] for m in strict["memories"]] == [pasta.id]


async def test_tool_get_or_create_working_memory(client: MemoryAPIClient) -> None:
    # When the tool runs for a new session, then for the same session again
    first = await _resolve(client, "get_or_create_working_memory", {}, session_id="c1", namespace="ns", user_id="u1")
    second = await _resolve(client, "get_or_create_working_memory", "{}", session_id="c1", namespace="ns", user_id="u1")
    # Then the first creates the session under its scope and the second finds it
    assert (first["created"], second["created"]) == (True, False)
    assert (await client.list_sessions(namespace="ns", user_id="u1")).sessions == ["c1"]


async def test_tool_lazily_create_long_term_memory(client: MemoryAPIClient) -> None:
    # When an LLM stores a memory lazily (through working memory)
    result = await _resolve(
        client,
        "lazily_create_long_term_memory",
        {
            "text": "User's favourite colour is teal",
            "memory_type": "semantic",
            "topics": ["preferences"],
            "entities": ["teal"],
        },
        session_id="c1",
        namespace="ns",
        user_id="u1",
    )
    assert result["success"] is True
    # Then the session's working memory holds it, and the server promoted it: a search finds it, scoped
    session = await client.get_working_memory("c1", namespace="ns")
    assert [m.text for m in session.memories] == ["User's favourite colour is teal"]
    found = await client.search_long_term_memory(
        text="User's favourite colour is teal",
        namespace=Namespace(eq="ns"),
        user_id=UserId(eq="u1"),
        distance_threshold=0.01,
    )
    [hit] = found.memories
    assert (hit.session_id, hit.topics, hit.entities, hit.memory_type.value) == (
        "c1",
        ["preferences"],
        ["teal"],
        "semantic",
    )


async def test_tool_update_working_memory_data(client: MemoryAPIClient) -> None:
    # Given a session with nested data
    await client.put_working_memory(
        "c1", WorkingMemory(session_id="c1", namespace="ns", user_id="u1", data={"trip": {"city": "Rome", "nights": 3}})
    )
    # When the tool deep-merges an update
    result = await _resolve(
        client,
        "update_working_memory_data",
        {"data": {"trip": {"nights": 5}}, "merge_strategy": "deep_merge"},
        session_id="c1",
        namespace="ns",
        user_id="u1",
    )
    # Then the server's data is merged
    assert result["success"] is True
    stored = await client.get_working_memory("c1", namespace="ns", user_id="u1")
    assert stored.data == {"trip": {"city": "Rome", "nights": 5}}


async def test_tool_get_long_term_memory(client: MemoryAPIClient) -> None:
    # Given a record
    [fact] = await _create(client, record("User speaks Portuguese", topics=["languages"]))
    # When the tool fetches it by id
    result = await _resolve(client, "get_long_term_memory", {"memory_id": fact.id})
    # Then the record comes back
    assert (result["memory"].id, result["memory"].text, result["memory"].topics) == (fact.id, fact.text, ["languages"])
    # And an unknown id is reported as a failed call, not an exception
    missing = await client.resolve_function_call(
        function_name="get_long_term_memory",
        function_arguments={"memory_id": "01NOPE0000000000000000000"},
        session_id="chat",
    )
    assert missing["success"] is False and "not found" in (missing["error"] or "").lower()


async def test_tool_eagerly_create_long_term_memory(client: MemoryAPIClient) -> None:
    # When an LLM creates two memories directly, in a namespace and for a user
    result = await _resolve(
        client,
        "eagerly_create_long_term_memory",
        {
            "memories": [
                {
                    "text": "User ran a marathon in Berlin",
                    "memory_type": "episodic",
                    "topics": ["sport"],
                    "entities": ["Berlin"],
                    "event_date": "2024-09-29T09:00:00Z",
                },
                {"text": "User prefers window seats", "memory_type": "semantic", "topics": ["travel"]},
            ]
        },
        namespace="ns",
        user_id="u1",
    )
    # Then both exist straight away, scoped to the namespace and user, with their fields
    assert result == {"status": "ok", "message": "Created 2 memories successfully"}
    found = await client.search_long_term_memory(text="", namespace=Namespace(eq="ns"), user_id=UserId(eq="u1"))
    by_text = {m.text: m for m in found.memories}
    assert set(by_text) == {"User ran a marathon in Berlin", "User prefers window seats"}
    marathon = by_text["User ran a marathon in Berlin"]
    assert (marathon.memory_type.value, marathon.entities) == ("episodic", ["Berlin"])
    assert marathon.event_date == datetime(2024, 9, 29, 9, 0, tzinfo=UTC)


async def test_tool_edit_long_term_memory(client: MemoryAPIClient) -> None:
    # Given a record
    [fact] = await _create(client, record("User lives in Paris", namespace="ns"))
    # When the tool edits its text and topics
    result = await _resolve(
        client, "edit_long_term_memory", {"memory_id": fact.id, "text": "User lives in Lyon", "topics": ["home"]}
    )
    # Then the answer, a get and a search by the new text show the edit
    assert (result["memory"].text, result["memory"].topics) == ("User lives in Lyon", ["home"])
    assert (await client.get_long_term_memory(fact.id)).text == "User lives in Lyon"
    found = await client.search_long_term_memory(text="User lives in Lyon", distance_threshold=0.01)
    assert [m.id for m in found.memories] == [fact.id]


async def test_tool_delete_long_term_memories(client: MemoryAPIClient) -> None:
    # Given three records
    a, b, c = await _create(client, record("fact one"), record("fact two"), record("fact three"))
    # When the tool deletes two
    result = await _resolve(client, "delete_long_term_memories", {"memory_ids": [a.id, b.id]})
    # Then the server reports and performs exactly that
    assert result == {"status": "ok, deleted 2 memories"}
    assert await _found(client, "") == ({c.id}, 1)


async def test_tool_get_current_datetime(client: MemoryAPIClient) -> None:
    # When the tool is resolved (answered by the client itself)
    result = await _resolve(client, "get_current_datetime", {})
    # Then it is a whole-second UTC ISO timestamp matching the unix timestamp
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", result["iso_utc"])
    parsed = datetime.fromisoformat(result["iso_utc"].replace("Z", "+00:00"))
    assert int(parsed.timestamp()) == result["unix_ts"]
    assert result["unix_ts"] > 1_700_000_000 and result["unix_ts"] <= time.time() + 1
