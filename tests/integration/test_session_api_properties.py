"""Property-based, as test_bad_input_properties.py (its strategies, app and checks): generated bodies and ids,
valid and invalid, through the session API routes. Never a 5xx; the documented shape for each status; after
any refused request every table of every store file is as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from agent_memory.http.session_schemas import PrimeResponse, SessionResponse
from tests.integration import test_bad_input_properties as properties
from tests.integration.test_bad_input_properties import (
    FUZZ,
    SEEDED_MEMORIES,
    SEEDED_SESSION,
    check_answer,
    dates,
    encode,
    ids,
    ints,
    path_id,
    path_ids,
    snapshot,
    texts,
)

# The same seeded app and data directory, as this module's fixtures.
api, data_dir = properties.api, properties.data_dir

SESSIONS = "/api/v1/working-memory/sessions"
session_ids = st.one_of(path_ids, st.just(SEEDED_SESSION))
tenants = st.one_of(st.just("default"), texts)


def send(api: TestClient, data_dir: Path, method: str, url: str, body: Any = None, *,
         model: type[BaseModel]) -> None:  # fmt: skip
    before = snapshot(data_dir)
    content = None if body is None else encode(body)
    headers = {"content-type": "application/json"} if content is not None else None
    response = api.request(method, url, content=content, headers=headers)
    if response.status_code == 201:  # a create: the route's model, like a 200
        model.model_validate(response.json())
        return
    check_answer(response, model)
    if response.status_code >= 400:
        assert snapshot(data_dir) == before, f"{method} {url} answered {response.status_code} but changed a store"


@FUZZ
@given(body=st.fixed_dictionaries(
    {"session_id": ids},
    optional={"subject": texts, "ttl": ints, "max_items": ints, "tenant_id": tenants},
))
def test_create(api: TestClient, data_dir: Path, body: Any) -> None:
    send(api, data_dir, "POST", SESSIONS, body, model=SessionResponse)


@FUZZ
@given(session_id=session_ids, body=st.fixed_dictionaries(
    {"role": texts, "content": texts},
    optional={"timestamp": dates, "id": ids, "tenant_id": tenants},
))
def test_append(api: TestClient, data_dir: Path, session_id: str, body: Any) -> None:
    send(api, data_dir, "POST", f"{SESSIONS}/{path_id(session_id)}/messages", body, model=SessionResponse)


memory_ids = st.lists(st.one_of(ids, st.sampled_from(SEEDED_MEMORIES)), max_size=4)


@FUZZ
@given(session_id=session_ids, body=st.one_of(memory_ids, st.fixed_dictionaries({"memory_ids": memory_ids}), texts))
def test_prime_and_get(api: TestClient, data_dir: Path, session_id: str, body: Any) -> None:
    send(api, data_dir, "POST", f"{SESSIONS}/{path_id(session_id)}/prime", body, model=PrimeResponse)
    send(api, data_dir, "GET", f"{SESSIONS}/{path_id(session_id)}", model=SessionResponse)
