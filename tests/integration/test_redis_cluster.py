"""Redis Cluster (issue 11): the client REDIS_CLUSTER picks, where a tenant's keys land on a real local
3-node cluster, and the DocumentStore contract on one server, the cluster and SQLite.

The working-memory contract (test_working_memory_stores.py) and the rate limiter's
(test_rate_limit_redis.py) run on the cluster through their parametrized fixtures; the real client's
round trip through `agent-memory serve` is test_redis_cluster_serve.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from agent_memory.adapters._redis import redis_client
from agent_memory.adapters.redis_documents import RedisDocumentStore
from agent_memory.adapters.redis_rate_limiter import RedisRateLimiter
from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore
from agent_memory.adapters.sqlite_documents import SqliteDocumentStore
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import MemoryMessage, SessionKey, WorkingMemory
from agent_memory.domain.rate_limit import RateLimit
from agent_memory.ports import DocumentStore
from tests.fixtures.app import make_container
from tests.fixtures.moto_secrets import SecretsAws
from tests.fixtures.redis_cluster import RedisClusterNodes, running_redis_cluster
from tests.fixtures.redis_process import free_port

pytestmark = pytest.mark.redis


# --- which client ---------------------------------------------------------------------------------


def test_auto_asks_the_server_and_picks_a_cluster_client_for_a_cluster(redis_cluster_url: str) -> None:
    client = redis_client(redis_cluster_url, cluster=None)
    try:
        assert isinstance(client, RedisCluster)
        assert len(client.get_primaries()) == 3
    finally:
        client.close()


def test_auto_keeps_a_standalone_client_for_one_server(redis_url: str) -> None:
    client = redis_client(redis_url, cluster=None)
    try:
        assert type(client) is redis.Redis
        assert client.ping()
    finally:
        client.close()


def test_a_cluster_url_may_name_database_0_but_no_other(redis_cluster_url: str) -> None:
    client = redis_client(f"{redis_cluster_url}/0", cluster=True)
    client.close()
    with pytest.raises(ValueError, match="only database 0"):
        redis_client(f"{redis_cluster_url}/2", cluster=True)


def test_the_container_builds_one_cluster_client_from_settings(redis_cluster_url: str, tmp_path: Path) -> None:
    # Given the settings of a deployment on ElastiCache Serverless (REDIS_CLUSTER left at auto)
    container = make_container(tmp_path, redis_url=redis_cluster_url)
    key = SessionKey(tenant="acme", session_id="s1", user_id="u1")

    # When working memory, documents and the rate limiter are used
    hello = [MemoryMessage(role="user", content="hi")]
    container.working_memory_store.put(key, WorkingMemory(session_id="s1", messages=hello))
    container.document_store.put("acme", "view", "v1", "{}")
    decision = container.rate_limiter.acquire("acme", "key:k1", RateLimit(per_second=1, burst=1))

    # Then they share one cluster client and each works
    assert isinstance(container.built("_redis_client"), RedisCluster)
    stored = container.working_memory_store.get(key)
    assert stored is not None and [m.content for m in stored.messages] == ["hi"]
    assert container.document_store.list_documents("acme", "view") == ["{}"]
    assert decision.allowed
    container.close()


def test_auto_with_no_server_is_a_503_and_asks_again_next_time(tmp_path: Path) -> None:
    container = make_container(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}", redis_timeout_seconds=0.2)

    for _ in range(2):  # nothing half-built is cached: the second call asks the server again
        with pytest.raises(DependencyUnavailableError) as raised:
            container.working_memory_store.get(SessionKey(tenant="acme", session_id="s1"))
        assert raised.value.dependency == "redis"


def test_a_standalone_client_on_a_cluster_fails_as_a_dependency_error_not_a_wrong_answer(
    redis_cluster: RedisClusterNodes, redis_cluster_url: str, tmp_path: Path
) -> None:
    # Given REDIS_CLUSTER=false against a cluster: most tenants' slots live on another node (MOVED)
    container = make_container(tmp_path, redis_url=redis_cluster_url, redis_cluster="false")
    tenants = [f"tenant-{i}" for i in range(12)]
    failures = 0
    for tenant in tenants:
        try:
            container.working_memory_store.put(SessionKey(tenant=tenant, session_id="s"), WorkingMemory(session_id="s"))
        except DependencyUnavailableError as exc:
            assert "MovedError" in exc.detail
            failures += 1
    # Then those writes are refused (a 503 naming the redirection), never written to the wrong node
    assert 0 < failures < len(tenants)
    container.close()


# --- the slot rule --------------------------------------------------------------------------------


def _keys_per_node(cluster: RedisClusterNodes) -> list[set[str]]:
    found = []
    for client in cluster.node_clients():
        found.append({k.decode() for k in client.scan_iter(count=1000)})
        client.close()
    return found


def test_every_key_of_a_tenant_is_in_one_slot_and_tenants_spread_over_the_nodes(
    redis_cluster: RedisClusterNodes, redis_cluster_url: str
) -> None:
    # Given sessions (in every index), documents and rate-limit buckets of 12 tenants
    client = redis_client(redis_cluster_url, cluster=True)
    store, documents, limiter = RedisWorkingMemoryStore(client), RedisDocumentStore(client), RedisRateLimiter(client)
    tenants = [f"tenant-{i}" for i in range(12)]
    for tenant in tenants:
        for n, (namespace, user) in enumerate([(None, None), ("ns", None), (None, "u"), ("ns", "u")]):
            key = SessionKey(tenant=tenant, session_id=f"s{n}", namespace=namespace, user_id=user)
            store.append_messages(key, [MemoryMessage(role="user", content="hello")], ttl_seconds=600)
        documents.put(tenant, "view", "v1", "{}", ttl_seconds=600)
        limiter.acquire(tenant, "key:k1", RateLimit(per_second=1, burst=2))

    # Then each tenant's keys all hash to one slot (so every script and transaction of the tenant is
    # legal on a cluster), and the tenants land on every node (so the cluster is really exercised)
    slots: dict[str, set[int]] = {}
    for key_name in client.scan_iter(count=1000):
        tenant = key_name.split("{", 1)[1].split("}", 1)[0]
        slots.setdefault(tenant, set()).add(client.keyslot(key_name))
    assert sorted(slots) == sorted(tenants)
    assert all(len(s) == 1 for s in slots.values())
    assert all(keys_on_node for keys_on_node in _keys_per_node(redis_cluster))
    client.close()


# --- the DocumentStore contract -------------------------------------------------------------------


@pytest.fixture(params=["redis", "redis-cluster", "sqlite"])
def documents(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "sqlite":
        store: DocumentStore = SqliteDocumentStore(tmp_path / "documents.sqlite3")
    else:
        cluster = request.param == "redis-cluster"
        url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
        store = RedisDocumentStore.from_url(url, cluster=cluster)
    yield store
    store.close()  # type: ignore[attr-defined]


def test_documents_round_trip_and_list_by_tenant_and_kind(documents: DocumentStore) -> None:
    documents.put("t1", "view", "b", '{"n": 2}')
    documents.put("t1", "view", "a", '{"n": 1}')
    documents.put("t1", "task", "a", '{"task": 1}')
    documents.put("t2", "view", "a", '{"other": 1}')

    assert documents.get("t1", "view", "a") == '{"n": 1}'
    assert documents.get("t1", "view", "zz") is None
    assert sorted(documents.list_documents("t1", "view")) == ['{"n": 1}', '{"n": 2}']
    assert documents.list_documents("t2", "view") == ['{"other": 1}']
    assert documents.list_documents("t3", "view") == []


def test_a_put_replaces_the_document_and_its_ttl(documents: DocumentStore) -> None:
    documents.put("t1", "view", "a", "old", ttl_seconds=600)
    documents.put("t1", "view", "a", "new")

    assert documents.get("t1", "view", "a") == "new"
    assert documents.list_documents("t1", "view") == ["new"]


def test_delete_removes_documents_and_counts_those_that_existed(documents: DocumentStore) -> None:
    for doc_id in ("a", "b", "c"):
        documents.put("t1", "view", doc_id, doc_id)
    documents.put("t2", "view", "a", "kept")

    assert documents.delete("t1", "view", ["a", "b", "missing"]) == 2
    assert documents.delete("t1", "view", []) == 0

    assert documents.list_documents("t1", "view") == ["c"]
    assert documents.get("t2", "view", "a") == "kept"


def test_delete_of_many_documents_at_once(documents: DocumentStore) -> None:
    ids = [f"d{i}" for i in range(2500)]  # more than one Lua unpack can take in one call
    for doc_id in ids:
        documents.put("t1", "task", doc_id, "{}")

    assert documents.delete("t1", "task", ids) == len(ids)
    assert documents.list_documents("t1", "task") == []


# --- AUTH from a secret on a cluster ----------------------------------------------------------------


@pytest.fixture
def secrets(secrets_aws: SecretsAws) -> Any:
    """Secrets Manager on moto's server, reached as a function reaches it (tests/fixtures/moto_secrets.py)."""
    return secrets_aws.sm


def test_a_cluster_with_auth_takes_the_token_from_the_secret_and_a_rotated_one_after_wrongpass(
    secrets: Any, tmp_path: Path
) -> None:
    # Given a cluster whose nodes require token-1 (as ElastiCache Serverless requires its user's password)
    secrets.create_secret(Name="redis-token", SecretString="token-1")
    with running_redis_cluster(tmp_path / "cluster", password="token-1") as cluster:
        container = make_container(tmp_path, redis_url=cluster.url, redis_auth_token_secret="redis-token")
        store = container.working_memory_store
        tenants = [f"tenant-{i}" for i in range(6)]  # on every node
        for tenant in tenants:
            store.put(SessionKey(tenant=tenant, session_id="s1"), WorkingMemory(session_id="s1"))
        assert isinstance(container.built("_redis_client"), RedisCluster)

        # When the token is rotated on every node and in the secret, and every connection is dropped
        secrets.put_secret_value(SecretId="redis-token", SecretString="token-2")
        for node in cluster.node_clients():
            node.config_set("requirepass", "token-2")
            node.config_set("masterauth", "token-2")
            node.client_kill_filter(_type="normal", skipme=True)
            node.close()

        # Then every tenant's session is read on every node: WRONGPASS, one refetch, token-2
        assert all(store.get(SessionKey(tenant=t, session_id="s1")) is not None for t in tenants)
        container.close()
