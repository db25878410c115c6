"""The ApiKeyStore contract, run on the SQLite store and on the DynamoDB store against moto's server over
real HTTP (`endpoint_url`), through both of its clients (the standard library's JSON client, chosen when
the credentials are in the environment, and boto3's), plus what each does when its backend fails."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_memory.adapters._aws import boto3_client
from agent_memory.adapters._aws_json import AwsJsonClient
from agent_memory.adapters.dynamodb_api_keys import DynamoDbApiKeyStore
from agent_memory.adapters.sqlite_api_keys import SqliteApiKeyStore
from agent_memory.domain.api_keys import ApiKey
from agent_memory.domain.errors import AuthenticationError, ConflictError, DependencyUnavailableError, NotFoundError
from agent_memory.services.auth import ApiKeyService
from tests.fixtures.moto_dynamodb import REGION
from tests.fixtures.redis_process import free_port

T0 = datetime(2026, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "dynamodb", "dynamodb-boto3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return SqliteApiKeyStore(tmp_path / "api_keys.sqlite3")
    endpoint, table = request.getfixturevalue("dynamodb_table")
    client = None
    if request.param == "dynamodb-boto3":
        client = boto3_client("dynamodb", region=REGION, timeout_seconds=2.0, endpoint_url=endpoint)
    store = DynamoDbApiKeyStore(table, region=REGION, endpoint_url=endpoint, timeout_seconds=2.0, client=client)
    expected = AwsJsonClient if request.param == "dynamodb" else type(client)
    assert isinstance(store._dynamodb.get(), expected)
    return store


def key(key_id: str, tenant: str = "acme", **fields: Any) -> ApiKey:
    values: dict[str, Any] = {"name": "ci", "scopes": frozenset({"memory:read"}), "created_at": T0,
                              "secret_hash": "ab" * 32}  # fmt: skip
    values.update(fields)
    return ApiKey(key_id=key_id, tenant=tenant, **values)


def test_a_created_key_reads_back_whole(store: Any) -> None:
    scopes = frozenset({"memory:read", "memory:admin"})
    stored = key("0000000000000001", expires_at=T0 + timedelta(days=3), scopes=scopes)
    store.create(stored)
    assert store.get("0000000000000001") == stored
    assert store.get("000000000000000f") is None


def test_a_key_id_is_created_once(store: Any) -> None:
    store.create(key("0000000000000001"))
    with pytest.raises(ConflictError):
        store.create(key("0000000000000001", tenant="other"))
    assert store.get("0000000000000001").tenant == "acme"


def test_keys_list_oldest_first_for_all_or_one_tenant(store: Any) -> None:
    store.create(key("0000000000000002", created_at=T0 + timedelta(seconds=2)))
    store.create(key("0000000000000001", created_at=T0 + timedelta(seconds=1)))
    store.create(key("0000000000000003", tenant="other", created_at=T0))
    assert [k.key_id for k in store.list_keys()] == ["0000000000000003", "0000000000000001", "0000000000000002"]
    assert [k.key_id for k in store.list_keys("acme")] == ["0000000000000001", "0000000000000002"]
    assert store.list_keys("nobody") == []


def test_revoke_keeps_the_key_marked_and_the_first_time(store: Any) -> None:
    store.create(key("0000000000000001"))
    revoked = store.revoke("0000000000000001", T0 + timedelta(hours=1))
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    again = store.revoke("0000000000000001", T0 + timedelta(hours=2))
    assert again.revoked_at == T0 + timedelta(hours=1)
    assert store.get("0000000000000001") == replace(key("0000000000000001"), revoked_at=T0 + timedelta(hours=1))
    with pytest.raises(NotFoundError):
        store.revoke("000000000000000f", T0)


def test_touch_records_the_last_use(store: Any) -> None:
    store.create(key("0000000000000001"))
    store.touch("0000000000000001", T0 + timedelta(minutes=5))
    assert store.get("0000000000000001").last_used_at == T0 + timedelta(minutes=5)


def test_the_service_over_the_store_verifies_then_refuses_after_revoke(store: Any) -> None:
    keys = ApiKeyService(store)
    record, secret = keys.create("acme", name="ci")
    assert keys.verify(secret).tenant == "acme"
    assert store.get(record.key_id).last_used_at is not None
    keys.revoke(record.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.verify(secret)


def test_dynamodb_unreachable_is_503_within_its_timeout(aws_env: None) -> None:
    store = DynamoDbApiKeyStore("t", region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    with pytest.raises(DependencyUnavailableError, match="api_keys unavailable: DynamoDB get_item failed"):
        store.get("0000000000000001")


def test_dynamodb_missing_table_is_503_naming_the_error(moto_sqs_endpoint: str, aws_env: None) -> None:
    store = DynamoDbApiKeyStore("no-such-table", region=REGION, endpoint_url=moto_sqs_endpoint)
    with pytest.raises(DependencyUnavailableError, match="ResourceNotFoundException"):
        store.get("0000000000000001")


def test_sqlite_store_failure_is_503(tmp_path: Path) -> None:
    store = SqliteApiKeyStore(tmp_path / "api_keys.sqlite3")
    store.create(key("0000000000000001"))
    store._db.connection().execute("DROP TABLE api_keys")
    with pytest.raises(DependencyUnavailableError, match="api_keys unavailable: get key failed"):
        store.get("0000000000000001")
