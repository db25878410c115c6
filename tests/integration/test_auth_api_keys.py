"""AUTH_MODE=api_key through the real app (TestClient): every 401 and 403 on both headers, scopes,
x-tenant-id, the open routes, revocation and expiry seen by the very next request, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_memory.bootstrap import Container
from agent_memory.domain.auth import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from agent_memory.http.app import create_app
from agent_memory.http.security import authenticated_routes, leaf_routes, required_scopes
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_container

SESSION = {"messages": [{"role": "user", "content": "hello", "created_at": "2026-01-01T00:00:00Z"}]}


@pytest.fixture
def container(tmp_path: Path) -> Container:
    return make_container(tmp_path, auth_mode="api_key")


@pytest.fixture
def keys(container: Container) -> ApiKeyService:
    return ApiKeyService(container.api_key_store)


@pytest.fixture
def api(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def api_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


HEADERS = [pytest.param(bearer, id="authorization"), pytest.param(api_key, id="x-api-key")]


def assert_401(response: object, detail: str) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.json() == {"detail": detail}  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"] == "Bearer"  # type: ignore[attr-defined]


@pytest.mark.parametrize("header", HEADERS)
def test_a_key_reads_and_writes_its_tenant(api: TestClient, keys: ApiKeyService, header: object) -> None:
    _, key = keys.create("acme")
    put = api.put("/v1/working-memory/s1", json=SESSION, headers=header(key))  # type: ignore[operator]
    assert put.status_code == 200, put.text
    got = api.get("/v1/working-memory/s1", headers=header(key))  # type: ignore[operator]
    assert got.status_code == 200
    assert [m["content"] for m in got.json()["messages"]] == ["hello"]


def test_a_session_is_invisible_to_another_tenants_key(api: TestClient, keys: ApiKeyService) -> None:
    _, acme = keys.create("acme")
    _, other = keys.create("other")
    assert api.put("/v1/working-memory/s1", json=SESSION, headers=bearer(acme)).status_code == 200
    assert api.get("/v1/working-memory/s1", headers=bearer(other)).status_code == 404
    assert api.get("/v1/working-memory/", headers=bearer(other)).json()["sessions"] == []
    assert api.get("/v1/working-memory/", headers=bearer(acme)).json()["sessions"] == ["s1"]


def test_no_credential_is_401_missing_authorization_header(api: TestClient) -> None:
    assert_401(api.get("/v1/working-memory/"), "Missing authorization header")
    assert_401(api.post("/v1/long-term-memory/search", json={"text": "x"}), "Missing authorization header")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
def test_an_authorization_header_without_a_bearer_token_is_401(api: TestClient, value: str) -> None:
    assert_401(api.get("/v1/working-memory/", headers={"Authorization": value}), "Missing bearer token")


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda key: "not-a-key", id="malformed"),
        pytest.param(lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"), id="wrong-secret"),
        pytest.param(lambda key: "am_0000000000000000_" + key.rsplit("_", 1)[1], id="unknown-id"),
        pytest.param(lambda key: key + "x", id="too-long"),
    ],
)
def test_a_bad_key_is_401_invalid_token(api: TestClient, keys: ApiKeyService, header: object, make_bad: object) -> None:
    _, key = keys.create("acme")
    bad = make_bad(key)  # type: ignore[operator]
    assert_401(api.get("/v1/working-memory/", headers=header(bad)), "Invalid token")  # type: ignore[operator]


@pytest.mark.parametrize("header", HEADERS)
def test_a_revoked_key_is_401_on_the_next_request(api: TestClient, keys: ApiKeyService, header: object) -> None:
    record, key = keys.create("acme")
    assert api.get("/v1/working-memory/", headers=header(key)).status_code == 200  # type: ignore[operator]
    keys.revoke(record.key_id)
    assert_401(api.get("/v1/working-memory/", headers=header(key)), "Token has been revoked")  # type: ignore[operator]


@pytest.mark.parametrize("header", HEADERS)
def test_an_expired_key_is_401_token_has_expired(api: TestClient, keys: ApiKeyService, header: object) -> None:
    _, key = keys.create("acme", expires_in_days=1, now=datetime.now(UTC) - timedelta(days=1, seconds=1))
    assert_401(api.get("/v1/working-memory/", headers=header(key)), "Token has expired")  # type: ignore[operator]


@pytest.mark.parametrize("header", HEADERS)
def test_a_read_only_key_may_read_but_not_write(api: TestClient, keys: ApiKeyService, header: object) -> None:
    _, key = keys.create("acme", scopes=[SCOPE_READ])
    h = header(key)  # type: ignore[operator]
    assert api.get("/v1/working-memory/", headers=h).status_code == 200
    assert api.post("/v1/long-term-memory/search", json={"text": "x"}, headers=h).status_code == 200
    for response in (
        api.put("/v1/working-memory/s1", json=SESSION, headers=h),
        api.delete("/v1/working-memory/s1", headers=h),
        api.post("/v1/long-term-memory/", json={"memories": [{"id": "m1", "text": "t"}]}, headers=h),
        api.delete("/v1/long-term-memory", params={"memory_ids": ["m1"]}, headers=h),
    ):
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "This credential lacks the memory:write scope"}


def test_a_write_only_key_may_not_read(api: TestClient, keys: ApiKeyService) -> None:
    _, key = keys.create("acme", scopes=[SCOPE_WRITE])
    assert api.put("/v1/working-memory/s1", json=SESSION, headers=bearer(key)).status_code == 200
    for response in (
        api.get("/v1/working-memory/s1", headers=bearer(key)),
        api.post("/v1/long-term-memory/search", json={"text": "x"}, headers=bearer(key)),
        api.post("/v1/memory/prompt", json={"query": "x"}, headers=bearer(key)),
    ):
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "This credential lacks the memory:read scope"}


@pytest.mark.parametrize("header", HEADERS)
def test_x_tenant_id_may_only_repeat_the_keys_tenant(api: TestClient, keys: ApiKeyService, header: object) -> None:
    _, key = keys.create("acme")
    h = header(key)  # type: ignore[operator]
    assert api.get("/v1/working-memory/", headers={**h, "x-tenant-id": "acme"}).status_code == 200
    other = api.get("/v1/working-memory/", headers={**h, "x-tenant-id": "other"})
    assert other.status_code == 403
    assert other.json() == {"detail": "x-tenant-id names a tenant this credential does not belong to"}
    bad = api.get("/v1/working-memory/", headers={**h, "x-tenant-id": "a/b"})
    assert bad.status_code == 400
    assert "x-tenant-id header" in bad.json()["detail"]


def test_health_docs_and_openapi_are_open_but_deep_health_needs_a_key(api: TestClient, keys: ApiKeyService) -> None:
    for path in ("/", "/v1/health", "/docs", "/openapi.json"):
        assert api.get(path).status_code == 200, path
    assert_401(api.get("/v1/health", params={"deep": "true"}), "Missing authorization header")
    _, key = keys.create("acme", scopes=[SCOPE_READ])
    assert api.get("/v1/health", params={"deep": "true"}, headers=bearer(key)).status_code == 200


def test_every_v1_route_but_health_needs_a_principal_and_declares_its_scope(api: TestClient) -> None:
    app = api.app
    routes = list(authenticated_routes(app))  # type: ignore[arg-type]
    every_v1 = {(r.path, m) for r in leaf_routes(app.router.routes) for m in r.methods if r.path.startswith("/v1/")}
    assert len(every_v1) > 20
    covered = {(r.path, m) for r in routes for m in r.methods}
    assert every_v1 - covered == {("/v1/health", "GET")}  # open; its deep check asks for a principal itself
    for route in routes:
        if route.path.startswith("/v1/working-memory"):
            continue  # the one WorkingMemoryCall dependency checks the scope by method (tested above)
        scopes = required_scopes(route)
        assert scopes, f"{route.methods} {route.path} declares no scope"
        assert scopes <= {SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN}


def test_openapi_documents_both_schemes_401_403_and_x_tenant_id(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer"},
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    search = schema["paths"]["/v1/long-term-memory/search"]["post"]
    assert search["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert {"400", "401", "403"} <= set(search["responses"])
    assert any(p["name"] == "x-tenant-id" and p["in"] == "header" for p in search["parameters"])
    get_session = schema["paths"]["/v1/working-memory/{session_id}"]["get"]
    assert {"401", "403"} <= set(get_session["responses"])
    health = schema["paths"]["/v1/health"]["get"]
    assert health["security"][0] == {}  # open; deep=true needs a credential
