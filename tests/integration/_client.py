"""Helpers for tests where the official `agent_memory_client` (0.14.0) drives a live server over HTTP.

The `live_server` fixture (tests/fixtures/app.py) runs our app under uvicorn, backed by SQLite or a real
redis-server; these helpers only build clients, records and messages and read prompt messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_memory_client import MemoryAPIClient, MemoryClientConfig
from agent_memory_client.models import ClientMemoryRecord, MemoryMessage, MemoryRecord, MemoryTypeEnum

from tests.fixtures.app import LiveServer

TIMEOUT_SECONDS = 10.0


@asynccontextmanager
async def connect(live_server: LiveServer, **config: Any) -> AsyncIterator[MemoryAPIClient]:
    """A client for `live_server`; extra keywords go to `MemoryClientConfig` (e.g. default_namespace)."""
    async with MemoryAPIClient(
        MemoryClientConfig(base_url=live_server.base_url, timeout=TIMEOUT_SECONDS, **config)
    ) as client:
        yield client


def ago(days: float = 0.0, **delta: float) -> datetime:
    """An aware UTC datetime `days` (plus any other timedelta fields) before now, whole seconds."""
    return (datetime.now(UTC) - timedelta(days=days, **delta)).replace(microsecond=0)


def record(text: str, *, memory_type: str = "semantic", **fields: Any) -> ClientMemoryRecord:
    """A long-term record as an app would create it; `discrete_memory_extracted="t"` (no second pass)."""
    return ClientMemoryRecord(
        text=text, memory_type=MemoryTypeEnum(memory_type), discrete_memory_extracted="t", **fields
    )


def message(role: str, content: str, *, minutes_ago: float = 0.0, **fields: Any) -> MemoryMessage:
    """A message with an explicit `created_at` (the client warns without one)."""
    return MemoryMessage(role=role, content=content, created_at=ago(minutes=minutes_ago), **fields)


def conversation(n: int, *, words: int = 20) -> list[MemoryMessage]:
    """`n` alternating user/assistant messages, oldest first, each about `words` tokens long."""
    return [
        message(
            "user" if i % 2 == 0 else "assistant",
            f"turn {i} " + " ".join(f"word{j}" for j in range(words)),
            minutes_ago=n - i,
        )
        for i in range(n)
    ]


def ids(memories: Iterable[MemoryRecord]) -> set[str]:
    return {m.id for m in memories}


def prompt_texts(prompt: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every message of a `/v1/memory/prompt` answer, in order."""
    return [(m["role"], m["content"]["text"]) for m in prompt["messages"]]
