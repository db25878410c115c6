"""Long-term memory and memory prompt through the HTTP API, in-process (§2 rows 6–13), bad input and faults."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.openai_llm import OpenAILanguageModel
from agent_memory.bootstrap import Container
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.http.app import create_app
from tests.fixtures.app import make_settings


def _record(id_: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"id": id_, "text": text, **fields}


def _create(api: TestClient, *records: dict[str, Any], deduplicate: bool = True) -> dict[str, Any]:
    response = api.post("/v1/long-term-memory/", json={"memories": list(records), "deduplicate": deduplicate})
    assert response.status_code == 200, response.text
    return response.json()


def _search(api: TestClient, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/long-term-memory/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_created_memories_are_searchable_at_once(api: TestClient) -> None:
    _create(api, _record("m1", "User likes green tea", namespace="ns", topics=["food"]))
    found = _search(api, text="green tea", namespace={"eq": "ns"})
    assert [m["id"] for m in found["memories"]] == ["m1"]
    assert found["memories"][0]["memory_type"] == "semantic"  # server-side default
    assert found["memories"][0]["score_type"] == "semantic"
    assert api.get("/v1/long-term-memory/m1").json()["persisted_at"] is not None


def test_exact_duplicates_are_dropped_but_reported(api: TestClient) -> None:
    _create(api, _record("m1", "User likes tea", user_id="u"))
    second = _create(api, _record("m2", "User likes tea", user_id="u"))
    assert second["duplicate_ids"] == ["m2"] and second["stored_ids"] == []
    assert api.get("/v1/long-term-memory/m2").status_code == 404
    assert _search(api, text="")["total"] == 1
    third = _create(api, _record("m3", "User likes tea", user_id="u"), deduplicate=False)
    assert third["stored_ids"] == ["m3"]


def test_same_id_replaces_the_record(api: TestClient) -> None:
    _create(api, _record("m1", "User lives in Paris"))
    _create(api, _record("m1", "User lives in Lyon"))
    assert api.get("/v1/long-term-memory/m1").json()["text"] == "User lives in Lyon"
    assert _search(api, text="")["total"] == 1


def test_search_never_widens_scope_when_nothing_matches(api: TestClient) -> None:
    # AMS drops the namespace filter when a semantic search finds nothing; we never do
    _create(api, _record("m1", "User likes tea", namespace="a"))
    assert _search(api, text="tea", namespace={"eq": "b"}) == {"memories": [], "total": 0, "next_offset": None}


def test_filter_listing_paginates_with_true_totals(api: TestClient) -> None:
    _create(api, *[_record(f"m{i:02d}", f"fact number {i} about apples", user_id="u") for i in range(7)])
    first = _search(api, text="", user_id={"eq": "u"}, limit=3)
    assert first["total"] == 7 and first["next_offset"] == 3 and len(first["memories"]) == 3
    last = _search(api, text="", user_id={"eq": "u"}, limit=3, offset=6)
    assert last["next_offset"] is None and len(last["memories"]) == 1


def test_keyword_and_hybrid_modes(api: TestClient) -> None:
    _create(api, _record("m1", "Caroline went to the LGBTQ support group"), _record("m2", "Melanie paints"))
    keyword = _search(api, text="support group", search_mode="keyword")
    assert keyword["memories"][0]["id"] == "m1" and keyword["memories"][0]["score_type"] == "keyword"
    hybrid = _search(api, text="support group", search_mode="hybrid", hybrid_alpha=0.5)
    assert hybrid["memories"][0]["id"] == "m1" and hybrid["memories"][0]["score_type"] == "hybrid"


def test_patch_changes_text_and_reembeds(api: TestClient) -> None:
    _create(api, _record("m1", "User likes tea"))
    patched = api.patch("/v1/long-term-memory/m1", json={"text": "User loves coffee", "topics": ["drinks"]})
    assert patched.status_code == 200 and patched.json()["topics"] == ["drinks"]
    assert _search(api, text="coffee", distance_threshold=0.7)["memories"][0]["id"] == "m1"
    assert api.patch("/v1/long-term-memory/m1", json={"unknown": 1}).status_code == 400
    assert api.patch("/v1/long-term-memory/nope", json={"text": "x"}).status_code == 404


def test_delete_by_ids_counts_what_existed(api: TestClient) -> None:
    _create(api, _record("m1", "one thing"), _record("m2", "another thing"))
    response = api.delete("/v1/long-term-memory", params=[("memory_ids", "m1"), ("memory_ids", "zz")])
    assert response.json() == {"status": "ok, deleted 1 memories"}
    assert api.delete("/v1/long-term-memory").json() == {"status": "ok, deleted 0 memories"}


def test_forget_defaults_to_dry_run(api: TestClient) -> None:
    old = "2020-01-01T00:00:00Z"
    _create(api, _record("old", "ancient fact", created_at=old, last_accessed=old), _record("new", "fresh fact"))
    _create(api, _record("pinned", "pinned ancient fact", created_at=old, last_accessed=old, pinned=True))
    dry = api.post("/v1/long-term-memory/forget", json={"policy": {"max_age_days": 30}}).json()
    assert dry == {"scanned": 3, "deleted": 1, "deleted_ids": ["old"], "dry_run": True}
    assert api.get("/v1/long-term-memory/old").status_code == 200
    real = api.post("/v1/long-term-memory/forget", params={"dry_run": "false"}, json={"policy": {"max_age_days": 30}})
    assert real.json()["deleted_ids"] == ["old"]
    assert api.get("/v1/long-term-memory/old").status_code == 404


def test_compact_removes_exact_duplicates(api: TestClient) -> None:
    _create(api, _record("a", "same text"), _record("b", "same text"), _record("c", "other"), deduplicate=False)
    assert api.post("/v1/long-term-memory/compact").json() == {"status": "ok, 2 memories remaining after compaction"}


def test_working_memory_memories_are_promoted_on_put(api: TestClient) -> None:
    body = {"namespace": "ns", "user_id": "u", "memories": [{"id": "wm1", "text": "User is vegetarian"}]}
    response = api.put("/v1/working-memory/s1", json=body)
    assert response.headers["x-agent-memory-promotion"] == "promoted"
    stored = response.json()
    assert stored["memories"][0]["persisted_at"] is not None
    record = api.get("/v1/long-term-memory/wm1").json()
    assert (record["session_id"], record["namespace"], record["user_id"]) == ("s1", "ns", "u")


def test_memory_prompt_orders_summary_messages_memories_and_query(api: TestClient) -> None:
    api.put(
        "/v1/working-memory/s1",
        json={"context": "They met before.", "messages": [{"role": "user", "content": "hi"},
                                                          {"role": "tool", "content": "t"}]},
    )
    _create(api, _record("m1", "User likes green tea"))
    body = {"query": "what tea?", "session": {"session_id": "s1", "context_window_max": "4000"},
            "long_term_search": {"limit": 5}}
    prompt = api.post("/v1/memory/prompt", json=body).json()
    texts = [(m["role"], m["content"]["text"]) for m in prompt["messages"]]
    assert texts[0] == ("system", "## A summary of the conversation so far:\nThey met before.")
    assert texts[1:3] == [("user", "hi"), ("assistant", "t")]
    assert texts[3][0] == "system" and "- User likes green tea (ID: m1)" in texts[3][1]
    assert texts[-1] == ("user", "what tea?")
    assert prompt["long_term_memories"][0]["id"] == "m1"
    assert api.post("/v1/memory/prompt", json={"query": "x"}).status_code == 400


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"text": "x", "topics": {"any": []}}, "topics"),
        ({"text": "x", "namespace": {}}, "namespace"),
        ({"text": "x", "namespace": {"startswith": "a", "eq": "b"}}, "namespace"),
        ({"text": "x", "memory_type": {"eq": "dream"}}, "memory_type"),
        ({"text": "x", "created_at": {"between": ["2024-01-01T00:00:00Z"]}}, "created_at"),
        ({"text": "x", "created_at": {"gte": "yesterday"}}, "created_at"),
        ({"text": "x", "limit": 1000}, "limit"),
        ({"text": "x", "hybrid_alpha": 2}, "hybrid_alpha"),
    ],
)
def test_bad_filters_are_422_naming_the_filter(api: TestClient, body: dict[str, Any], where: str) -> None:
    response = api.post("/v1/long-term-memory/search", json=body)
    assert response.status_code == 422
    assert where in response.json()["detail"][0]["loc"]


def test_keyword_search_with_distance_threshold_is_400(api: TestClient) -> None:
    response = api.post(
        "/v1/long-term-memory/search", json={"text": "x", "search_mode": "keyword", "distance_threshold": 0.3}
    )
    assert response.status_code == 400


def test_create_without_id_gets_a_server_assigned_ulid(api: TestClient) -> None:
    # A deliberate difference from AMS (422): a curl user need not invent ids
    outcome = _create(api, {"text": "User likes jazz"}, {"text": "User plays piano"})
    assert len(outcome["stored_ids"]) == 2
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in outcome["stored_ids"])
    assert api.get(f"/v1/long-term-memory/{outcome['stored_ids'][0]}").json()["text"] == "User likes jazz"


def test_create_with_blank_text_or_a_comma_in_a_topic_is_422(api: TestClient) -> None:
    assert api.post("/v1/long-term-memory/", json={"memories": [{"id": "a", "text": " "}]}).status_code == 422
    comma = {"memories": [{"id": "a", "text": "x", "topics": ["a,b"]}]}
    assert api.post("/v1/long-term-memory/", json=comma).status_code == 422


def test_unknown_id_is_404(api: TestClient) -> None:
    response = api.get("/v1/long-term-memory/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Memory with ID nope not found"}


def test_oversized_text_and_batch_are_413_with_the_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_memory_text_chars=50, max_memories_per_request=2)
    with TestClient(create_app(Container(settings, embedder=FakeEmbedder(), language_model=None))) as client:
        too_long = client.post("/v1/long-term-memory/", json={"memories": [_record("a", "x" * 51)]})
        assert too_long.status_code == 413 and "MAX_MEMORY_TEXT_CHARS" in too_long.json()["detail"]
        batch = [_record(str(i), "short") for i in range(3)]
        too_many = client.post("/v1/long-term-memory/", json={"memories": batch})
        assert too_many.status_code == 413 and "MAX_MEMORIES_PER_REQUEST" in too_many.json()["detail"]


# --- faults ---------------------------------------------------------------------------------------


class BrokenEmbedder(FakeEmbedder):
    """Works until `broken` is set, then fails as a timed-out embedding service would."""

    broken = False

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self.broken:
            raise DependencyUnavailableError("embedder", "timed out after 10s")
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        if self.broken:
            raise DependencyUnavailableError("embedder", "timed out after 10s")
        return super().embed_query(text)


def test_embedder_down_is_503_and_nothing_is_half_written(tmp_path: Path) -> None:
    embedder = BrokenEmbedder()
    container = Container(make_settings(tmp_path), embedder=embedder, language_model=None)
    with TestClient(create_app(container)) as client:
        _create(client, _record("keep", "existing memory"))
        embedder.broken = True
        response = client.post("/v1/long-term-memory/", json={"memories": [_record("a", "one"), _record("b", "two")]})
        assert response.status_code == 503
        assert response.json()["detail"] == "embedder unavailable: timed out after 10s"
        assert client.post("/v1/long-term-memory/search", json={"text": "one"}).status_code == 503
        assert client.patch("/v1/long-term-memory/keep", json={"text": "changed"}).status_code == 503
        # the listing needs no embedding: only the record written before the fault exists, unchanged
        listing = client.post("/v1/long-term-memory/search", json={"text": ""}).json()
        assert [(m["id"], m["text"]) for m in listing["memories"]] == [("keep", "existing memory")]
        # a working-memory PUT still succeeds; its memories wait, unpersisted, for the next PUT
        put = client.put("/v1/working-memory/s1", json={"memories": [{"id": "wm", "text": "User is tall"}]})
        assert put.status_code == 200 and put.json()["memories"][0]["persisted_at"] is None
        assert put.headers["x-agent-memory-promotion"] == "deferred; reason=embedder-unavailable"
        embedder.broken = False
        again = client.put("/v1/working-memory/s1", json=client.get("/v1/working-memory/s1").json())
        assert again.json()["memories"][0]["persisted_at"] is not None
        assert client.get("/v1/long-term-memory/wm").status_code == 200


def test_semantic_duplicates_are_merged_by_the_llm(tmp_path: Path, openai_stub) -> None:  # type: ignore[no-untyped-def]
    openai_stub.script_chat('{"text": "User likes green tea and drinks it every morning"}')
    llm = OpenAILanguageModel(api_key="test", base_url=openai_stub.base_url, model="gpt-4o-mini")
    container = Container(make_settings(tmp_path), embedder=FakeEmbedder(), language_model=llm)
    with TestClient(create_app(container)) as client:
        _create(client, _record("a", "User likes green tea", user_id="u"))
        outcome = _create(client, _record("b", "User likes green tea every morning", user_id="u"))
        assert len(outcome["merged_ids"]) == 1
        listing = client.post("/v1/long-term-memory/search", json={"text": ""}).json()
        assert [m["text"] for m in listing["memories"]] == ["User likes green tea and drinks it every morning"]
        assert listing["memories"][0]["id"] == outcome["merged_ids"][0]


def test_optimize_query_rewrites_with_the_llm_and_falls_back_on_failure(tmp_path: Path, openai_stub) -> None:  # type: ignore[no-untyped-def]
    llm = OpenAILanguageModel(api_key="test", base_url=openai_stub.base_url, model="gpt-4o-mini")
    container = Container(make_settings(tmp_path), embedder=FakeEmbedder(), language_model=llm)
    with TestClient(create_app(container)) as client:
        _create(client, _record("m1", "User drinks green tea"), deduplicate=False)
        # Given the LLM rewrites a chatty question into the words the memory uses
        openai_stub.script_chat("green tea")
        body = {"text": "hey so what is it that I usually like to have in the morning?", "distance_threshold": 0.5}
        found = client.post("/v1/long-term-memory/search", params={"optimize_query": "true"}, json=body).json()
        assert [m["id"] for m in found["memories"]] == ["m1"]
        assert "usually like to have" in openai_stub.requests[-1][1]["messages"][0]["content"]
        # When the LLM fails, the original text is searched and the request still succeeds
        openai_stub.script_chat({"status": 500}, {"status": 500})
        response = client.post("/v1/long-term-memory/search", params={"optimize_query": "true"}, json=body)
        assert response.status_code == 200 and response.json()["memories"] == []


def test_compact_merges_near_duplicates_through_the_llm(tmp_path: Path, openai_stub) -> None:  # type: ignore[no-untyped-def]
    llm = OpenAILanguageModel(api_key="test", base_url=openai_stub.base_url, model="gpt-4o-mini")
    container = Container(make_settings(tmp_path), embedder=FakeEmbedder(), language_model=llm)
    with TestClient(create_app(container)) as client:
        # Given near-duplicates stored without deduplication, and an unrelated memory
        _create(
            client,
            _record("a", "User likes green tea", user_id="u"),
            _record("b", "User likes green tea a lot", user_id="u"),
            _record("c", "Quarterly revenue grew in Lisbon", user_id="u"),
            deduplicate=False,
        )
        openai_stub.script_chat('{"text": "User likes green tea a lot"}')
        # When the scope is compacted
        status = client.post("/v1/long-term-memory/compact", params={"user_id": "u"}).json()["status"]
        # Then the two became one merged record and the unrelated one is untouched
        assert status == "ok, 2 memories remaining after compaction"
        listing = client.post("/v1/long-term-memory/search", json={"text": ""}).json()
        texts = sorted(m["text"] for m in listing["memories"])
        assert texts == ["Quarterly revenue grew in Lisbon", "User likes green tea a lot"]
        assert client.get("/v1/long-term-memory/a").status_code == 404
