"""The user data routes with AUTH_MODE=api_key, over real HTTP: only a `memory:admin` key may export or
delete, and it acts on its own tenant only, even when another tenant holds the same user id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent_memory.domain.auth import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.app import make_container, serve_in_thread

MEMORY = {"memories": [{"id": "m1", "text": "Alice likes tea", "user_id": "alice"}]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[httpx.Client, ApiKeyService]]:
    container = make_container(tmp_path, auth_mode="api_key")
    for live in serve_in_thread(container):
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            yield client, ApiKeyService(container.api_key_store)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_only_an_admin_key_exports_or_deletes_and_only_in_its_tenant(
    server: tuple[httpx.Client, ApiKeyService],
) -> None:
    http, keys = server
    _, acme_writer = keys.create("acme", scopes=[SCOPE_READ, SCOPE_WRITE])
    _, acme_admin = keys.create("acme", scopes=[SCOPE_ADMIN])
    _, other_writer = keys.create("other", scopes=[SCOPE_READ, SCOPE_WRITE])
    _, other_admin = keys.create("other", scopes=[SCOPE_ADMIN])
    # Given alice in both tenants, with the same record id
    for key in (acme_writer, other_writer):
        assert http.post("/v1/long-term-memory/", json=MEMORY, headers=_auth(key)).status_code == 200

    # A key without memory:admin gets 403 on both routes; no key gets 401
    assert http.get("/v1/users/alice/export", headers=_auth(acme_writer)).status_code == 403
    assert http.delete("/v1/users/alice", headers=_auth(acme_writer)).status_code == 403
    assert http.delete("/v1/users/alice").status_code == 401
    # nor may a key name another tenant
    denied = http.delete("/v1/users/alice", headers={**_auth(other_admin), "x-tenant-id": "acme"})
    assert denied.status_code == 403

    # The other tenant's admin deletes its own alice only
    deletion = http.delete("/v1/users/alice", headers=_auth(other_admin))
    assert deletion.status_code == 200 and deletion.json()["tenant"] == "other"
    assert deletion.json()["long_term_memories"] == 1
    assert http.get("/v1/long-term-memory/m1", headers=_auth(other_writer)).status_code == 404
    assert http.get("/v1/long-term-memory/m1", headers=_auth(acme_writer)).status_code == 200
    export = http.get("/v1/users/alice/export", headers=_auth(acme_admin)).json()
    assert export["tenant"] == "acme" and [r["id"] for r in export["long_term_memories"]] == ["m1"]
