"""ApiFunction as deployed: AWS_LAMBDA_FUNCTION_NAME set, AUTH_MODE=api_key, keys in DynamoDB (moto's server
over HTTP); the event files of events/ with the key added, through the real handler, Mangum and Powertools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_memory import bootstrap
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.domain.errors import ConfigurationError
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_settings
from tests.fixtures.moto_dynamodb import REGION

REPO = Path(__file__).resolve().parents[2]
HANDLER_FILE = REPO / "functions" / "api" / "api_handler.py"


@pytest.fixture
def deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dynamodb_table: tuple[str, str]
) -> Iterator[tuple[Any, ApiKeyService]]:
    """The handler with the container it would build from its environment on Lambda."""
    endpoint, table = dynamodb_table
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ApiFunction")
    settings = make_settings(
        tmp_path, auth_mode="api_key", api_keys_table=table, dynamodb_endpoint_url=endpoint, aws_region=REGION
    )
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    monkeypatch.setattr(bootstrap, "_container", container)
    module = load_module(HANDLER_FILE)
    monkeypatch.setattr(module, "_asgi", None)  # built again, over this container, on the first invocation
    yield module.handler, ApiKeyService(container.api_key_store)


def event(name: str, **headers: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "events" / name).read_text())
    loaded["headers"] = {**loaded["headers"], **headers}
    return loaded


def test_the_handler_serves_a_key_from_dynamodb_and_refuses_it_once_revoked(deployed: tuple[Any, Any]) -> None:
    handler, keys = deployed
    record, key = keys.create("acme")
    put = handler(event("working_memory_put.json", authorization=f"Bearer {key}"), FakeLambdaContext())
    assert put["statusCode"] == 200, put["body"]
    listed = handler(event("working_memory_list.json", **{"x-api-key": key}), FakeLambdaContext())
    assert listed["statusCode"] == 200
    assert json.loads(listed["body"])["sessions"]  # the session just written, in the key's tenant
    keys.revoke(record.key_id)
    again = handler(event("working_memory_list.json", **{"x-api-key": key}), FakeLambdaContext())
    assert again["statusCode"] == 401
    assert json.loads(again["body"]) == {"detail": "Token has been revoked"}
    assert again["headers"]["www-authenticate"] == "Bearer"


def test_the_handler_without_a_key_is_401_and_health_stays_open(deployed: tuple[Any, Any]) -> None:
    handler, _ = deployed
    missing = handler(event("working_memory_get.json"), FakeLambdaContext())
    assert missing["statusCode"] == 401
    assert json.loads(missing["body"]) == {"detail": "Missing authorization header"}
    assert handler(event("health.json"), FakeLambdaContext())["statusCode"] == 200


def test_another_tenants_key_does_not_see_the_session(deployed: tuple[Any, Any]) -> None:
    handler, keys = deployed
    _, acme = keys.create("acme")
    _, other = keys.create("other")
    assert handler(event("working_memory_put.json", **{"x-api-key": acme}), FakeLambdaContext())["statusCode"] == 200
    got = handler(event("working_memory_get.json", **{"x-api-key": other}), FakeLambdaContext())
    assert got["statusCode"] == 404


def test_auth_disabled_stops_the_api_on_lambda_but_not_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "ApiFunction")
    settings = make_settings(tmp_path)  # ExtractionFunction reads the same settings: they load
    assert settings.auth_mode == "disabled"
    monkeypatch.setattr(bootstrap, "_container", Container(settings, embedder=FakeEmbedder(dimensions=64)))
    module = load_module(HANDLER_FILE)
    monkeypatch.setattr(module, "_asgi", None)
    with pytest.raises(ConfigurationError, match="AUTH_MODE=disabled is refused on Lambda"):
        module.handler(event("health.json"), FakeLambdaContext())
