"""What an MCP client does with the memory tools, shared by the stdio and HTTP suites: every tool once,
with the answers a user of Agent Memory Server's MCP server expects, through the official `mcp` client."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp import Client

from agent_memory.mcp.tools import TOOL_NAMES

README = Path(__file__).resolve().parents[2] / "README.md"
NS = "travel"
USER = "u1"
SESSION = "trip-planning"


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The tool's structured answer; fails the test with the tool's error text if it is an error."""
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    assert not result.is_error, f"{tool} failed: {text}"
    assert result.structured_content is not None, tool
    assert json.loads(text) == result.structured_content  # the text block says the same, for text-only clients
    return result.structured_content


async def error_of(client: Client, tool: str, **arguments: Any) -> str:
    """The text of a tool error (the call must fail as a tool result, not as a protocol error)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} succeeded: {result.structured_content}"
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def drive_every_tool(client: Client) -> dict[str, Any]:
    """Given a fresh tenant, When each of the ten tools is called as an agent would, Then each answers as
    AMS's does; returns what was written (ids) for the caller's own checks."""
    listed = await client.list_tools()
    assert [t.name for t in listed.tools] == list(TOOL_NAMES)
    search_schema = next(t for t in listed.tools if t.name == "search_long_term_memory").input_schema
    assert {"text", "search_mode", "namespace", "user_id", "topics", "event_date", "recency_boost",
            "server_side_recency", "limit", "offset"} <= set(search_schema["properties"])  # fmt: skip

    now = await call(client, "get_current_datetime")
    parsed = datetime.fromisoformat(now["iso_utc"].replace("Z", "+00:00"))
    assert now["iso_utc"].endswith("Z") and parsed.tzinfo is not None
    assert now["unix_ts"] == int(parsed.astimezone(UTC).timestamp())

    created = await call(client, "create_long_term_memories", memories=[
        {"id": "pref-seat", "text": "User prefers aisle seats on long flights", "memory_type": "semantic",
         "namespace": NS, "user_id": USER, "topics": ["travel", "seating"]},
        {"id": "trip-lisbon", "text": "User flew to Lisbon on 2024-05-01", "memory_type": "episodic",
         "event_date": "2024-05-01T00:00:00Z", "namespace": NS, "user_id": USER, "entities": ["Lisbon"]},
        {"text": "User drinks green tea every morning", "namespace": NS, "user_id": USER},
    ])  # fmt: skip
    assert created["status"] == "ok" and created["stored_ids"][:2] == ["pref-seat", "trip-lisbon"]
    generated_id = created["stored_ids"][2]
    assert len(generated_id) == 26  # no id given: the server assigned a ULID

    keyword = await call(client, "search_long_term_memory", text="aisle seats", search_mode="keyword",
                         namespace={"eq": NS})  # fmt: skip
    assert [m["id"] for m in keyword["memories"]] == ["pref-seat"] and keyword["total"] == 1
    by_topic = await call(client, "search_long_term_memory", text="", topics={"any": ["seating"]},
                          user_id={"eq": USER})  # fmt: skip
    assert [m["id"] for m in by_topic["memories"]] == ["pref-seat"]
    dated = await call(client, "search_long_term_memory", text="trip", search_mode="hybrid",
                       event_date={"gte": "2024-04-01T00:00:00Z", "lt": "2024-06-01T00:00:00Z"},
                       memory_type={"eq": "episodic"}, recency_boost=False)  # fmt: skip
    assert [m["id"] for m in dated["memories"]] == ["trip-lisbon"]
    listing = await call(client, "search_long_term_memory", text=None, namespace={"eq": NS}, limit=2)
    assert listing["total"] == 3 and len(listing["memories"]) == 2 and listing["next_offset"] == 2

    got = await call(client, "get_long_term_memory", memory_id="pref-seat")
    assert got["text"] == "User prefers aisle seats on long flights" and got["topics"] == ["travel", "seating"]

    edited = await call(client, "edit_long_term_memory", memory_id="pref-seat",
                        text="User prefers window seats on long flights", event_date="2024-01-15T14:30:00Z",
                        pinned=True)  # fmt: skip
    assert edited["text"] == "User prefers window seats on long flights" and edited["pinned"] is True
    assert edited["event_date"].startswith("2024-01-15T14:30:00") and edited["topics"] == ["travel", "seating"]

    stored = await call(client, "set_working_memory", session_id=SESSION, namespace=NS, user_id=USER,
                        messages=[{"role": "user", "content": "Book me a flight to Porto"},
                                  {"role": "assistant", "content": "Window or aisle?"}],
                        data={"destination": "Porto"}, context="Planning a trip")  # fmt: skip
    assert stored["session_id"] == SESSION and stored["ttl_seconds"] == 3600  # AMS's MCP default
    assert [m["content"] for m in stored["messages"]] == ["Book me a flight to Porto", "Window or aisle?"]
    session = await call(client, "get_working_memory", session_id=SESSION, namespace=NS, recent_messages_limit=1)
    assert [m["content"] for m in session["messages"]] == ["Window or aisle?"]
    assert session["data"] == {"destination": "Porto"} and session["context"] == "Planning a trip"
    missing = await call(client, "get_working_memory", session_id="never-written")
    assert (missing["messages"], missing["memories"]) == ([], [])  # as AMS: empty, not an error
    assert missing["session_id"] == "never-written"
    assert "message_limit" not in missing and "message_limit" not in session  # as the REST answers

    prompt = await call(client, "memory_prompt", query="Which seat should I book?", session_id={"eq": SESSION},
                        namespace={"eq": NS}, user_id={"eq": USER}, search_mode="keyword")  # fmt: skip
    texts = [m["content"]["text"] for m in prompt["messages"]]
    assert texts[-1] == "Which seat should I book?" and "Window or aisle?" in texts
    assert any("window seats" in t for t in texts)  # the long-term memory found by the query's words
    session_only = await call(client, "memory_prompt", query="Where to?", session_id={"eq": SESSION},
                              namespace={"eq": NS}, include_long_term_search=False)  # fmt: skip
    assert session_only["long_term_memories"] is None and "Book me a flight to Porto" in json.dumps(session_only)
    several = await error_of(client, "memory_prompt", query="x", session_id={"any": [SESSION, "other"]})
    assert "session_id" in several and '{"eq": "<id>"}' in several

    compacted = await call(client, "compact_long_term_memories", namespace=NS, user_id=USER)
    assert compacted == {"status": "ok, 3 memories remaining after compaction"}

    deleted = await call(client, "delete_long_term_memories", memory_ids=["trip-lisbon", generated_id])
    assert deleted == {"status": "ok, deleted 2 memories"}
    gone = await error_of(client, "get_long_term_memory", memory_id="trip-lisbon")
    assert "not found (404)" in gone and "trip-lisbon" in gone

    # Bad input is a tool error naming what is wrong, and stores nothing
    bad_filter = await error_of(client, "search_long_term_memory", text="x", topics={})
    assert "topics" in bad_filter and "filter has no operator" in bad_filter  # the SDK checks the schema first
    duplicate = await error_of(client, "create_long_term_memories",
                               memories=[{"id": "twice", "text": "a"}, {"id": "twice", "text": "b"}])
    assert "invalid input (422): memories:" in duplicate and "'twice' appears twice" in duplicate
    blank = await error_of(client, "create_long_term_memories", memories=[{"text": "  ", "id": "blank"}])
    assert "memories.0.text" in blank
    for never_stored in ("blank", "twice"):
        assert "not found (404)" in await error_of(client, "get_long_term_memory", memory_id=never_stored)
    assert "session_id" in await error_of(client, "set_working_memory", session_id="a/b")
    return {"kept": ["pref-seat"], "session": SESSION}


def readme_mcp_configs() -> list[dict[str, Any]]:
    """The MCP client configs README shows (`mcpServers.memory`), in order: stdio, then HTTP."""
    section = README.read_text().split("## MCP server", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    return [json.loads(block)["mcpServers"]["memory"] for block in blocks]


__all__ = ["NS", "SESSION", "USER", "call", "drive_every_tool", "error_of", "readme_mcp_configs"]
