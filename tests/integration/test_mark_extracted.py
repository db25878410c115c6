"""`WorkingMemoryStore.mark_extracted` on both stores: the extraction consumer's one write to a session,
which must never overwrite a PUT that landed while the LLM was working."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore
from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore
from agent_memory.domain.models import MemoryMessage, SessionKey, WorkingMemory
from agent_memory.ports import WorkingMemoryStore

KEY = SessionKey(tenant="t1", session_id="s1", namespace="ns", user_id="u")


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkingMemoryStore]:
    if request.param == "redis":
        redis_store = RedisWorkingMemoryStore.from_url(request.getfixturevalue("redis_url"))
        yield redis_store
        redis_store.close()
    else:
        yield SqliteWorkingMemoryStore(tmp_path / "working_memory.sqlite3")


def message(id: str, content: str) -> MemoryMessage:
    return MemoryMessage(id=id, role="user", content=content)


def test_marks_what_was_extracted_and_leaves_a_concurrent_put_intact(store: WorkingMemoryStore) -> None:
    # Given the session as the extraction read it
    read = WorkingMemory(session_id="s1", namespace="ns", user_id="u", ttl_seconds=600, context="old summary",
                         messages=[message("a", "one"), message("b", "two"), message("c", "three")])
    store.put(KEY, read)
    extracted = store.get(KEY)
    assert extracted is not None
    # And a PUT that landed meanwhile: b edited, c dropped, d added, new context
    store.put(KEY, read.model_copy(update={
        "context": "new summary",
        "messages": [message("a", "one"), message("b", "two, edited"), message("d", "four")],
    }))

    # When the extraction marks the messages it extracted
    marked = store.mark_extracted(KEY, extracted.messages)

    # Then only the unchanged message is marked, and nothing the PUT wrote is lost
    assert marked == 1
    after = store.get(KEY)
    assert after is not None
    assert [(m.id, m.content, m.discrete_memory_extracted) for m in after.messages] == [
        ("a", "one", "t"), ("b", "two, edited", "f"), ("d", "four", "f"),
    ]
    assert after.context == "new summary" and after.ttl_seconds == 600


def test_marking_keeps_the_ttl_running_instead_of_restarting_it(store: WorkingMemoryStore) -> None:
    store.put(KEY, WorkingMemory(session_id="s1", namespace="ns", user_id="u", ttl_seconds=2,
                                 messages=[message("a", "one")]))
    extracted = store.get(KEY)
    assert extracted is not None
    time.sleep(1.2)

    assert store.mark_extracted(KEY, extracted.messages) == 1
    time.sleep(1.0)

    assert store.get(KEY) is None  # expired 2 s after the PUT, not 2 s after the mark


def test_marking_a_session_that_is_gone_marks_nothing(store: WorkingMemoryStore) -> None:
    assert store.mark_extracted(KEY, [message("a", "one")]) == 0
    assert store.get(KEY) is None


def test_content_that_looks_like_the_flag_is_left_as_it_was(store: WorkingMemoryStore) -> None:
    tricky = message("x", 'quote: "discrete_memory_extracted":"f" — ünïcødé 🎉\n\ttab \\ backslash')
    store.put(KEY, WorkingMemory(session_id="s1", namespace="ns", user_id="u", messages=[tricky]))

    assert store.mark_extracted(KEY, [tricky]) == 1

    after = store.get(KEY)
    assert after is not None
    [stored] = after.messages
    assert stored.content == tricky.content and stored.discrete_memory_extracted == "t"
    assert stored.created_at == tricky.created_at
