"""The user data routes through ApiFunction's handler (Mangum, the Powertools decorators, inline blocking
calls as on Lambda): the streamed export arrives whole in the API Gateway response, and the deletion's
counts with it. The events are the API Gateway v2 shape of events/, with this route's method and path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mangum import Mangum

from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.domain.models import MemoryRecord
from agent_memory.http.app import create_app
from tests.fixtures.app import make_container

REPO = Path(__file__).resolve().parents[2]


def _event(method: str, path: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((REPO / "events" / "health.json").read_text())
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    return event


def test_export_and_delete_through_the_lambda_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    module = load_module(REPO / "functions" / "api" / "api_handler.py")
    container = make_container(tmp_path)
    monkeypatch.setattr(module, "_asgi", Mangum(create_app(container, inline_blocking_calls=True), lifespan="off"))
    container.long_term_service.create("default", [
        MemoryRecord(id=f"m{i}", text=f"alice fact {i}", user_id="alice") for i in range(3)])

    exported = module.handler(_event("GET", "/v1/users/alice/export"), FakeLambdaContext())
    assert exported["statusCode"] == 200 and exported["headers"]["content-type"] == "application/json"
    body = json.loads(exported["body"])
    assert [r["id"] for r in body["long_term_memories"]] == ["m0", "m1", "m2"]

    deleted = module.handler(_event("DELETE", "/v1/users/alice"), FakeLambdaContext())
    assert deleted["statusCode"] == 200 and json.loads(deleted["body"])["long_term_memories"] == 3
    again = json.loads(module.handler(_event("GET", "/v1/users/alice/export"), FakeLambdaContext())["body"])
    assert again["counts"]["long_term_memories"] == 0
