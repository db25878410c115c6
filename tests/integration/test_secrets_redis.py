"""The Redis AUTH token from Secrets Manager (moto) against a real redis-server with `requirepass`:
requests authenticate with it, a rotation reaches new connections, a missing secret is a 503 naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from tests.fixtures.app import make_container
from tests.fixtures.moto_secrets import SecretsAws
from tests.fixtures.redis_server import RedisServerProcess, running_redis_server

REGION = "us-east-1"
SESSION = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def secrets(secrets_aws: SecretsAws) -> Any:
    """Secrets Manager on moto's server, reached as a function reaches it (tests/fixtures/moto_secrets.py)."""
    return secrets_aws.sm


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServerProcess]:
    with running_redis_server(tmp_path, password="token-1") as process:
        yield process


def api_for(container: Container) -> TestClient:
    return TestClient(create_app(container))


def test_requests_authenticate_with_the_token_from_the_secret(
    secrets: Any, server: RedisServerProcess, tmp_path: Path
) -> None:
    secrets.create_secret(Name="redis-token", SecretString="token-1")
    container = make_container(tmp_path, redis_url=server.url, redis_auth_token_secret="redis-token")

    with api_for(container) as api:
        assert api.put("/v1/working-memory/s1", json=SESSION).status_code == 200
        assert api.get("/v1/working-memory/s1").json()["messages"][0]["content"] == "hello"


def test_a_rotated_token_is_fetched_again_when_the_server_refuses_the_cached_one(
    secrets: Any, server: RedisServerProcess, tmp_path: Path
) -> None:
    # Given a running service that has cached token-1 (max age 300 s)
    secrets.create_secret(Name="redis-token", SecretString="token-1")
    container = make_container(tmp_path, redis_url=server.url, redis_auth_token_secret="redis-token")
    admin = redis.Redis(port=server.port, password="token-1")
    with api_for(container) as api:
        assert api.put("/v1/working-memory/s1", json=SESSION).status_code == 200

        # When the token is rotated on the server and in the secret, and the service's connections are
        # dropped (as a failover or an idle timeout would), so the next request must authenticate anew
        admin.config_set("requirepass", "token-2")
        secrets.put_secret_value(SecretId="redis-token", SecretString="token-2")
        admin.client_kill_filter(_type="normal", skipme=True)
        admin.close()

        # Then the next request works: WRONGPASS with the cached token-1, one refetch, token-2
        response = api.get("/v1/working-memory/s1")

    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["content"] == "hello"


def test_a_token_the_server_refuses_even_after_a_refetch_is_a_503(
    secrets: Any, server: RedisServerProcess, tmp_path: Path
) -> None:
    secrets.create_secret(Name="redis-token", SecretString="not-the-token")
    container = make_container(tmp_path, redis_url=server.url, redis_auth_token_secret="redis-token")

    with api_for(container) as api:
        response = api.get("/v1/working-memory/s1")

    assert response.status_code == 503
    assert response.json()["detail"].startswith("redis unavailable:")
    assert "AuthenticationError" in response.json()["detail"]


def test_a_missing_token_secret_is_a_503_naming_it(secrets: Any, server: RedisServerProcess, tmp_path: Path) -> None:
    container = make_container(tmp_path, redis_url=server.url, redis_auth_token_secret="no-such-token")

    with api_for(container) as api:
        response = api.get("/v1/working-memory/s1")
        health = api.get("/v1/health")

    assert response.status_code == 503
    assert response.json()["detail"].startswith(
        "REDIS_AUTH_TOKEN_SECRET (Secrets Manager secret 'no-such-token') could not be read: ResourceNotFoundException"
    )
    assert health.status_code == 200  # the plain health check touches no backend
