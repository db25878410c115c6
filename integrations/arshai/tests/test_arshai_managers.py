"""The managers with Arshai 1.15.0's real `WorkingMemoryAgent` (a scripted LLM object) against a live
`agent-memory serve` with API keys, and against a stopped one.

Run in the venv of this package with arshai installed, by the service's tests/integration/test_arshai_manager.py,
which starts the server and passes AGENT_MEMORY_URL, AGENT_MEMORY_API_KEY and AGENT_MEMORY_STOPPED_URL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import Any

import httpx
import pytest
from agent_memory_arshai import AgentMemoryManager, SyncAgentMemoryManager
from arshai.agents.hub.working_memory import WorkingMemoryAgent
from arshai.core.interfaces.iagent import IAgentInput
from arshai.core.interfaces.illm import ILLMInput
from arshai.core.interfaces.imemorymanager import ConversationMemoryType, IMemoryInput, IWorkingMemory

URL = os.environ.get("AGENT_MEMORY_URL")
KEY = os.environ.get("AGENT_MEMORY_API_KEY")
STOPPED = os.environ.get("AGENT_MEMORY_STOPPED_URL")
# A generous timeout against the live server: its first long-term write loads the local embedding model, which
# can take seconds on a busy machine, and a timed-out request would only degrade (these tests check results).
LIVE: dict[str, Any] = {"api_key": KEY, "timeout_seconds": 60.0}
pytestmark = pytest.mark.skipif(
    not (URL and KEY and STOPPED),
    reason="needs a live server: run through tests/integration/test_arshai_manager.py in the service's suite",
)


class ScriptedLLM:
    """An `ILLM` whose `chat` answers the next scripted text and records what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    async def chat(self, input: ILLMInput) -> dict[str, Any]:
        self.prompts.append(input.user_message)
        return {"llm_response": self.answers.pop(0), "usage": {}}

    async def stream(self, input: ILLMInput) -> Any:  # pragma: no cover - the agent never streams
        raise NotImplementedError


def conversation() -> str:
    return f"conv-{uuid.uuid4().hex[:8]}"


def run(agent: WorkingMemoryAgent, message: str, conversation_id: str) -> str:
    turn = IAgentInput(message=message, metadata={"conversation_id": conversation_id})
    result: str = asyncio.run(agent.process(turn))
    return result


def test_the_agent_stores_and_retrieves_two_conversations_apart() -> None:
    # Given Arshai's WorkingMemoryAgent with our manager, and two conversations
    assert URL and KEY
    manager = AgentMemoryManager(URL, **LIVE)
    a, b = conversation(), conversation()
    llm = ScriptedLLM("User lives in Lisbon", "User likes jazz", "User lives in Lisbon and cycles to work")
    agent = WorkingMemoryAgent(llm, memory_manager=manager)

    # When each conversation gets a turn, then the first one a second turn
    assert run(agent, "I moved to Lisbon", a) == "success"
    assert run(agent, "I mostly listen to jazz", b) == "success"
    assert run(agent, "I cycle to work now", a) == "success"

    # Then the second turn of A saw A's memory and nothing of B's
    assert "No existing memory" in llm.prompts[0] and "No existing memory" in llm.prompts[1]
    assert "User lives in Lisbon" in llm.prompts[2]
    assert "jazz" not in llm.prompts[2]
    # And each conversation's memory reads back on its own, through the manager and through the service's API
    [memory_a] = asyncio.run(manager.retrieve({"conversation_id": a}))
    [memory_b] = asyncio.run(manager.retrieve(IMemoryInput(conversation_id=b)))
    assert isinstance(memory_a, IWorkingMemory)
    assert (memory_a.working_memory, memory_b.working_memory) == ("User lives in Lisbon and cycles to work",
                                                                    "User likes jazz")
    session = httpx.get(f"{URL}/v1/working-memory/{a}", headers={"authorization": f"Bearer {KEY}"}, timeout=30)
    assert session.status_code == 200 and session.json()["context"] == "User lives in Lisbon and cycles to work"
    assert session.json()["data"]["arshai_metadata"] == {"conversation_id": a}


def test_long_term_memory_is_stored_searched_by_query_updated_and_deleted() -> None:
    assert URL and KEY
    manager = AgentMemoryManager(URL, namespace=f"ns-{uuid.uuid4().hex[:6]}", **LIVE)
    c = conversation()

    def long_term(**fields: Any) -> IMemoryInput:
        return IMemoryInput(conversation_id=c, memory_type=ConversationMemoryType.LONG_TERM_MEMORY, **fields)

    async def scenario() -> tuple[str, list[Any], list[Any], list[Any]]:
        stored = await manager.store(long_term(data=[IWorkingMemory(working_memory="User is allergic to peanuts")]))
        await manager.store({"conversation_id": c, "memory_type": "LONG_TERM_MEMORY",
                             "working_memory": "User plays the cello"})
        found = await manager.retrieve(long_term(query="peanut allergy", limit=1))
        cashews = IWorkingMemory(working_memory="User is allergic to cashews")
        await manager.update(long_term(memory_id=stored, data=[cashews]))
        updated = await manager.retrieve(long_term(limit=10))
        await manager.delete(long_term(memory_id=stored))
        left = await manager.retrieve(long_term(limit=10))
        await manager.aclose()
        return stored, found, updated, left

    stored, found, updated, left = asyncio.run(scenario())
    assert stored
    assert [m.working_memory for m in found] == ["User is allergic to peanuts"]
    assert sorted(m.working_memory for m in updated) == ["User is allergic to cashews", "User plays the cello"]
    assert [m.working_memory for m in left] == ["User plays the cello"]


def test_the_sync_manager_serves_the_published_protocol() -> None:
    assert URL and KEY
    c = conversation()
    with SyncAgentMemoryManager(URL, ttl_seconds=600, **LIVE) as manager:
        assert manager.retrieve(IMemoryInput(conversation_id=c)) == []
        assert manager.store(IMemoryInput(conversation_id=c, data=[IWorkingMemory(working_memory="first")])) == c
        manager.update(IMemoryInput(conversation_id=c, data=[IWorkingMemory(working_memory="second")]))
        assert [m.working_memory for m in manager.retrieve(IMemoryInput(conversation_id=c))] == ["second"]
        manager.delete(IMemoryInput(conversation_id=c))
        assert manager.retrieve(IMemoryInput(conversation_id=c)) == []


def test_a_stopped_server_degrades_to_warnings_and_empty_results(caplog: pytest.LogCaptureFixture) -> None:
    # Given the manager pointed at a server that is not running
    assert STOPPED
    manager = AgentMemoryManager(STOPPED, timeout_seconds=1)
    llm = ScriptedLLM("User lives in Lisbon")
    agent = WorkingMemoryAgent(llm, memory_manager=manager)
    with caplog.at_level(logging.WARNING, logger="agent_memory_arshai"):
        # When the agent runs a turn: no exception reaches it, and its memory read was empty
        assert run(agent, "I moved to Lisbon", conversation()) == "success"
        assert "No existing memory" in llm.prompts[0]
        # And every method answers its empty result
        assert asyncio.run(manager.retrieve({"conversation_id": "c1"})) == []
        assert asyncio.run(manager.store({"conversation_id": "c1", "working_memory": "x"})) == ""
        with SyncAgentMemoryManager(STOPPED, timeout_seconds=1) as sync:
            assert sync.retrieve(IMemoryInput(conversation_id="c1")) == []
            assert sync.delete(IMemoryInput(conversation_id="c1")) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "agent_memory_arshai"]
    assert len(warnings) >= 5 and all("degraded" in w for w in warnings)


def test_a_missing_conversation_id_or_a_refused_key_degrades(caplog: pytest.LogCaptureFixture) -> None:
    assert URL
    with caplog.at_level(logging.WARNING, logger="agent_memory_arshai"):
        manager = AgentMemoryManager(URL, api_key="am_0000000000000000_wrong", timeout_seconds=60)
        assert asyncio.run(manager.retrieve({})) == []
        assert asyncio.run(manager.store({"working_memory": "x"})) == ""
        assert asyncio.run(manager.retrieve({"conversation_id": "c1"})) == []  # 401
        # A good key with x-tenant-id naming another tenant: the server refuses (403), the manager degrades
        other = SyncAgentMemoryManager(URL, tenant_id="another-tenant", **LIVE)
        assert other.retrieve(IMemoryInput(conversation_id="c1")) == []
        other.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "agent_memory_arshai"]
    assert sum("no conversation_id" in m for m in messages) == 2
    assert any("HTTP 401" in m for m in messages)
    assert any("HTTP 403" in m for m in messages)
