"""The one way this package builds a Redis client, shared by every Redis adapter and the container."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def redis_client(url: str, *, timeout_seconds: float = 1.0) -> redis.Redis:
    """A client for a `redis://` or `rediss://` (TLS) URL; credentials come from the URL.

    Each attempt is bounded by `timeout_seconds` to connect and to read; one retry after a short backoff
    covers a connection that went stale while a Lambda sandbox was frozen, and the periodic health check
    finds such connections before a command is sent on them.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        health_check_interval=30,
        decode_responses=True,
    )
