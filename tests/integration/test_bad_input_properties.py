"""Property-based: generated request bodies and parameters, valid and invalid, through the real app.

Given the app in-process on the embedded SQLite stores with the fake embedder, seeded with a session
and two memories
When hypothesis sends a generated request to any write or read route (huge and negative integers,
NaN/Infinity literals, overflowing numbers, dates at and past year 1 and 9999, lone surrogates,
deep nesting, unaddressable and duplicate ids, alongside ordinary values)
Then the answer is never a 5xx, its body has the documented shape for its status (200: the route's
response model; 422: FastAPI's list; other 4xx: `{"detail": str}`), and after any refused request
every table of every store file is exactly as before.

The request models are also checked alone: any body the decoder lets through is either refused with a
ValidationError or accepted as a model that writes as strict JSON and reads back equal.

Bounded for CI: PROPERTY_EXAMPLES examples per route and model (a few seconds each).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agent_memory.domain.models import MemoryRecord
from agent_memory.domain.search import SearchRequest
from agent_memory.http.app import create_app
from agent_memory.http.json_body import decode_json
from agent_memory.http.schemas import (
    AckResponse,
    CreateMemoryRecordRequest,
    CreateMemoryRecordResponse,
    EditMemoryRecordRequest,
    MemoryPromptResponse,
    MemoryRecordResultsResponse,
    SessionListResponse,
    UpdateWorkingMemory,
    WorkingMemoryResponse,
)
from agent_memory.services.maintenance import ForgetResult
from tests.fixtures.app import make_container

PROPERTY_EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=PROPERTY_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDED_SESSION = "seed-session"
SEEDED_MEMORIES = ("seed-m1", "seed-m2")
# JSON text no Python value serialises to: an overflowing number (json.loads reads it as inf).
OVERFLOW = "__overflowing_number__"


# --- strategies -------------------------------------------------------------------------------------
odd_ints = st.sampled_from([-1, 0, 2**31, 2**31 - 1, 2**53, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1])
ints = st.one_of(st.integers(-3, 200), odd_ints)
odd_floats = st.sampled_from([math.nan, math.inf, -math.inf, OVERFLOW, 5e-324, 1e308, -0.0])
floats = st.one_of(st.floats(-2, 3, allow_nan=False), odd_floats)
odd_text = st.sampled_from(
    ["", " ", " x", "\ud800", "a\udc00b", "\x00", "a\nb", "a/b", "a?b", "a#b", "50%", "..", "é" * 200, "x" * 300]
)
texts = st.one_of(st.text(max_size=12), odd_text)
ids = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,26}", fullmatch=True), st.sampled_from(SEEDED_MEMORIES), odd_text)
# An empty path segment names another route (the session list), not an empty id.
path_ids = ids.filter(bool)
odd_dates = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59.5Z",
        "9999-12-31T23:23:59-01:00",
        "2024-02-30T00:00:00Z",
        "yesterday",
        "2024-06-01",
        1e20,
        -1e20,
        253402300800,
        math.nan,
        OVERFLOW,
    ]
)
dates = st.one_of(st.datetimes().map(lambda d: d.isoformat()), st.integers(-(10**11), 10**11), odd_dates)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.one_of(
    st.dictionaries(st.text(max_size=4), json_values, max_size=3),
    st.sampled_from([31, 32, 33, 300]).map(lambda depth: {"deep": nested(depth - 1)}),
)
tags = st.one_of(st.none(), st.lists(texts, max_size=3), st.sampled_from([["a,b"], "notalist"]))

message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", ""]), "content": texts},
    optional={"id": st.one_of(st.none(), ids), "created_at": dates},
)
record = st.fixed_dictionaries(
    {"text": texts},
    optional={
        "id": ids,
        "session_id": st.one_of(st.none(), ids),
        "namespace": st.one_of(st.none(), texts),
        "user_id": st.one_of(st.none(), texts),
        "topics": tags,
        "entities": tags,
        "memory_type": st.sampled_from(["semantic", "episodic", "message", "bogus"]),
        "access_count": ints,
        "created_at": dates,
        "last_accessed": dates,
        "event_date": st.one_of(st.none(), dates),
        "metadata": json_objects,
        "extraction_strategy_config": json_objects,
    },
)
records = st.lists(record, max_size=3) | record.map(lambda r: [{**r, "id": "same"}, {**r, "id": "same", "text": "b"}])
date_filter = st.fixed_dictionaries(
    {}, optional={op: dates for op in ("gt", "gte", "lt", "lte", "eq", "ne")} | {"between": st.lists(dates, max_size=3)}
)
tag_filter = st.fixed_dictionaries({}, optional={"eq": texts, "any": st.lists(texts, max_size=2), "startswith": texts})
search_body = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.none(), texts),
        "search_mode": st.sampled_from(["semantic", "keyword", "hybrid", "nope"]),
        "limit": ints,
        "offset": ints,
        "hybrid_alpha": floats,
        "distance_threshold": st.one_of(st.none(), floats),
        "recency_boost": st.booleans(),
        "recency_semantic_weight": floats,
        "recency_half_life_created_days": floats,
        "namespace": tag_filter,
        "topics": tag_filter,
        "created_at": date_filter,
        "event_date": date_filter,
    },
)
working_memory_body = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(message, max_size=3),
        "memories": records,
        "data": st.one_of(st.none(), json_objects),
        "context": st.one_of(st.none(), texts),
        "namespace": st.one_of(st.none(), texts),
        "user_id": st.one_of(st.none(), texts),
        "tokens": ints,
        "ttl_seconds": st.one_of(st.none(), ints),
        "long_term_memory_strategy": st.fixed_dictionaries(
            {"strategy": st.sampled_from(["discrete", "custom", "odd"])}, optional={"config": json_objects}
        ),
        "last_accessed": dates,
        "created_at": dates,
    },
)


# --- the app and what it holds -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@pytest.fixture(scope="module")
def api(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_container(data_dir)), raise_server_exceptions=False) as client:
        hello = {"messages": [{"role": "user", "content": "hi"}]}
        seeded = client.put(f"/v1/working-memory/{SEEDED_SESSION}", json=hello)
        assert seeded.status_code == 200, seeded.text
        memories = [{"id": mid, "text": f"fact {mid}"} for mid in SEEDED_MEMORIES]
        created = client.post("/v1/long-term-memory/", json={"memories": memories})
        assert created.status_code == 200, created.text
        yield client


def snapshot(data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of every store file, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for path in sorted((data_dir / "data").glob("*.sqlite3")):
        with sqlite3.connect(path) as db:
            names = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for name in names:
                rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
                tables[f"{path.name}:{name}"] = sorted(rows, key=repr)
    return tables


def encode(body: Any) -> bytes:
    """JSON text as a client could send it, NaN/Infinity literals and lone-surrogate escapes included."""
    text = json.dumps(body, allow_nan=True, ensure_ascii=True)
    return text.replace(f'"{OVERFLOW}"', "1e400").encode()


def strict_json(text: str) -> Any:
    def refuse(literal: str) -> Any:
        raise AssertionError(f"response holds {literal}")

    return json.loads(text, parse_constant=refuse)


def check_answer(response: Any, model: type[BaseModel] | None) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = strict_json(response.text)
    if response.status_code == 200:
        if model is not None:
            model.model_validate(body)
    elif response.status_code == 422:
        assert isinstance(body["detail"], list) and body["detail"], body
        for error in body["detail"]:
            assert isinstance(error["loc"], list) and isinstance(error["msg"], str) and isinstance(error["type"], str)
    else:
        assert 400 <= response.status_code < 500 and isinstance(body["detail"], str), body


def send(
    api: TestClient,
    data_dir: Path,
    method: str,
    url: str,
    body: Any = None,
    *,
    model: type[BaseModel] | None,
    params: dict[str, Any] | None = None,
) -> None:
    before = snapshot(data_dir)
    content = None if body is None else encode(body)
    headers = {"content-type": "application/json"} if content is not None else None
    response = api.request(method, url, content=content, headers=headers, params=params)
    check_answer(response, model)
    if response.status_code >= 400:
        assert snapshot(data_dir) == before, f"{method} {url} answered {response.status_code} but changed a store"


def path_id(value: str) -> str:
    """Percent-encoded, lone surrogates as the bytes a careless client would send (invalid UTF-8)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def query_text(value: Any) -> Any:
    # A query string is bytes; a lone surrogate cannot be sent there as text at all.
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if isinstance(value, str) else value


# --- the properties ---------------------------------------------------------------------------------
@FUZZ
@given(session_id=path_ids, body=working_memory_body, window=st.one_of(st.none(), ints))
def test_working_memory_put(api: TestClient, data_dir: Path, session_id: str, body: Any, window: Any) -> None:
    params = {"context_window_max": window} if window is not None else None
    send(
        api,
        data_dir,
        "PUT",
        f"/v1/working-memory/{path_id(session_id)}",
        body,
        model=WorkingMemoryResponse,
        params=params,
    )


@FUZZ
@given(body=st.fixed_dictionaries({"memories": records}, optional={"deduplicate": st.booleans()}))
def test_long_term_create(api: TestClient, data_dir: Path, body: Any) -> None:
    send(api, data_dir, "POST", "/v1/long-term-memory/", body, model=CreateMemoryRecordResponse)


@FUZZ
@given(body=search_body)
def test_long_term_search(api: TestClient, data_dir: Path, body: Any) -> None:
    send(api, data_dir, "POST", "/v1/long-term-memory/search", body, model=MemoryRecordResultsResponse)


@FUZZ
@given(memory_id=path_ids, body=record)
def test_long_term_patch(api: TestClient, data_dir: Path, memory_id: str, body: Any) -> None:
    send(api, data_dir, "PATCH", f"/v1/long-term-memory/{path_id(memory_id)}", body, model=MemoryRecord)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {"query": texts},
        optional={
            "session": st.fixed_dictionaries(
                {"session_id": st.one_of(ids, st.just(SEEDED_SESSION))},
                optional={"context_window_max": ints, "namespace": texts},
            ),
            "long_term_search": st.one_of(st.booleans(), search_body),
        },
    )
)
def test_memory_prompt(api: TestClient, data_dir: Path, body: Any) -> None:
    send(api, data_dir, "POST", "/v1/memory/prompt", body, model=MemoryPromptResponse)


@FUZZ
@given(
    policy=st.fixed_dictionaries({}, optional={"max_age_days": floats, "budget": ints, "hard_age_multiplier": floats}),
    limit=ints,
)
def test_forget_dry_run(api: TestClient, data_dir: Path, policy: Any, limit: int) -> None:
    # dry_run (the default) deletes nothing, so the stores must be unchanged whatever the answer
    before = snapshot(data_dir)
    response = api.post(
        "/v1/long-term-memory/forget",
        content=encode({"policy": policy}),
        headers={"content-type": "application/json"},
        params={"limit": limit},
    )
    check_answer(response, ForgetResult)
    assert snapshot(data_dir) == before


@FUZZ
@given(
    session_id=st.one_of(path_ids, st.just(SEEDED_SESSION)),
    params=st.fixed_dictionaries(
        {}, optional={"recent_messages_limit": ints, "context_window_max": ints, "namespace": texts}
    ),
    list_params=st.fixed_dictionaries({}, optional={"limit": ints, "offset": ints}),
    memory_id=path_ids,
)
def test_reads_and_deletes_of_what_is_not_there(
    api: TestClient,
    data_dir: Path,
    session_id: str,
    params: dict[str, Any],
    list_params: dict[str, Any],
    memory_id: str,
) -> None:
    safe = {name: query_text(value) for name, value in params.items()}
    send(api, data_dir, "GET", f"/v1/working-memory/{path_id(session_id)}", model=WorkingMemoryResponse, params=safe)
    send(api, data_dir, "GET", "/v1/working-memory/", model=SessionListResponse, params=list_params)
    send(api, data_dir, "GET", f"/v1/long-term-memory/{path_id(memory_id)}", model=MemoryRecord)
    if session_id != SEEDED_SESSION:
        send(api, data_dir, "DELETE", f"/v1/working-memory/{path_id(session_id)}", model=AckResponse)
    if memory_id not in SEEDED_MEMORIES:
        ids = {"memory_ids": [query_text(memory_id)]}
        send(api, data_dir, "DELETE", "/v1/long-term-memory", model=AckResponse, params=ids)


# --- the request models alone ---------------------------------------------------------------------------
REQUEST_MODELS: list[tuple[type[BaseModel], Any]] = [
    (UpdateWorkingMemory, working_memory_body),
    (CreateMemoryRecordRequest, st.fixed_dictionaries({"memories": records})),
    (SearchRequest, search_body),
    (EditMemoryRecordRequest, record),
]


@pytest.mark.parametrize(("model", "bodies"), REQUEST_MODELS, ids=lambda v: getattr(v, "__name__", ""))
def test_request_models_accept_or_refuse_but_never_crash(model: type[BaseModel], bodies: Any) -> None:
    @FUZZ
    @given(body=bodies)
    def check(body: Any) -> None:
        # What the decoder lets through: no NaN/Infinity literal, no lone surrogate
        try:
            value = decode_json(encode(body))
        except json.JSONDecodeError:
            return
        try:
            parsed = model.model_validate(value)
        except ValidationError:
            return
        # Accepted: it writes as strict JSON and reads back as the same model
        assert model.model_validate(strict_json(parsed.model_dump_json())) == parsed

    check()
