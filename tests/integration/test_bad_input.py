"""Bad input of each class issue 7 found is a 4xx naming the field, and nothing is stored.

Every test runs on both working-memory stores (SQLite and a real redis-server) through the real app;
the ones about what a long-term store can represent also run on the OpenSearch test node.
The generated counterparts are in test_bad_input_properties.py and test_openapi_fuzz.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.bootstrap import Container
from agent_memory.domain.models import MAX_TTL_SECONDS
from agent_memory.domain.validation import INT64_MAX, MAX_ID_BYTES, MAX_JSON_DEPTH, MAX_SEARCH_WINDOW
from agent_memory.http.app import create_app
from tests.fixtures.app import WITH_OPENSEARCH

JSON = {"content-type": "application/json"}
HELLO = [{"role": "user", "content": "hi"}]


def _errors(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = json.loads(response.text, parse_constant=lambda literal: pytest.fail(f"422 body holds {literal}"))
    assert isinstance(body["detail"], list) and body["detail"], body
    return list(body["detail"])


def _locs(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in _errors(response)]


def _nothing_stored(api: TestClient) -> None:
    sessions = api.get("/v1/working-memory/").json()
    memories = api.post("/v1/long-term-memory/search", json={"text": ""}).json()
    assert sessions["total"] == 0 and memories["total"] == 0, (sessions, memories)


def _nested(depth: int) -> dict[str, Any]:
    """A JSON object `depth` levels deep, counting itself: _nested(1) == {"leaf": 1}."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# --- integers beyond what a store holds ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"ttl_seconds": MAX_TTL_SECONDS + 1}, ["body", "ttl_seconds"]),
        ({"ttl_seconds": 2**63}, ["body", "ttl_seconds"]),
        ({"tokens": INT64_MAX + 1}, ["body", "tokens"]),
        ({"memories": [{"text": "t", "access_count": 2**64}]}, ["body", "memories", 0, "access_count"]),
    ],
)
def test_working_memory_integers_past_the_stores_are_422(api: TestClient, body: dict[str, Any], loc: list[Any]) -> None:
    response = api.put("/v1/working-memory/s1", json={"messages": HELLO, **body})
    assert loc in _locs(response)
    assert api.get("/v1/working-memory/s1").status_code == 404
    _nothing_stored(api)


def test_the_longest_ttl_is_stored_by_both_stores(api: TestClient) -> None:
    response = api.put("/v1/working-memory/s1", json={"messages": HELLO, "ttl_seconds": MAX_TTL_SECONDS})
    assert response.status_code == 200, response.text
    assert api.get("/v1/working-memory/s1").json()["ttl_seconds"] == MAX_TTL_SECONDS


@pytest.mark.parametrize(
    ("method", "url", "body", "loc"),
    [
        ("GET", f"/v1/working-memory/?offset={INT64_MAX + 1}", None, ["query", "offset"]),
        ("GET", f"/v1/working-memory/s1?context_window_max={INT64_MAX + 1}", None, ["query", "context_window_max"]),
        ("PUT", f"/v1/working-memory/s1?context_window_max={INT64_MAX + 1}", {}, ["query", "context_window_max"]),
        ("POST", "/v1/long-term-memory/search", {"text": "", "offset": 2**64}, ["body", "offset"]),
        ("POST", "/v1/long-term-memory/search", {"text": "x", "offset": MAX_SEARCH_WINDOW - 9}, ["body", "offset"]),
        ("POST", "/v1/long-term-memory/forget", {"policy": {"budget": 2**64}}, ["body", "policy", "budget"]),
        (
            "POST",
            "/v1/memory/prompt",
            {"query": "q", "session": {"session_id": "s1", "context_window_max": 2**70}},
            ["body", "session", "context_window_max"],
        ),
    ],
)
def test_offsets_counts_and_windows_past_the_stores_are_422(
    api: TestClient, method: str, url: str, body: Any, loc: list[Any]
) -> None:
    assert loc in _locs(api.request(method, url, json=body))


@pytest.mark.parametrize("backend", WITH_OPENSEARCH, indirect=True)
def test_the_deepest_search_page_is_served_by_every_store(api: TestClient) -> None:
    assert api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "x"}]}).status_code == 200
    for mode in ("semantic", "keyword", "hybrid"):
        page = {"text": "x", "search_mode": mode, "limit": 10, "offset": MAX_SEARCH_WINDOW - 10}
        response = api.post("/v1/long-term-memory/search", json=page)
        assert response.status_code == 200, (mode, response.text)
        assert response.json()["memories"] == [] and response.json()["total"] == 1


# --- dates outside what every store represents -----------------------------------------------------
@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.5Z", "9999-12-31T23:59:59-01:00", 1e20, -1e20],
)
def test_dates_outside_year_1_to_9999_are_422_in_every_field(api: TestClient, when: Any) -> None:
    record = {"id": "m1", "text": "t", "event_date": when}
    assert ["body", "memories", 0, "event_date"] in _locs(
        api.post("/v1/long-term-memory/", json={"memories": [record]})
    )
    message = {"role": "user", "content": "hi", "created_at": when}
    assert ["body", "messages", 0, "created_at"] in _locs(
        api.put("/v1/working-memory/s1", json={"messages": [message]})
    )
    search = {"text": "", "created_at": {"gte": when}}
    assert ["body", "created_at", "gte"] in _locs(api.post("/v1/long-term-memory/search", json=search))
    between = {"text": "", "event_date": {"between": ["2020-01-01T00:00:00Z", when]}}
    assert ["body", "event_date", "between", 1] in _locs(api.post("/v1/long-term-memory/search", json=between))
    _nothing_stored(api)


@pytest.mark.parametrize("backend", WITH_OPENSEARCH, indirect=True)
def test_the_first_and_last_representable_dates_round_trip_and_filter(api: TestClient) -> None:
    first, last = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"
    records = [{"id": "old", "text": "the oldest", "event_date": first}, {"id": "new", "text": "the newest",
                                                                            "event_date": last}]  # fmt: skip
    assert api.post("/v1/long-term-memory/", json={"memories": records, "deduplicate": False}).status_code == 200
    assert api.get("/v1/long-term-memory/old").json()["event_date"] == first
    assert api.get("/v1/long-term-memory/new").json()["event_date"] == last
    found = api.post("/v1/long-term-memory/search", json={"text": "", "event_date": {"lt": "0001-01-02T00:00:00Z"}})
    assert [m["id"] for m in found.json()["memories"]] == ["old"]
    found = api.post("/v1/long-term-memory/search", json={"text": "", "event_date": {"gte": last}})
    assert [m["id"] for m in found.json()["memories"]] == ["new"]


# OpenSearch parsed a negative inclusive epoch_millis bound by rounding up and left the date out; the
# adapter now sends half-open integer ranges (see filter_query in opensearch_long_term.py).
@pytest.mark.parametrize("backend", WITH_OPENSEARCH, indirect=True)
def test_an_inclusive_upper_bound_before_1970_matches_the_date_itself(api: TestClient) -> None:
    when = "1969-12-31T23:59:59Z"
    created = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "t", "event_date": when}]})
    assert created.status_code == 200, created.text
    found = api.post("/v1/long-term-memory/search", json={"text": "", "event_date": {"lte": when}}).json()
    assert [m["id"] for m in found["memories"]] == ["m1"]


# --- NaN and Infinity ------------------------------------------------------------------------------
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_422_anywhere_in_a_body(api: TestClient, literal: str) -> None:
    put = api.put("/v1/working-memory/s1", content=f'{{"messages": [], "data": {{"x": [{literal}]}}}}', headers=JSON)
    (error,) = _errors(put)
    assert error["type"] == "json_invalid" and "NaN, Infinity" in error["ctx"]["error"]
    search = api.post("/v1/long-term-memory/search", content=f'{{"text": "", "hybrid_alpha": {literal}}}', headers=JSON)
    assert _errors(search)[0]["type"] == "json_invalid"
    _nothing_stored(api)


def test_an_overflowing_number_is_422_naming_its_field_and_not_echoed(api: TestClient) -> None:
    # 1e400 is valid JSON text that reads as infinity: refused by the field, its input left out of the 422
    response = api.put("/v1/working-memory/s1", content=b'{"data": {"x": 1e400}}', headers=JSON)
    (error,) = _errors(response)
    assert error["loc"] == ["body", "data"] and "finite" in error["msg"] and "input" not in error
    response = api.post("/v1/long-term-memory/search", content=b'{"text": "", "hybrid_alpha": 1e400}', headers=JSON)
    (error,) = _errors(response)
    assert error["loc"] == ["body", "hybrid_alpha"] and "input" not in error
    _nothing_stored(api)


# --- nesting --------------------------------------------------------------------------------------
def test_free_json_nested_deeper_than_the_limit_is_422_naming_the_field(api: TestClient) -> None:
    too_deep = _nested(MAX_JSON_DEPTH + 1)
    put = api.put("/v1/working-memory/s1", json={"data": too_deep})
    assert _locs(put) == [["body", "data"]]
    strategy = {"strategy": "custom", "config": too_deep}
    put = api.put("/v1/working-memory/s1", json={"long_term_memory_strategy": strategy})
    assert _locs(put) == [["body", "long_term_memory_strategy", "config"]]
    for field in ("metadata", "extraction_strategy_config"):
        create = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "t", field: too_deep}]})
        assert _locs(create) == [["body", "memories", 0, field]]
    _nothing_stored(api)


def test_free_json_at_the_limit_is_stored_whole(api: TestClient) -> None:
    deepest = _nested(MAX_JSON_DEPTH)
    assert api.put("/v1/working-memory/s1", json={"data": deepest}).status_code == 200
    assert api.get("/v1/working-memory/s1").json()["data"] == deepest


@pytest.mark.parametrize("backend", WITH_OPENSEARCH, indirect=True)
def test_metadata_at_the_limits_round_trips_on_every_long_term_store(api: TestClient) -> None:
    metadata = {"deep": _nested(MAX_JSON_DEPTH - 1), "big": 10**300, "large": 1e308, "text": "\U0001f600 ok"}
    created = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "t", "metadata": metadata}]})
    assert created.status_code == 200, created.text
    assert api.get("/v1/long-term-memory/m1").json()["metadata"] == metadata


def test_a_body_nested_past_the_parser_limit_is_a_422_not_a_crash(api: TestClient) -> None:
    body = '{"data": ' + '{"k": ' * 300 + "1" + "}" * 300 + "}"
    (error,) = _errors(api.put("/v1/working-memory/s1", content=body, headers=JSON))
    assert error["type"] == "json_invalid"
    _nothing_stored(api)


# --- text that is not Unicode ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "/v1/working-memory/s1", b'{"context": "\\ud800"}'),
        ("PUT", "/v1/working-memory/s1", b'{"messages": [{"role": "user", "content": "a\\udc00b"}]}'),
        ("POST", "/v1/long-term-memory/", b'{"memories": [{"id": "m1", "text": "\\ud83d"}]}'),
        ("POST", "/v1/long-term-memory/", b'{"memories": [{"id": "m1", "text": "\xff\xfe"}]}'),
        ("POST", "/v1/long-term-memory/search", b'{"text": "", "namespace": {"eq": "\\udfff"}}'),
    ],
)
def test_text_that_is_not_unicode_is_422_never_a_retryable_503(
    api: TestClient, method: str, url: str, body: bytes
) -> None:
    response = api.request(method, url, content=body, headers=JSON)
    (error,) = _errors(response)
    assert error["type"] == "json_invalid" and "Unicode" in error["ctx"]["error"]
    assert "retry-after" not in response.headers
    _nothing_stored(api)


# --- ids that could not be addressed afterwards ---------------------------------------------------------
UNADDRESSABLE = [
    "",
    " ",
    " a",
    "a ",
    "a/b",
    "a?b",
    "a#b",
    "50%",
    "a\\b",
    ".",
    "..",
    "a\tb",
    "a\x00",
    "x" * (MAX_ID_BYTES + 1),
    "é" * (MAX_ID_BYTES // 2 + 1),
]


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
def test_a_body_that_is_not_utf8_under_another_content_type_is_422_not_a_500(
    api: TestClient, content_type: str | None
) -> None:
    """FastAPI hands such a body on as bytes; the 422 must not fail writing the rejected input back."""
    headers = {"content-type": content_type} if content_type else {}
    response = api.put("/v1/working-memory/s1", content=b"\xff\xfe", headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert api.get("/v1/working-memory/s1").status_code == 404


@pytest.mark.parametrize("bad_id", UNADDRESSABLE)
def test_unaddressable_ids_are_422_in_every_body(api: TestClient, bad_id: str) -> None:
    create = api.post("/v1/long-term-memory/", json={"memories": [{"id": bad_id, "text": "t"}]})
    assert ["body", "memories", 0, "id"] in _locs(create)
    put = api.put("/v1/working-memory/s1", json={"memories": [{"id": bad_id, "text": "t"}]})
    assert ["body", "memories", 0, "id"] in _locs(put)
    scoped = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "t", "session_id": bad_id}]})
    assert ["body", "memories", 0, "session_id"] in _locs(scoped)
    _nothing_stored(api)


@pytest.mark.parametrize(
    "bad_id", ["%20", "%20a", "a%3Fb", "a%23b", "a%25b", "a%5Cb", "a%09b", "x" * (MAX_ID_BYTES + 1)]
)
def test_unaddressable_ids_in_paths_are_422(api: TestClient, bad_id: str) -> None:
    put = api.put(f"/v1/working-memory/{bad_id}", json={"messages": HELLO})
    assert _locs(put)[0][0] == "path"
    assert _locs(api.get(f"/v1/working-memory/{bad_id}"))[0][0] == "path"
    assert _locs(api.patch(f"/v1/long-term-memory/{bad_id}", json={"text": "t"}))[0][0] == "path"
    _nothing_stored(api)


def test_a_slash_in_a_path_id_never_reaches_a_store(api: TestClient) -> None:
    # %2F is decoded before routing: the request names no route, as it would have after a 200 before
    assert api.put("/v1/working-memory/a%2Fb", json={"messages": HELLO}).status_code in (404, 405)
    _nothing_stored(api)


@pytest.mark.parametrize(
    "good_id",
    ["01JABC", "01M", "01M7YJ9JXNYT9634VD5AHJ8FRV", "user-42:fact.1", "my session", "café", "x" * MAX_ID_BYTES],
)
def test_ordinary_ids_still_work_end_to_end(api: TestClient, good_id: str) -> None:
    from urllib.parse import quote

    assert (
        api.post("/v1/long-term-memory/", json={"memories": [{"id": good_id, "text": f"t {good_id}"}]}).status_code
        == 200
    )
    assert api.get(f"/v1/long-term-memory/{quote(good_id)}").json()["id"] == good_id
    assert api.put(f"/v1/working-memory/{quote(good_id)}", json={"messages": HELLO}).status_code == 200
    assert api.get(f"/v1/working-memory/{quote(good_id)}").json()["session_id"] == good_id


def test_namespaces_with_control_characters_are_422(api: TestClient) -> None:
    assert _locs(api.put("/v1/working-memory/s1", json={"namespace": "a\nb"})) == [["body", "namespace"]]
    create = api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "t", "user_id": "u\x00"}]})
    assert _locs(create) == [["body", "memories", 0, "user_id"]]
    _nothing_stored(api)


# --- duplicate ids in one request ----------------------------------------------------------------------
def test_duplicate_ids_in_one_create_are_422_naming_the_id(api: TestClient) -> None:
    memories = [{"id": "d1", "text": "first"}, {"id": "d2", "text": "other"}, {"id": "d1", "text": "second"}]
    (error,) = _errors(api.post("/v1/long-term-memory/", json={"memories": memories}))
    assert error["loc"] == ["body", "memories"] and "'d1'" in error["msg"] and "0 and 2" in error["msg"]
    _nothing_stored(api)


def test_duplicate_memory_ids_in_one_working_memory_put_are_422(api: TestClient) -> None:
    memories = [{"id": "d1", "text": "first"}, {"id": "d1", "text": "second"}]
    (error,) = _errors(api.put("/v1/working-memory/s1", json={"messages": HELLO, "memories": memories}))
    assert error["loc"] == ["body", "memories"] and "'d1'" in error["msg"]
    _nothing_stored(api)


# --- the shape of every error ---------------------------------------------------------------------------
def test_an_unexpected_error_is_a_json_500_and_is_logged(
    container: Container, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug, not bad input")

    monkeypatch.setattr(container.long_term_service, "get", broken)
    with TestClient(create_app(container), raise_server_exceptions=False) as api, caplog.at_level(logging.ERROR):
        response = api.get("/v1/long-term-memory/m1")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal server error"}
    assert any(record.exc_info and "a bug, not bad input" in str(record.exc_info[1]) for record in caplog.records)


def test_a_405_allows_every_method_of_its_path(api: TestClient) -> None:
    response = api.post("/v1/working-memory/s1", json={})
    assert response.status_code == 405 and response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == "DELETE, GET, PUT"
    assert api.put("/v1/long-term-memory/search", json={}).headers["allow"] == "POST"


def test_openapi_declares_each_routes_error_answers(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("/v1/working-memory/{session_id}", "put") == {"200", "400", "413", "422", "503"}
    # 400: an x-tenant-id that is not a valid tenant id (any route that takes the caller's tenant)
    assert statuses("/v1/working-memory/{session_id}", "get") == {"200", "400", "404", "422", "503"}
    assert statuses("/v1/long-term-memory/{memory_id}", "patch") == {"200", "400", "404", "413", "422", "503"}
    assert statuses("/v1/long-term-memory/", "post") == {"200", "400", "413", "422", "503"}
    error = paths["/v1/long-term-memory/{memory_id}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
