"""`/`, the cheap `/v1/health` the AMS client polls, and the deep check that calls each backend."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from agent_memory.http.app import create_app
from tests.fixtures.app import make_container
from tests.fixtures.redis_process import free_port


def test_the_base_url_points_at_the_docs(api: TestClient) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.json()["docs"] == "/docs"
    assert api.get(response.json()["openapi"]).status_code == 200


def test_health_says_which_backends_serve_each_tier(api: TestClient, backend: str) -> None:
    body = api.get("/v1/health").json()
    assert body["backends"] == {
        "working_memory": backend,
        "long_term_memory": "sqlite",
        "embedder": "fake",
        "llm": "off",
        "task_queue": "off",  # no LLM: extraction is off
    }
    assert body["features"]["extraction"] is False
    assert body["checks"] is None  # the cheap check calls nothing


def test_deep_health_says_each_backend_answered(api: TestClient) -> None:
    response = api.get("/v1/health", params={"deep": "true"})
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"working_memory", "long_term_memory", "embedder"}
    assert all(check["ok"] and check["detail"] is None for check in checks.values())


def test_deep_health_is_503_naming_the_backend_that_did_not_answer(tmp_path: Path) -> None:
    # Given a server whose Redis is down
    container = make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.3)
    with TestClient(create_app(container)) as client:
        # Then the cheap check still answers 200, and the deep one names Redis as the failing backend
        assert client.get("/v1/health").status_code == 200
        response = client.get("/v1/health", params={"deep": "true"})
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["working_memory"]["ok"] is False
        # (with REDIS_CLUSTER=auto the store's first connect, which asks the server, is what fails)
        assert checks["working_memory"]["detail"].startswith("redis unavailable: ")
        assert checks["long_term_memory"]["ok"] is True


def test_health_with_long_term_memory_off_probes_only_working_memory(tmp_path: Path) -> None:
    with TestClient(create_app(make_container(tmp_path, long_term_memory=False))) as client:
        body = client.get("/v1/health", params={"deep": "true"}).json()
    assert body["backends"]["long_term_memory"] == "off"
    assert set(body["checks"]) == {"working_memory"}
