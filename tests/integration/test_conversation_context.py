"""Conversation context of message memories and the time match, through LongTermService on SQLite."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
from agent_memory.domain.filters import TagFilter
from agent_memory.domain.models import MemoryRecord, MemoryTypeEnum
from agent_memory.domain.search import SearchRequest
from agent_memory.services.long_term import LongTermService

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class RecordingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.documents: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents += texts
        return super().embed_documents(texts)


@pytest.fixture
def store(tmp_path: Path) -> SqliteLongTermStore:
    return SqliteLongTermStore(tmp_path / "ltm.sqlite3")


def message(text: str, session: str = "s1", *, at: int = 0, **fields: object) -> MemoryRecord:
    fields.setdefault("namespace", "chat")
    return MemoryRecord(text=text, session_id=session, memory_type=MemoryTypeEnum.MESSAGE,
                        created_at=T0 + timedelta(seconds=at), **fields)  # type: ignore[arg-type]


def search(service: LongTermService, text: str, mode: str = "keyword", **kw: object) -> list[str]:
    request = SearchRequest(text=text, search_mode=mode, recency_boost=False, **kw)  # type: ignore[arg-type]
    return [r.text for r in service.search("t1", request).memories]


def test_an_answer_is_found_by_the_question_before_it(store: SqliteLongTermStore) -> None:
    embedder = RecordingEmbedder()
    service = LongTermService(store, embedder)
    # Given a conversation whose answer does not repeat the question's words
    turns = ["Nate: What genre is your screenplay?", "Joanna: A mix of drama and romance!", "Nate: Sounds fun."]
    service.create("t1", [message(t) for t in turns], deduplicate=False)
    # Then a keyword search for the question's words finds the answer, whose text is returned unchanged
    found = search(service, "screenplay genre")
    assert found[0] == turns[0] and turns[1] in found
    # And each message after the first was embedded alone and read after up to two messages before it
    assert embedder.documents == [*turns, f"{turns[0]}\n{turns[1]}", f"{turns[0]}\n{turns[1]}\n{turns[2]}"]


def test_context_reaches_back_into_earlier_batches_of_the_same_session_only(store: SqliteLongTermStore) -> None:
    embedder = RecordingEmbedder()
    service = LongTermService(store, embedder, context_window=1)
    service.create("t1", [message("Q: favourite tea?", at=0)])
    # another session, namespace, user and tenant with the same session id must not leak in
    service.create("t1", [message("other session", "s2", at=1)])
    service.create("t1", [message("other namespace", at=2, namespace="elsewhere")])
    service.create("t1", [message("other user", at=3, user_id="u9")])
    service.create("t2", [message("other tenant", at=4)])
    embedder.documents.clear()
    service.create("t1", [message("A: oolong", at=5)])
    assert embedder.documents == ["A: oolong", "Q: favourite tea?\nA: oolong"]


def test_only_session_messages_get_context_and_a_window_of_zero_turns_it_off(store: SqliteLongTermStore) -> None:
    embedder = RecordingEmbedder()
    service = LongTermService(store, embedder)
    service.create("t1", [
        message("first", at=0),
        MemoryRecord(text="a fact", session_id="s1", memory_type=MemoryTypeEnum.SEMANTIC, namespace="chat"),
        MemoryRecord(text="no session", memory_type=MemoryTypeEnum.MESSAGE),
    ])
    assert embedder.documents == ["first", "a fact", "no session"]
    off = RecordingEmbedder()
    LongTermService(SqliteLongTermStore(":memory:"), off, context_window=0).create(
        "t1", [message("one", at=0), message("two", at=1)]
    )
    assert off.documents == ["one", "two"]


def test_the_stored_vector_is_the_mean_of_own_and_in_context_embeddings(store: SqliteLongTermStore) -> None:
    embedder = FakeEmbedder(64)
    service = LongTermService(store, embedder)
    service.create("t1", [message("Q: favourite tea?", at=0), message("A: oolong", at=1)])
    own, in_context = embedder.embed_documents(["A: oolong", "Q: favourite tea?\nA: oolong"])
    query = "oolong"
    q = embedder.embed_query(query)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    results = service.search("t1", SearchRequest(text=query, recency_boost=False, limit=2)).memories
    answer = next(r for r in results if r.text == "A: oolong")
    assert answer.dist == pytest.approx(1 - (cos(q, own) + cos(q, in_context)) / 2, abs=1e-5)


def test_patching_a_message_keeps_its_context(store: SqliteLongTermStore) -> None:
    embedder = RecordingEmbedder()
    service = LongTermService(store, embedder)
    first, second = message("Q: favourite tea?", at=0), message("A: oolong", at=1)
    service.create("t1", [first, second])
    embedder.documents.clear()
    service.patch("t1", second.id, {"text": "A: green tea"})
    assert embedder.documents == ["A: green tea", "Q: favourite tea?\nA: green tea"]


def test_hybrid_search_lifts_memories_from_the_period_the_question_names(store: SqliteLongTermStore) -> None:
    records = [
        MemoryRecord(id="may", text="Maria donated clothes", event_date=datetime(2023, 5, 3, tzinfo=UTC)),
        MemoryRecord(id="dec", text="Maria donated clothes", event_date=datetime(2023, 12, 9, tzinfo=UTC)),
    ]
    question = "What did Maria donate in December 2023?"
    timed = LongTermService(store, FakeEmbedder(64))
    timed.create("t1", records, deduplicate=False)
    request = SearchRequest(text=question, search_mode="hybrid", recency_boost=False)
    assert [r.id for r in timed.search("t1", request).memories] == ["dec", "may"]
    # semantic and keyword modes, and a service with the time match off, ignore the period
    untimed = LongTermService(store, FakeEmbedder(64), time_match=False)
    assert next(r.id for r in untimed.search("t1", request).memories) == "may"
    for mode in ("semantic", "keyword"):
        page = timed.search("t1", SearchRequest(text=question, search_mode=mode, recency_boost=False)).memories
        assert page[0].score == page[1].score, mode


def test_scope_filters_still_apply_with_context(store: SqliteLongTermStore) -> None:
    service = LongTermService(store, FakeEmbedder(64))
    service.create("t1", [message("Q: what genre?", at=0), message("A: romance", at=1)])
    service.create("t1", [message("Q: what genre?", at=0, namespace="other", id="x")])
    found = search(service, "genre", namespace=TagFilter(eq="other"))
    assert found == ["Q: what genre?"]


def test_a_file_from_before_contexts_is_migrated(tmp_path: Path) -> None:
    # Given a database written by an older schema (no context column, one-column FTS5 keyword index, no
    # change log)
    path = tmp_path / "old.sqlite3"
    SqliteLongTermStore(path).close()
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP TRIGGER records_log_insert; DROP TRIGGER records_log_delete; DROP TRIGGER records_log_touch;
        DROP TABLE record_changes;
        ALTER TABLE records DROP COLUMN context;
        CREATE VIRTUAL TABLE records_fts USING fts5(text, content='records', content_rowid='rid',
            tokenize='porter unicode61 remove_diacritics 2');
        CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN
            INSERT INTO records_fts (rowid, text) VALUES (new.rid, new.text); END;
        """
    )
    record = MemoryRecord(text="old memory about kayaks")
    conn.execute(
        "INSERT INTO records (tenant, id, memory_type, created_at, last_accessed, text, record, vector)"
        " VALUES ('t1', ?, 'message', 0, 0, ?, ?, ?)",
        (record.id, record.text, record.model_dump_json(), bytes(4 * 64)),
    )
    conn.commit()
    conn.close()
    # When the current code opens it
    service = LongTermService(SqliteLongTermStore(path), FakeEmbedder(64))
    # Then old records are still found by keyword, and new ones are indexed with context
    assert search(service, "kayaks") == ["old memory about kayaks"]
    service.create("t1", [message("Q: boats?", at=0), message("A: canoes", at=1)])
    assert search(service, "boats") == ["Q: boats?", "A: canoes"]


def test_settings_reach_the_service_and_bad_values_fail_loudly(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from agent_memory.bootstrap import Container
    from tests.fixtures.app import make_settings

    embedder = RecordingEmbedder()
    settings = make_settings(tmp_path, message_context_window=0, hybrid_time_match=False)
    service = Container(settings, embedder=embedder).long_term_service
    service.create("t1", [message("one", at=0), message("two", at=1)])
    assert embedder.documents == ["one", "two"]  # no context embedded
    records = [
        MemoryRecord(id="may", text="Maria donated clothes", event_date=datetime(2023, 5, 3, tzinfo=UTC)),
        MemoryRecord(id="dec", text="Maria donated clothes", event_date=datetime(2023, 12, 9, tzinfo=UTC)),
    ]
    service.create("t1", records, deduplicate=False)
    request = SearchRequest(text="What did Maria donate in December 2023?", search_mode="hybrid", recency_boost=False)
    scores = {r.id: r.score for r in service.search("t1", request).memories}
    assert scores["may"] == scores["dec"]  # the period is not read
    for bad in ({"message_context_window": -1}, {"message_context_window": 11}, {"hybrid_time_match": "maybe"}):
        with pytest.raises(ValidationError):
            make_settings(tmp_path, **bad)
