"""The Redis token bucket against a real redis-server and a 3-node cluster: burst then refusal, refill,
sharing, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agent_memory.adapters._redis import redis_client
from agent_memory.adapters.redis_rate_limiter import RedisRateLimiter
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.keys import rate_limit_key
from agent_memory.domain.rate_limit import RateLimit
from tests.fixtures.redis_server import running_redis_server

LIMIT = RateLimit(per_second=2.0, burst=3)
T0 = 1_700_000_000_000  # an injected server time, in ms


@pytest.fixture(params=["redis", "redis-cluster"])
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A client of one server, or of the local 3-node Redis Cluster (a RedisCluster: issue 11)."""
    cluster = request.param == "redis-cluster"
    c = redis_client(request.getfixturevalue("redis_cluster_url" if cluster else "redis_url"), cluster=cluster)
    yield c
    c.close()


def test_the_burst_passes_then_the_next_request_is_refused_with_the_wait(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client)

    decisions = [limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == pytest.approx(0.5)
    assert decisions[2].remaining == 0


def test_tokens_refill_with_time_and_never_past_the_burst(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client)
    for _ in range(3):
        limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0)

    assert limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0 + 500).allowed  # one token earned
    assert not limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0 + 500).allowed

    later = T0 + 3_600_000
    assert [limiter.acquire("acme", "key:k1", LIMIT, now_ms=later).allowed for _ in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip


def test_two_instances_share_one_bucket(redis_url: str) -> None:
    # Given two Lambda instances, each with its own client (its own connections)
    first, second = redis_client(redis_url), redis_client(redis_url)
    try:
        a, b = RedisRateLimiter(first), RedisRateLimiter(second)

        # When they serve the same caller alternately
        allowed = [limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0).allowed for limiter in (a, b, a, b)]
    finally:
        first.close()
        second.close()

    # Then the caller got the burst once between them, not once per instance
    assert allowed == [True, True, True, False]


def test_an_earlier_clock_on_another_caller_mints_no_tokens(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client)
    for _ in range(3):
        limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0)

    assert not limiter.acquire("acme", "key:k1", LIMIT, now_ms=T0 - 60_000).allowed


def test_buckets_are_per_tenant_and_subject_under_the_prefix(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client, key_prefix="svc")
    one = RateLimit(per_second=1.0, burst=1)

    assert limiter.acquire("acme", "key:k1", one, now_ms=T0).allowed
    assert not limiter.acquire("acme", "key:k1", one, now_ms=T0).allowed
    assert limiter.acquire("acme", "key:k2", one, now_ms=T0).allowed
    assert limiter.acquire("other", "key:k1", one, now_ms=T0).allowed

    assert sorted(client.scan_iter("*")) == sorted(  # SCAN: on a cluster, of every primary
        rate_limit_key("svc", tenant, subject) for tenant, subject in [("acme", "key:k1"), ("acme", "key:k2"),
                                                                       ("other", "key:k1")]
    )  # fmt: skip


def test_an_idle_bucket_expires_once_it_would_be_full_again(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client)

    limiter.acquire("acme", "key:k1", LIMIT)  # the server's own clock

    ttl_ms = client.pttl(rate_limit_key("am", "acme", "key:k1"))
    assert 0 < ttl_ms <= LIMIT.idle_expiry_ms  # 3 tokens at 2/s: 1.5 s to refill, plus a second


def test_the_servers_clock_drives_the_bucket_when_no_time_is_passed(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client)
    slow = RateLimit(per_second=0.001, burst=2)  # a token per 1000 s: nothing refills during the test

    allowed = [limiter.acquire("acme", "key:k1", slow).allowed for _ in range(3)]

    assert allowed == [True, True, False]


def test_redis_down_is_a_dependency_failure_naming_redis(tmp_path: Path) -> None:
    with running_redis_server(tmp_path) as server:
        client = redis_client(server.url, timeout_seconds=0.5)
        limiter = RedisRateLimiter(client)
        assert limiter.acquire("acme", "key:k1", LIMIT).allowed
        server.kill()

        with pytest.raises(DependencyUnavailableError) as raised:
            limiter.acquire("acme", "key:k1", LIMIT)
        client.close()

    assert raised.value.dependency == "redis"
    assert "rate limit check failed" in raised.value.detail
