"""Secrets as a deployed function sees them: Settings from the environment with AWS_LAMBDA_FUNCTION_NAME
set, the real handler (Mangum, Powertools) building its own container, a redis-server with `requirepass`
and the token in Secrets Manager (moto's server, reached as a function reaches it). A missing secret is
the first request's 503 naming it; a plain key in the environment is refused before anything is served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent_memory import bootstrap
from agent_memory.cli import FakeLambdaContext, load_module
from agent_memory.config import get_settings
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.moto_secrets import SecretsAws
from tests.fixtures.redis_server import RedisServerProcess, running_redis_server

REPO = Path(__file__).resolve().parents[2]
HANDLER_FILE = REPO / "functions" / "api" / "api_handler.py"
REGION = "us-east-1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServerProcess]:
    with running_redis_server(tmp_path, password="token-1") as process:
        yield process


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: RedisServerProcess, secrets_aws: SecretsAws
) -> Iterator[Any]:
    """The environment of ApiFunction as template.yaml sets it, and a fresh process-wide container."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": "ApiFunction", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_METRICS_DISABLED": "true",
        "AUTH_MODE": "api_key", "AGENT_MEMORY_DATA_DIR": str(tmp_path / "data"), "REDIS_URL": server.url,
        "REDIS_AUTH_TOKEN_SECRET": "agent-memory/redis-token", "LONG_TERM_MEMORY": "false",
        "EMBEDDING_PROVIDER": "fake",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("OPENAI_API_KEY", "EMBEDDING_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(bootstrap, "_container", None)
    get_settings.cache_clear()
    yield secrets_aws.sm
    get_settings.cache_clear()


def invoke(path: str, key: str) -> dict[str, Any]:
    module = load_module(HANDLER_FILE)
    event = json.loads((REPO / "events" / "working_memory_get.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"], event["queryStringParameters"] = "", {}
    event["headers"]["authorization"] = f"Bearer {key}"
    response: dict[str, Any] = module.handler(event, FakeLambdaContext())
    return response


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_module(HANDLER_FILE)
    monkeypatch.setattr(module, "_asgi", None)  # the handler builds its app from the environment
    return module


@pytest.mark.usefixtures("handler_module")
def test_the_handler_reads_the_redis_token_from_secrets_manager(lambda_env: Any) -> None:
    lambda_env.create_secret(Name="agent-memory/redis-token", SecretString="token-1")
    _, key = ApiKeyService(bootstrap.get_container().api_key_store).create("acme")

    response = invoke("/v1/working-memory/", key)

    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["total"] == 0


@pytest.mark.usefixtures("handler_module")
def test_a_missing_secret_is_the_first_requests_503_naming_it(lambda_env: Any) -> None:
    _, key = ApiKeyService(bootstrap.get_container().api_key_store).create("acme")

    response = invoke("/v1/working-memory/", key)

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["detail"].startswith(
        "REDIS_AUTH_TOKEN_SECRET (Secrets Manager secret 'agent-memory/redis-token') could not be read"
    )


@pytest.mark.usefixtures("handler_module")
@pytest.mark.parametrize(
    ("name", "value", "use"),
    [("OPENAI_API_KEY", "sk-plain", "OPENAI_API_KEY_SECRET"), ("REDIS_URL", "redis://:token-1@127.0.0.1:1/0",
                                                                 "REDIS_AUTH_TOKEN_SECRET")],
)  # fmt: skip
def test_a_plain_secret_in_the_environment_is_refused_before_serving(
    lambda_env: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str, use: str
) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_AUTH_TOKEN_SECRET")

    with pytest.raises(ValidationError, match=f"refused on Lambda: .* set {use}"):
        invoke("/v1/working-memory/", "am_unused")
