"""The SQLite store's keyword index (tantivy, one per tenant and process): what only it can get wrong.

Each store below stands for a process: its own connection and its own in-memory index over one file.
The shared semantics (stemming, phrases, context weight, filters, totals) are in the store contract
suite, tests/integration/test_long_term_stores.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_memory.adapters import sqlite_keyword_index
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
from agent_memory.domain.filters import DateTimeFilter, SearchFilters, SearchQuery
from agent_memory.domain.models import MemoryRecord

EMBEDDER = FakeEmbedder(64)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _store(path: Path) -> SqliteLongTermStore:
    store = SqliteLongTermStore(path)
    store.ensure_ready(64)
    return store


def _put(store: SqliteLongTermStore, tenant: str, *texts: str) -> list[MemoryRecord]:
    records = [MemoryRecord(text=t, created_at=T0, last_accessed=T0) for t in texts]
    store.upsert(tenant, records, EMBEDDER.embed_documents(list(texts)))
    return records


def _keyword(store: SqliteLongTermStore, tenant: str, text: str, **kw: object) -> tuple[list[str], int]:
    page, total = store.search(SearchQuery(tenant=tenant, mode="keyword", text=text, limit=50, **kw))  # type: ignore[arg-type]
    return [r.text for r in page], total


def test_a_warm_index_sees_writes_deletes_and_touches_from_another_process(tmp_path: Path) -> None:
    # Given two processes on one file, the reader's index warm
    writer, reader = _store(tmp_path / "ltm.sqlite3"), _store(tmp_path / "ltm.sqlite3")
    (owl,) = _put(writer, "t1", "an owl hooted at night")
    assert _keyword(reader, "t1", "owl") == (["an owl hooted at night"], 1)
    # When the other process adds, replaces and deletes records
    (crow,) = _put(writer, "t1", "a crow cawed at dawn")
    writer.upsert("t1", [owl.model_copy(update={"text": "an owl slept all day"})], EMBEDDER.embed_documents(["x"]))
    # Then the next search sees each write (read-your-writes across processes)
    assert _keyword(reader, "t1", "owl crow hooted slept") == (["an owl slept all day", "a crow cawed at dawn"], 2)
    writer.delete("t1", [crow.id])
    assert _keyword(reader, "t1", "crow") == ([], 0)
    # And a touch moves the record in last_accessed filters of keyword search too
    later = T0 + timedelta(days=30)
    writer.touch("t1", [owl.id], later)
    recent = SearchFilters(last_accessed=DateTimeFilter(gte=later))
    assert _keyword(reader, "t1", "owl", filters=recent) == (["an owl slept all day"], 1)


def test_a_restarted_process_rebuilds_its_index_from_the_file(tmp_path: Path) -> None:
    first = _store(tmp_path / "ltm.sqlite3")
    _put(first, "t1", "café au lait with Hiking friends")
    first.close()
    # diacritics folded and words stemmed, as FTS5's porter unicode61 remove_diacritics did
    assert _keyword(_store(tmp_path / "ltm.sqlite3"), "t1", "cafe hikes") == (["café au lait with Hiking friends"], 1)


def test_a_process_behind_a_pruned_change_log_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a reader whose index is warm, and a change log that keeps only 5 entries
    monkeypatch.setattr(sqlite_keyword_index, "LOG_KEEP", 5)
    writer, reader = _store(tmp_path / "ltm.sqlite3"), _store(tmp_path / "ltm.sqlite3")
    _put(writer, "t1", "first heron")
    assert _keyword(reader, "t1", "heron")[1] == 1
    # When more writes than the log keeps happen elsewhere (pruned every 256 writes of the tenant)
    for i in range(300):
        _put(writer, "t1", f"heron number {i}")
    (count,) = writer._conn.execute("SELECT COUNT(*) FROM record_changes").fetchone()
    assert count < 100  # the reader's position was pruned away
    # Then the reader still answers as the file does
    assert _keyword(reader, "t1", "heron")[1] == 301
    assert _keyword(reader, "t1", '"number 299"') == (["heron number 299"], 1)


def test_keyword_statistics_are_per_tenant(tmp_path: Path) -> None:
    # Given the same two records in two tenants
    store = _store(tmp_path / "ltm.sqlite3")
    texts = ("the otter swims in the river", "the otter eats a fish by the river bank")
    for tenant in ("t1", "t2"):
        _put(store, tenant, *texts)
    raw_before = _raw_scores(store, "t1", "otter river fish")
    # When the other tenant stores many records full of the query's words
    _put(store, "t2", *(f"otter river fish {i}" for i in range(200)))
    # Then this tenant's raw BM25 scores have not moved
    assert _raw_scores(store, "t1", "otter river fish") == pytest.approx(raw_before)


def _raw_scores(store: SqliteLongTermStore, tenant: str, text: str) -> list[float]:
    from agent_memory.domain.keywords import parse_keyword_query

    with store._transaction(write=False) as conn:
        query = SearchQuery(tenant=tenant, mode="keyword", text=text)
        found = store._keywords.candidates(conn, query, parse_keyword_query(text), start=0, size=10)
    return [score for _, score in found.hits]
