"""Hash dedup holds under concurrency (issue 7 item 4): N creates of one text at once store one record.

Through the HTTP API (the app in-process, requests concurrent on its thread pool, as under uvicorn), and
on the store port with two SQLite stores on one file, which is what two server workers or the worker
process are to SQLite: separate connections whose writes only the file's lock orders.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore
from agent_memory.bootstrap import Container
from agent_memory.domain.filters import SearchQuery
from agent_memory.domain.models import MemoryRecord
from agent_memory.http.app import create_app
from tests.fixtures.app import make_container

TEXT = "The user's favourite mountain is the Matterhorn"


async def _create_concurrently(container: Container, count: int) -> list[dict[str, object]]:
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *(
                client.post("/v1/long-term-memory/", json={"memories": [{"id": f"m{i:02d}", "text": TEXT}]})
                for i in range(count)
            )
        )
    assert [r.status_code for r in responses] == [200] * count
    return [r.json() for r in responses]


def test_concurrent_creates_of_one_text_store_exactly_one(tmp_path: Path) -> None:
    # Given a server with long-term memory on SQLite
    container = make_container(tmp_path)
    # When 20 clients create the same text under 20 ids at once
    answers = asyncio.run(_create_concurrently(container, 20))
    # Then exactly one record is stored
    stored = [i for a in answers for i in a["stored_ids"]]  # type: ignore[attr-defined]
    assert len(stored) == 1
    (kept,) = stored
    page, total = container.long_term_store.search(SearchQuery(tenant="default", mode="list"))
    assert (total, [r.id for r in page]) == (1, [kept])
    # And every other response says its record was a duplicate of the one kept
    for answer in answers:
        if answer["stored_ids"]:
            assert (answer["duplicate_ids"], answer["duplicate_of"]) == ([], {})
        else:
            (dropped,) = answer["duplicate_ids"]  # type: ignore[misc]
            assert answer["duplicate_of"] == {dropped: kept}


def test_upsert_unique_holds_across_connections_to_one_file(tmp_path: Path) -> None:
    # Given two stores on one file (as two processes would be)
    embedder = FakeEmbedder(64)
    stores = [SqliteLongTermStore(tmp_path / "ltm.sqlite3") for _ in range(2)]
    stores[0].ensure_ready(64)
    records = [MemoryRecord(id=f"r{i:02d}", text=TEXT).model_copy(update={"memory_hash": "same"}) for i in range(20)]
    vector = embedder.embed_documents([TEXT])
    kept: list[str] = []
    barrier = threading.Barrier(len(records))

    def create(i: int) -> None:
        barrier.wait()
        kept.extend(stores[i % 2].upsert_unique("t1", [records[i]], vector))

    # When 20 threads, half on each store, insert the same content at once
    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(records))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then one record exists and every caller was told that one's id
    (winner,) = {r.id for r in stores[1].find_by_hash("t1", "same")}
    assert kept == [winner] * 20
    # And an unrelated hash, the same id again, and a batch with one content twice behave as the port says
    other = MemoryRecord(id="x", text="other").model_copy(update={"memory_hash": "h2"})
    twin = MemoryRecord(id="y", text="other").model_copy(update={"memory_hash": "h2"})
    vectors = embedder.embed_documents(["other", "other"])
    assert stores[0].upsert_unique("t1", [other, twin], vectors) == ["x", "x"]
    assert stores[0].upsert_unique("t1", [other], vectors[:1]) == ["x"]  # replacing itself is no duplicate
    assert stores[0].upsert_unique("t2", [twin], vectors[:1]) == ["y"]  # another tenant is not checked
    for store in stores:
        store.close()
