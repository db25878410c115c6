"""Rate limiting through the real app with API keys (TestClient), on both limiters: in-process (SQLite
backend) and Redis. A token per 1000 s, so nothing refills while a test runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters._redis import redis_client
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.adapters.redis_rate_limiter import RedisRateLimiter
from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_container, make_settings
from tests.fixtures.redis_server import running_redis_server

LIMITED = {"auth_mode": "api_key", "rate_limit_per_second": 0.001, "rate_limit_burst": 2}
SESSION = {"messages": [{"role": "user", "content": "hello", "created_at": "2026-01-01T00:00:00Z"}]}
DETAIL = "rate limit exceeded: RATE_LIMIT_PER_SECOND=0.001, RATE_LIMIT_BURST=2 per principal (key:"


@pytest.fixture
def container(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Container:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    return make_container(tmp_path, redis_url=redis_url, **LIMITED)


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as client:
        yield client


def key_for(container: Container, tenant: str = "acme") -> dict[str, str]:
    _, key = ApiKeyService(container.api_key_store).create(tenant)
    return {"Authorization": f"Bearer {key}"}


def test_the_burst_passes_then_429_names_the_limit_with_retry_after(api: TestClient, container: Container) -> None:
    headers = key_for(container)

    statuses = [api.put("/v1/working-memory/s1", json=SESSION, headers=headers).status_code,
                api.get("/v1/working-memory/s1", headers=headers).status_code]  # fmt: skip
    refused = api.get("/v1/working-memory/s1", headers=headers)

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith(DETAIL)
    assert int(refused.headers["Retry-After"]) >= 999  # 1000 s per token, none left


def test_each_key_has_its_own_bucket(api: TestClient, container: Container) -> None:
    first, second = key_for(container), key_for(container)
    for _ in range(2):
        api.get("/v1/working-memory/", headers=first)

    assert api.get("/v1/working-memory/", headers=first).status_code == 429
    assert api.get("/v1/working-memory/", headers=second).status_code == 200


def test_every_route_kind_draws_from_the_same_bucket(api: TestClient, container: Container) -> None:
    headers = key_for(container)

    assert api.get("/v1/working-memory/", headers=headers).status_code == 200
    assert api.post("/v1/long-term-memory/search", json={"text": "x"}, headers=headers).status_code == 200
    assert api.post("/v1/long-term-memory/search", json={"text": "x"}, headers=headers).status_code == 429


def test_health_and_refused_credentials_take_no_token(api: TestClient, container: Container) -> None:
    headers = key_for(container)

    health = [api.get("/v1/health").status_code for _ in range(5)]
    unauthenticated = [api.get("/v1/working-memory/").status_code for _ in range(3)]

    assert health == [200] * 5
    assert unauthenticated == [401] * 3
    assert [api.get("/v1/working-memory/", headers=headers).status_code for _ in range(3)] == [200, 200, 429]


def test_without_auth_there_is_no_limit_unless_one_is_set(tmp_path: Path) -> None:
    unlimited = make_container(tmp_path / "a")
    limited = make_container(tmp_path / "b", rate_limit_per_second=0.001, rate_limit_burst=1)

    with TestClient(create_app(unlimited)) as api:
        assert {api.get("/v1/working-memory/").status_code for _ in range(20)} == {200}
    with TestClient(create_app(limited)) as api:
        assert [api.get("/v1/working-memory/").status_code for _ in range(2)] == [200, 429]
        assert "(local)" in api.get("/v1/working-memory/").json()["detail"]


def test_the_limiters_redis_down_is_a_503_not_an_unlimited_pass(tmp_path: Path) -> None:
    # Given working memory on SQLite and a limiter whose Redis has gone away: the limiter alone is down
    with running_redis_server(tmp_path) as server:
        client = redis_client(server.url, timeout_seconds=0.5)
        container = Container(make_settings(tmp_path, **LIMITED), embedder=FakeEmbedder(dimensions=64),
                              language_model=None, rate_limiter=RedisRateLimiter(client))  # fmt: skip
        headers = key_for(container)
        server.kill()

        with TestClient(create_app(container)) as api:
            response = api.get("/v1/working-memory/", headers=headers)
        client.close()

    assert response.status_code == 503
    assert response.json()["detail"].startswith("redis unavailable: rate limit check failed")
    assert response.headers["Retry-After"] == "1"


def test_the_openapi_document_declares_429_on_limited_routes_only(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    assert "429" in paths["/v1/working-memory/{session_id}"]["get"]["responses"]
    assert "429" in paths["/v1/long-term-memory/search"]["post"]["responses"]
    assert "429" not in paths["/v1/health"]["get"]["responses"]
