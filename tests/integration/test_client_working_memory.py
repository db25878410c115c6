"""The official agent_memory_client 0.14.0 drives working memory on a live server (issue 2).

Every test runs against the SQLite and the Redis working-memory store, and Redis with long-term memory on
the OpenSearch node (the `backend` params of the `live_server` fixture). The client is used unchanged;
assertions are on what it returns and on what the server stores, read back through the client.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from agent_memory_client import (
    MemoryAPIClient,
    MemoryNotFoundError,
    MemoryServerError,
    create_memory_client,
)
from agent_memory_client.models import MemoryStrategyConfig, WorkingMemory, WorkingMemoryResponse

from tests.fixtures.app import WITH_OPENSEARCH, LiveServer
from tests.integration._client import connect, conversation, message

# get_working_memory is the only plain read the client has; it warns that it is deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:get_working_memory is deprecated:DeprecationWarning")



@pytest.fixture(params=WITH_OPENSEARCH)
def backend(request: pytest.FixtureRequest) -> str:
    """Working memory on SQLite, on Redis, and on Redis with long-term memory on the OpenSearch node."""
    return str(request.param)


@pytest.fixture
async def client(live_server: LiveServer):
    async with connect(live_server) as c:
        yield c


async def _stored(
    client: MemoryAPIClient, session_id: str, *, namespace: str | None = None, user_id: str | None = None, **kw: Any
) -> WorkingMemoryResponse:
    return await client.get_working_memory(session_id, user_id=user_id, namespace=namespace, **kw)


async def _seed(
    client: MemoryAPIClient,
    session_id: str,
    *,
    namespace: str | None = "ns",
    user_id: str | None = "u1",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> WorkingMemoryResponse:
    memory = WorkingMemory(
        session_id=session_id,
        namespace=namespace,
        user_id=user_id,
        messages=fields.pop("messages", [message("user", "hello there", minutes_ago=2)]),
        data=data,
        **fields,
    )
    return await client.put_working_memory(session_id, memory, user_id=user_id)


# --- health ---------------------------------------------------------------------------------------


async def test_health_check_reports_server_time_in_epoch_ms(client: MemoryAPIClient) -> None:
    # When the client checks health
    health = await client.health_check()
    # Then the server time comes back in epoch milliseconds
    assert health.now > 1_700_000_000_000


async def test_create_memory_client_health_checks_and_connects(live_server: LiveServer) -> None:
    # Given the helper that health-checks before returning a client
    client = await create_memory_client(live_server.base_url, timeout=10)
    try:
        # When it is used straight away
        sessions = await client.list_sessions()
        # Then it talks to our server
        assert sessions.sessions == [] and sessions.total == 0
    finally:
        await client.close()


# --- get_or_create / put / get ---------------------------------------------------------------------


async def test_get_or_create_creates_on_404_then_finds_the_session(client: MemoryAPIClient) -> None:
    # Given no session "s1": a plain GET is a 404
    with pytest.raises(MemoryNotFoundError):
        await _stored(client, "s1", namespace="ns", user_id="u1")
    # When the client gets-or-creates it (GET 404 → PUT)
    created, memory = await client.get_or_create_working_memory(
        "s1",
        user_id="u1",
        namespace="ns",
        long_term_memory_strategy=MemoryStrategyConfig(strategy="summary", config={"max_summary_length": 80}),
    )
    # Then it was created empty with the scope and strategy asked for
    assert created is True
    assert (memory.session_id, memory.namespace, memory.user_id) == ("s1", "ns", "u1")
    assert memory.messages == [] and memory.memories == [] and memory.data == {}
    assert memory.long_term_memory_strategy.strategy == "summary"
    # And a second call finds the same stored session instead of creating one
    created_again, again = await client.get_or_create_working_memory("s1", user_id="u1", namespace="ns")
    assert created_again is False
    assert again.long_term_memory_strategy.config == {"max_summary_length": 80}
    assert (await client.list_sessions(namespace="ns", user_id="u1")).sessions == ["s1"]


async def test_put_then_get_round_trips_messages_data_context_and_scope(client: MemoryAPIClient) -> None:
    # Given a session written with messages, nested data, a context summary and a scope
    messages = [
        message("user", "I am planning a trip to Rome", minutes_ago=3),
        message("assistant", "Rome is lovely in spring", minutes_ago=2),
        message("user", "Book me a hotel", minutes_ago=1),
    ]
    data = {"trip": {"city": "Rome", "nights": 3, "tags": ["spring", "hotel"]}, "budget": 1200.5, "ok": True}
    put = await _seed(
        client,
        "trip-1",
        namespace="travel",
        user_id="alice",
        messages=messages,
        data=data,
        context="Earlier: the user asked about flights.",
        ttl_seconds=3600,
    )
    assert put.session_id == "trip-1" and put.context_percentage_total_used is None
    # When it is read back with its scope
    got = await _stored(client, "trip-1", namespace="travel", user_id="alice")
    # Then everything the client sent is there, in order
    assert [(m.id, m.role, m.content) for m in got.messages] == [(m.id, m.role, m.content) for m in messages]
    assert [m.created_at for m in got.messages] == [m.created_at for m in messages]
    assert got.data == data
    assert got.context == "Earlier: the user asked about flights."
    assert (got.namespace, got.user_id, got.ttl_seconds) == ("travel", "alice", 3600)
    # And without percentages, since no model or window was asked for
    assert got.context_percentage_total_used is None
    assert got.context_percentage_until_summarization is None


async def test_put_replaces_the_whole_session(client: MemoryAPIClient) -> None:
    # Given a session with data and two messages
    await _seed(client, "s1", messages=conversation(2), data={"a": 1})
    # When the client PUTs a new document for it
    await _seed(client, "s1", messages=[message("user", "fresh start")], data={"b": 2})
    # Then the old messages and data are gone (PUT semantics)
    got = await _stored(client, "s1", namespace="ns", user_id="u1")
    assert [m.content for m in got.messages] == ["fresh start"]
    assert got.data == {"b": 2}


async def test_get_with_model_name_reports_context_percentages(client: MemoryAPIClient) -> None:
    # Given a session with a few messages
    await _seed(client, "s1", messages=conversation(4))
    # When read with a model name
    got = await _stored(client, "s1", namespace="ns", user_id="u1", model_name="gpt-4o-mini")
    # Then nothing is truncated in a 128k window and both percentages are present and small
    assert len(got.messages) == 4
    used, until = got.context_percentage_total_used, got.context_percentage_until_summarization
    assert used is not None and until is not None
    assert 0 < used < until < 1  # until-summarization is measured against 0.7 × the window


async def test_get_with_small_context_window_keeps_only_the_newest_messages(client: MemoryAPIClient) -> None:
    # Given ten messages of about 25 tokens each
    messages = conversation(10)
    await _seed(client, "s1", messages=messages)
    # When read with a 100-token window
    got = await _stored(client, "s1", namespace="ns", user_id="u1", context_window_max=100)
    # Then the oldest are dropped from the response: what is left is the newest suffix
    kept = [m.id for m in got.messages]
    assert 1 <= len(kept) < 10
    assert kept == [m.id for m in messages][-len(kept) :]
    assert got.context_percentage_total_used is not None and got.context_percentage_total_used <= 100
    assert got.context_percentage_until_summarization is not None
    # And storage is unchanged: a read without a window sees all ten
    assert len((await _stored(client, "s1", namespace="ns", user_id="u1")).messages) == 10


# --- append / set / update helpers -----------------------------------------------------------------


async def test_append_messages_accumulates_and_keeps_ttl_and_strategy(client: MemoryAPIClient) -> None:
    # Given a session with a TTL and a non-default extraction strategy
    strategy = MemoryStrategyConfig(strategy="preferences", config={})
    await _seed(
        client,
        "s1",
        messages=[message("user", "first", minutes_ago=5)],
        ttl_seconds=600,
        long_term_memory_strategy=strategy,
    )
    # When the client appends messages twice (dicts and MemoryMessage objects)
    await client.append_messages_to_working_memory(
        "s1", [{"role": "assistant", "content": "second"}], namespace="ns", user_id="u1"
    )
    response = await client.append_messages_to_working_memory(
        "s1", [message("user", "third")], namespace="ns", user_id="u1", model_name="gpt-4o"
    )
    # Then the PUT answer already has all three, with percentages for the model named
    assert [m.content for m in response.messages] == ["first", "second", "third"]
    assert response.context_percentage_total_used is not None
    # And the stored session accumulated them, keeping the TTL, the strategy and the scope
    got = await _stored(client, "s1", namespace="ns", user_id="u1")
    assert [m.content for m in got.messages] == ["first", "second", "third"]
    assert got.ttl_seconds == 600
    assert got.long_term_memory_strategy.strategy == "preferences"
    assert (got.namespace, got.user_id) == ("ns", "u1")
    assert (await client.list_sessions(namespace="ns")).total == 1


async def test_append_to_a_missing_session_creates_it(client: MemoryAPIClient) -> None:
    # When messages are appended to a session that does not exist
    await client.append_messages_to_working_memory(
        "new", [{"role": "user", "content": "hi"}], namespace="ns", user_id="u9"
    )
    # Then the session exists with that message and scope
    got = await _stored(client, "new", namespace="ns", user_id="u9")
    assert [m.content for m in got.messages] == ["hi"]


async def test_set_working_memory_data_replaces_data_and_keeps_messages(client: MemoryAPIClient) -> None:
    # Given a session with messages, a context and some data
    await _seed(client, "s1", messages=conversation(2), data={"old": 1}, context="summary so far")
    # When the client sets new data (preserve_existing keeps messages)
    await client.set_working_memory_data("s1", {"cart": ["apple", "pear"], "step": 2}, namespace="ns")
    # Then the data is replaced and the messages, context and user are kept in the same session
    got = await _stored(client, "s1", namespace="ns", user_id="u1")
    assert got.data == {"cart": ["apple", "pear"], "step": 2}
    assert len(got.messages) == 2 and got.context == "summary so far"
    page = await client.list_sessions(namespace="ns")
    assert page.sessions == ["s1"] and page.total == 1


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("merge", {"prefs": {"lang": "fr"}, "count": 1, "new": True}),
        ("deep_merge", {"prefs": {"theme": "dark", "lang": "fr", "font": {"size": 14}}, "count": 1, "new": True}),
        ("replace", {"prefs": {"lang": "fr"}, "new": True}),
    ],
)
async def test_update_working_memory_data_strategies(
    client: MemoryAPIClient, strategy: str, expected: dict[str, Any]
) -> None:
    # Given data with a nested dict
    await _seed(client, "s1", data={"prefs": {"theme": "dark", "lang": "en", "font": {"size": 14}}, "count": 1})
    # When the client updates it with the given merge strategy
    response = await client.update_working_memory_data(
        "s1", {"prefs": {"lang": "fr"}, "new": True}, namespace="ns", merge_strategy=strategy, user_id="u1"
    )
    # Then the stored data is the merge the strategy promises
    assert response.data == expected
    got = await _stored(client, "s1", namespace="ns", user_id="u1")
    assert got.data == expected
    assert len(got.messages) == 1  # messages survive a data update


# --- list / delete / TTL ---------------------------------------------------------------------------


async def test_list_sessions_filters_by_namespace_and_user_and_pages(client: MemoryAPIClient) -> None:
    # Given five sessions over two namespaces and two users
    for sid, ns, user in [
        ("a1", "A", "u1"),
        ("a2", "A", "u1"),
        ("a3", "A", "u1"),
        ("a4", "A", "u2"),
        ("b1", "B", "u1"),
    ]:
        await _seed(client, sid, namespace=ns, user_id=user)
    # When listed with filters, the totals count every match
    assert (await client.list_sessions()).total == 5
    assert set((await client.list_sessions(namespace="A")).sessions) == {"a1", "a2", "a3", "a4"}
    assert set((await client.list_sessions(user_id="u1")).sessions) == {"a1", "a2", "a3", "b1"}
    both = await client.list_sessions(namespace="A", user_id="u1")
    assert set(both.sessions) == {"a1", "a2", "a3"} and both.total == 3
    # And limit/offset page through them without overlap, the total staying the true count
    first = await client.list_sessions(namespace="A", limit=2, offset=0)
    second = await client.list_sessions(namespace="A", limit=2, offset=2)
    past_end = await client.list_sessions(namespace="A", limit=2, offset=4)
    assert len(first.sessions) == 2 and len(second.sessions) == 2 and past_end.sessions == []
    assert set(first.sessions) | set(second.sessions) == {"a1", "a2", "a3", "a4"}
    assert first.total == second.total == past_end.total == 4
    assert (await client.list_sessions(namespace="nobody")).total == 0


async def test_delete_working_memory_then_get_is_not_found(client: MemoryAPIClient) -> None:
    # Given two sessions
    await _seed(client, "gone")
    await _seed(client, "kept")
    # When one is deleted (the client sends namespace and user as query params)
    ack = await client.delete_working_memory("gone", namespace="ns", user_id="u1")
    # Then it is acknowledged, gone, and no longer listed; the other is untouched
    assert ack.status == "ok"
    with pytest.raises(MemoryNotFoundError):
        await _stored(client, "gone", namespace="ns", user_id="u1")
    assert (await client.list_sessions(namespace="ns")).sessions == ["kept"]
    # And deleting again is still ok (idempotent)
    assert (await client.delete_working_memory("gone", namespace="ns", user_id="u1")).status == "ok"


async def test_delete_without_user_id_resolves_the_unique_session(client: MemoryAPIClient) -> None:
    # Given a session stored with a user (the client PUTs the user in the body)
    await _seed(client, "s1", namespace="ns", user_id="u1")
    # When it is deleted with the namespace only
    await client.delete_working_memory("s1", namespace="ns")
    # Then it is gone
    assert (await client.list_sessions(namespace="ns")).total == 0


async def test_session_with_ttl_expires(client: MemoryAPIClient) -> None:
    # Given a session with a one-second TTL and a persistent one
    await _seed(client, "short", ttl_seconds=1)
    await _seed(client, "forever")
    assert (await _stored(client, "short", namespace="ns", user_id="u1")).ttl_seconds == 1
    # When the TTL passes (poll; this is the one test that has to wait)
    deadline = time.monotonic() + 10
    while True:
        try:
            await _stored(client, "short", namespace="ns", user_id="u1")
        except MemoryNotFoundError:
            break
        assert time.monotonic() < deadline, "session with ttl_seconds=1 never expired"
        await asyncio.sleep(0.25)
    # Then it is gone and unlisted, and the persistent session is still there
    assert (await client.list_sessions(namespace="ns")).sessions == ["forever"]


# --- default_namespace -----------------------------------------------------------------------------


async def test_default_namespace_scopes_every_working_memory_call(live_server: LiveServer) -> None:
    async with connect(live_server, default_namespace="tenant-a") as scoped, connect(live_server) as plain:
        # Given a session created through a client with a default namespace (no namespace passed)
        created, memory = await scoped.get_or_create_working_memory("s1", user_id="u1")
        assert created is True and memory.namespace == "tenant-a"
        await scoped.put_working_memory("s2", WorkingMemory(session_id="s2", messages=[message("user", "x")]))
        # And a same-named session in another namespace
        await _seed(plain, "s1", namespace="tenant-b", user_id="u1")
        # When the scoped client lists and reads
        listed = await scoped.list_sessions()
        # Then it only sees its namespace, and the sessions were stored under it
        assert set(listed.sessions) == {"s1", "s2"} and listed.total == 2
        assert (await _stored(plain, "s2", namespace="tenant-a")).namespace == "tenant-a"
        assert (await scoped.get_working_memory("s1", user_id="u1")).namespace == "tenant-a"
        # And deleting through it leaves the other namespace's session alone
        await scoped.delete_working_memory("s1", user_id="u1")
        assert (await plain.list_sessions(namespace="tenant-b")).sessions == ["s1"]
        assert (await scoped.list_sessions()).sessions == ["s2"]


# --- tools through resolve_function_call ----------------------------------------------------------


async def test_get_or_create_working_memory_tool(client: MemoryAPIClient) -> None:
    # When an LLM calls the tool for a new session (arguments as the JSON string an LLM sends)
    first = await client.resolve_function_call(
        function_name="get_or_create_working_memory",
        function_arguments="{}",
        session_id="chat-1",
        namespace="ns",
        user_id="u1",
    )
    # Then it succeeds, says it created the session, and the server has it under that scope
    assert first["success"] is True, first["error"]
    assert first["result"]["created"] is True and first["result"]["message_count"] == 0
    assert first["formatted_response"].startswith("Retrieved new session")
    assert (await client.list_sessions(namespace="ns", user_id="u1")).sessions == ["chat-1"]
    # And once the session holds messages and data, the tool reports the existing session
    await client.append_messages_to_working_memory(
        "chat-1", [{"role": "user", "content": "hi"}], namespace="ns", user_id="u1"
    )
    await client.update_working_memory_data("chat-1", {"k": "v"}, namespace="ns", user_id="u1")
    second = await client.resolve_function_call(
        function_name="get_or_create_working_memory",
        function_arguments={},
        session_id="chat-1",
        namespace="ns",
        user_id="u1",
    )
    assert second["success"] is True, second["error"]
    assert second["result"]["created"] is False
    assert (second["result"]["message_count"], second["result"]["data"]) == (1, {"k": "v"})
    assert (await client.list_sessions(namespace="ns")).total == 1


async def test_update_working_memory_data_tool(client: MemoryAPIClient) -> None:
    # Given a session with nested data, stored with a user
    await _seed(client, "chat-1", data={"trip": {"city": "Rome", "nights": 3}})
    # When an LLM calls the tool with deep_merge (the tool does not forward user_id to the GET)
    result = await client.resolve_function_call(
        function_name="update_working_memory_data",
        function_arguments={"data": {"trip": {"nights": 4}, "budget": 900}, "merge_strategy": "deep_merge"},
        session_id="chat-1",
        namespace="ns",
        user_id="u1",
    )
    # Then it succeeds and the server's data is deep-merged in the same session
    assert result["success"] is True, result["error"]
    assert result["result"]["merge_strategy"] == "deep_merge"
    assert sorted(result["result"]["updated_keys"]) == ["budget", "trip"]
    got = await _stored(client, "chat-1", namespace="ns", user_id="u1")
    assert got.data == {"trip": {"city": "Rome", "nights": 4}, "budget": 900}
    assert (await client.list_sessions(namespace="ns")).total == 1
    # And the default strategy (merge) replaces top-level keys
    default = await client.resolve_function_call(
        function_name="update_working_memory_data",
        function_arguments='{"data": {"trip": {"city": "Oslo"}}}',
        session_id="chat-1",
        namespace="ns",
        user_id="u1",
    )
    assert default["success"] is True, default["error"]
    got = await _stored(client, "chat-1", namespace="ns", user_id="u1")
    assert got.data == {"trip": {"city": "Oslo"}, "budget": 900}


async def test_update_working_memory_data_tool_creates_a_missing_session(client: MemoryAPIClient) -> None:
    # When the tool runs for a session that does not exist yet
    result = await client.resolve_function_call(
        function_name="update_working_memory_data",
        function_arguments={"data": {"step": 1}},
        session_id="fresh",
        namespace="ns",
    )
    # Then the session is created with the data
    assert result["success"] is True, result["error"]
    assert (await _stored(client, "fresh", namespace="ns")).data == {"step": 1}


# --- errors ---------------------------------------------------------------------------------------


async def test_blank_message_content_is_a_400_server_error(client: MemoryAPIClient) -> None:
    # When the client PUTs a message whose content is only whitespace
    bad = WorkingMemory(session_id="s1", namespace="ns", messages=[message("user", "   ", id="m-blank")])
    with pytest.raises(MemoryServerError) as caught:
        await client.put_working_memory("s1", bad)
    # Then the 400 surfaces as MemoryServerError with its status code and the server's detail
    assert caught.value.status_code == 400
    assert "Message content cannot be empty (message ID: m-blank)" in str(caught.value)
    # And nothing was stored
    with pytest.raises(MemoryNotFoundError):
        await _stored(client, "s1", namespace="ns")


async def test_validation_error_is_a_422_server_error(client: MemoryAPIClient) -> None:
    # When the client asks for more sessions than the API allows per page
    with pytest.raises(MemoryServerError) as caught:
        await client.list_sessions(limit=1000)
    # Then the 422 surfaces with its status code
    assert caught.value.status_code == 422


async def test_blank_message_through_append_is_a_400_and_keeps_the_session(client: MemoryAPIClient) -> None:
    # Given a stored session
    await _seed(client, "s1", messages=[message("user", "ok")])
    # When a blank message is appended
    with pytest.raises(MemoryServerError) as caught:
        await client.append_messages_to_working_memory(
            "s1", [{"role": "user", "content": ""}], namespace="ns", user_id="u1"
        )
    # Then it is rejected and the session is as it was
    assert caught.value.status_code == 400
    assert [m.content for m in (await _stored(client, "s1", namespace="ns", user_id="u1")).messages] == ["ok"]
