"""Two tenants with the same namespace, user, session and record ids: no MCP tool lets one see or touch the
other. The MCP cells of the isolation matrix (tests/integration/test_tenant_isolation.py covers the REST
routes and counts `POST /mcp` as covered here: `ROUTES`).

Given tenants A and B seeded through the REST API with the same ids (every text of A says "alpha", every
text of B "bravo"), served over real HTTP with API keys, on SQLite and on a real redis-server
When B's key calls every tool over MCP, with the shared ids and with ids only A has
Then no answer of B carries anything of A, B's writes land in B, and A's records and sessions, read
through A's own key, are exactly what they were.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_memory.bootstrap import Container
from agent_memory.domain.auth import ALL_SCOPES
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import LiveServer, make_container, serve_in_thread
from tests.integration.mcp_session import call, error_of

ROUTES = {("POST", "/mcp")}

NS, USER, SESSION = "shared-ns", "shared-user", "shared-session"
SCOPE = {"namespace": NS, "user_id": USER}
A_RECORD, A_SESSION = "alpha-only-rec", "alpha-only-session"
WORDS = "alpha bravo tea hiking river"  # A's words too: a search that ignored the tenant finds A's records


@pytest.fixture(params=["sqlite", "redis"])
def served(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    container: Container = make_container(tmp_path, redis_url=redis_url, auth_mode="api_key", rate_limit_per_second=0)
    keys = {tenant: ApiKeyService(container.api_key_store).create(tenant, name=tenant, scopes=ALL_SCOPES)[1]
            for tenant in ("tenant-a", "tenant-b")}  # fmt: skip
    try:
        for live in serve_in_thread(container):
            seed(live.base_url, keys["tenant-a"], "alpha", own=True)
            seed(live.base_url, keys["tenant-b"], "bravo", own=False)
            yield live, keys
    finally:
        container.close()


def rest(base: str, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{base}{path}", headers={"X-API-Key": key}, timeout=10, **kwargs)


def seed(base: str, key: str, marker: str, *, own: bool) -> None:
    records = [{"id": "shared-rec-1", "text": f"{marker} likes tea and hiking", "topics": ["tea"], **SCOPE},
               {"id": "shared-rec-2", "text": f"{marker} swims in the river", **SCOPE}]  # fmt: skip
    if own:
        records.append({"id": A_RECORD, "text": f"{marker} alone has this record", **SCOPE})
    assert rest(base, key, "POST", "/v1/long-term-memory/", json={"memories": records}).status_code == 200
    sessions = [SESSION, A_SESSION] if own else [SESSION]
    for session in sessions:
        body = {**SCOPE, "messages": [{"role": "user", "content": f"{marker} says hello in {session}"}],
                "data": {"marker": marker}}  # fmt: skip
        assert rest(base, key, "PUT", f"/v1/working-memory/{session}", json=body).status_code == 200


def snapshot(base: str, key: str) -> dict[str, Any]:
    """A tenant's records and sessions as its own key reads them (the fields a write could change)."""
    listed = rest(base, key, "POST", "/v1/long-term-memory/search", json={"limit": 100}).json()
    records = sorted((m["id"], m["text"], m["topics"], m["pinned"], m["namespace"], m["user_id"])
                     for m in listed["memories"])  # fmt: skip
    sessions = {}
    for session in rest(base, key, "GET", "/v1/working-memory/", params={"limit": 100}).json()["sessions"]:
        got = rest(base, key, "GET", f"/v1/working-memory/{session}", params=SCOPE).json()
        sessions[session] = ([m["content"] for m in got["messages"]], got["data"], got["ttl_seconds"])
    return {"records": records, "sessions": sessions}


@asynccontextmanager
async def mcp_as(base: str, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30)) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=30) as client,
    ):
        yield client


A_TEXTS = ("alpha likes", "alpha swims", "alpha alone", "alpha says")  # what only A's records and sessions say


def assert_no_trace_of_a(answer: Any) -> None:
    text = str(answer)
    assert not [t for t in A_TEXTS if t in text], text[:500]


async def test_tenant_b_cannot_reach_tenant_a_through_any_tool(served: tuple[LiveServer, dict[str, str]]) -> None:
    live, keys = served
    base, a_key = live.base_url, keys["tenant-a"]
    before = snapshot(base, a_key)
    assert len(before["records"]) == 3 and set(before["sessions"]) == {SESSION, A_SESSION}

    async with mcp_as(base, keys["tenant-b"]) as b:
        reads: list[Any] = []
        for mode in ("semantic", "keyword", "hybrid"):
            for scope in ({}, {"namespace": {"eq": NS}, "user_id": {"eq": USER}, "session_id": {"eq": SESSION}}):
                found = await call(b, "search_long_term_memory", text=WORDS, search_mode=mode, limit=20, **scope)
                assert {m["id"] for m in found["memories"]} <= {"shared-rec-1", "shared-rec-2"}, found
                assert found["total"] <= 2
                reads.append(found)
        everything = await call(b, "search_long_term_memory", text="", limit=100)
        assert sorted(m["id"] for m in everything["memories"]) == ["shared-rec-1", "shared-rec-2"]
        reads.append(everything)
        for session in (SESSION, A_SESSION):
            reads.append(await call(b, "memory_prompt", query=WORDS, session_id={"eq": session},
                                    namespace={"eq": NS}, user_id={"eq": USER}, search_mode="hybrid"))  # fmt: skip
            reads.append(await call(b, "get_working_memory", session_id=session, namespace=NS, user_id=USER))
        assert reads[-1]["messages"] == []  # A's session id: B has no such session
        reads.append(await call(b, "get_long_term_memory", memory_id="shared-rec-1"))
        assert reads[-1]["text"] == "bravo likes tea and hiking"
        reads.append(await call(b, "get_current_datetime"))
        for answer in reads:
            assert_no_trace_of_a(answer)

        # Writes under A's ids and the shared ids change B only
        assert "not found (404)" in await error_of(b, "get_long_term_memory", memory_id=A_RECORD)
        assert "not found (404)" in await error_of(b, "edit_long_term_memory", memory_id=A_RECORD, text="bravo x")
        edited = await call(b, "edit_long_term_memory", memory_id="shared-rec-2", text="bravo edited", pinned=True)
        assert_no_trace_of_a(edited)
        deleted = await call(b, "delete_long_term_memories", memory_ids=[A_RECORD, "shared-rec-1"])
        assert deleted == {"status": "ok, deleted 1 memories"}
        created = await call(b, "create_long_term_memories", memories=[
            {"id": A_RECORD, "text": "bravo takes A's record id", **SCOPE},
            {"id": "b-new", "text": "alpha alone has this record", **SCOPE}])  # A's text: no cross-tenant dedup
        assert created["stored_ids"] == [A_RECORD, "b-new"] and created["duplicate_ids"] == []
        stored = await call(b, "set_working_memory", session_id=A_SESSION, **SCOPE,
                            messages=[{"role": "user", "content": "bravo writes under A's session id"}])
        assert [m["content"] for m in stored["messages"]] == ["bravo writes under A's session id"]
        compacted = await call(b, "compact_long_term_memories", namespace=NS, user_id=USER)
        assert compacted == {"status": "ok, 3 memories remaining after compaction"}  # B's three, not A's

    # A is exactly as it was; B holds what B wrote
    assert snapshot(base, a_key) == before
    b_now = snapshot(base, keys["tenant-b"])
    assert sorted(r[0] for r in b_now["records"]) == sorted([A_RECORD, "b-new", "shared-rec-2"])
    assert set(b_now["sessions"]) == {SESSION, A_SESSION}


async def test_concurrent_calls_of_two_tenants_each_see_only_their_own(
    served: tuple[LiveServer, dict[str, str]],
) -> None:
    # Given A's and B's clients calling at once, many times (the caller travels with each request's tasks)
    live, keys = served
    async with mcp_as(live.base_url, keys["tenant-a"]) as a, mcp_as(live.base_url, keys["tenant-b"]) as b:
        calls = [(marker, client) for _ in range(15) for marker, client in (("alpha", a), ("bravo", b))]
        answers = await asyncio.gather(*(call(client, "get_long_term_memory", memory_id="shared-rec-1")
                                         for _, client in calls))  # fmt: skip
    # Then every answer is the caller's own record
    assert [answer["text"] for answer in answers] == [f"{marker} likes tea and hiking" for marker, _ in calls]
