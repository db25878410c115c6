"""The official `agent_memory_client` (0.14.0) over real HTTP, with background extraction on: what a
client writes becomes long-term memory it can search, and its round trips keep the extracted flags.

The app runs under uvicorn with the embedded queue; the test works the queue itself (`run_once`), as
the server's worker thread or `agent-memory worker` would, so each step is deterministic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_memory_client.filters import Namespace
from agent_memory_client.models import ClientMemoryRecord, WorkingMemory

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.services.task_worker import TaskWorker
from tests.fixtures.app import LiveServer, make_settings, serve_in_thread
from tests.fixtures.openai_stub import OpenAIStub
from tests.integration._client import connect, message

pytestmark = pytest.mark.filterwarnings("ignore:get_working_memory is deprecated:DeprecationWarning")


@pytest.fixture
def server(tmp_path: Path, openai_stub: OpenAIStub) -> Iterator[tuple[LiveServer, TaskWorker]]:
    settings = make_settings(tmp_path, openai_api_key="test", openai_base_url=openai_stub.base_url,
                             extraction_debounce_seconds=0)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    worker = container.task_worker()
    assert worker is not None
    for live in serve_in_thread(container):
        yield live, worker


def facts(*texts: str) -> str:
    return json.dumps({"memories": [{"type": "semantic", "text": t, "topics": ["music"]} for t in texts]})


async def test_a_client_conversation_becomes_memories_the_client_can_search(
    server: tuple[LiveServer, TaskWorker], openai_stub: OpenAIStub
) -> None:
    live, worker = server
    async with connect(live) as client:
        # Given a conversation the client writes
        memory = WorkingMemory(session_id="chat", namespace="music", user_id="carol",
                               messages=[message("user", "I play the cello in an orchestra", minutes_ago=2)])
        await client.put_working_memory("chat", memory, user_id="carol")

        # When the queued extraction runs
        openai_stub.script_chat(facts("User plays the cello in an orchestra"))
        assert worker.run_once()

        # Then the client finds the memory, in the session's scope, and sees the message as extracted
        found = await client.search_long_term_memory("cello", namespace=Namespace(eq="music"))
        [hit] = found.memories
        assert (hit.text, hit.user_id, hit.session_id) == ("User plays the cello in an orchestra", "carol", "chat")
        stored = await client.get_working_memory("chat", namespace="music", user_id="carol")
        assert [m.discrete_memory_extracted for m in stored.messages] == ["t"]

        # When the client appends a message (its GET + PUT round trip)
        await client.append_messages_to_working_memory(
            "chat", [message("user", "We rehearse on Tuesdays")], namespace="music", user_id="carol"
        )

        # Then the extracted message keeps its flag, only the new one awaits extraction, and one more run
        # over the conversation adds the new fact without repeating the old one (the LLM, shown the stored
        # fact, calls the repeat known)
        stored = await client.get_working_memory("chat", namespace="music", user_id="carol")
        assert [m.discrete_memory_extracted for m in stored.messages] == ["t", "f"]
        decisions = {"decisions": [{"fact": "N1", "action": "NONE"}, {"fact": "N2", "action": "ADD"}]}
        openai_stub.script_chat(facts("User plays the cello in an orchestra", "User rehearses on Tuesdays"),
                                json.dumps(decisions))
        assert worker.run_once()
        found = await client.search_long_term_memory("", namespace=Namespace(eq="music"), limit=10)
        assert sorted(m.text for m in found.memories) == [
            "User plays the cello in an orchestra", "User rehearses on Tuesdays"]


async def test_a_memory_the_client_creates_gets_its_second_pass(
    server: tuple[LiveServer, TaskWorker], openai_stub: OpenAIStub
) -> None:
    live, worker = server
    async with connect(live) as client:
        # The client sends memory_type "message" and discrete_memory_extracted "f" unless told otherwise
        await client.create_long_term_memory([ClientMemoryRecord(
            text="carol: my cello is from 1890", namespace="music", user_id="carol")])
        openai_stub.script_chat(facts("User owns a cello made in 1890"))
        assert worker.run_once()

        found = await client.search_long_term_memory("", namespace=Namespace(eq="music"), limit=10)
        by_text = {m.text: m for m in found.memories}
        assert by_text["User owns a cello made in 1890"].user_id == "carol"
        assert by_text["carol: my cello is from 1890"].discrete_memory_extracted == "t"
        assert worker.run_once() is False  # nothing left: the derived memory is not queued again


async def test_the_client_drives_summary_views_and_tasks(
    server: tuple[LiveServer, TaskWorker], openai_stub: OpenAIStub
) -> None:
    from agent_memory_client.models import CreateSummaryViewRequest

    live, worker = server
    openai_stub.default_chat_content = "User plays the cello."
    async with connect(live) as client:
        await client.create_long_term_memory([ClientMemoryRecord(
            text="User plays the cello", namespace="music", user_id="carol", discrete_memory_extracted="t")])

        view = await client.create_summary_view(
            CreateSummaryViewRequest(source="long_term", group_by=["user_id"], name="per user"))
        assert [v.id for v in await client.list_summary_views()] == [view.id]
        assert (await client.get_summary_view(view.id)).group_by == ["user_id"]

        result = await client.run_summary_view_partition(view.id, {"user_id": "carol"})
        assert result.summary == "User plays the cello." and result.memory_count == 1
        assert len(await client.list_summary_view_partitions(view.id, user_id="carol")) == 1

        task = await client.run_summary_view(view.id, force=True)
        assert task.status == "pending"
        assert worker.run_once()
        assert (await client.get_task(task.id)).status == "success"
        assert await client.get_task("nope") is None

        await client.delete_summary_view(view.id)
        assert await client.get_summary_view(view.id) is None
