"""The one way this package builds a Redis client, shared by every Redis adapter and the container.

Standalone or cluster: ElastiCache Serverless and every cluster-mode-enabled cache are a Redis Cluster,
which a plain client cannot use (each key lives on the shard that owns its slot; a plain client gets
MOVED). `cluster=None` (REDIS_CLUSTER=auto) asks the server once, with `INFO cluster`, when the
client is built (the Container builds it on first use); a standalone server keeps the client that asked
(no extra connection), a cluster one gets a `redis.cluster.RedisCluster` with the same timeouts, TLS
and AUTH. The adapters need nothing
else: every script and multi-key command of theirs stays within one tenant's hash tag (one slot;
`domain/keys.py`), which the cluster client routes to the node that owns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

if TYPE_CHECKING:
    from redis.cluster import RedisCluster

    from agent_memory.adapters.secrets import RotatingSecret

RedisClient = Any  # redis.Redis or redis.cluster.RedisCluster: the adapters use what both offer


def redis_client(
    url: str,
    *,
    timeout_seconds: float = 1.0,
    auth_token: RotatingSecret | None = None,
    cluster: bool | None = False,
) -> RedisClient:
    """A client for a `redis://` or `rediss://` (TLS) URL; credentials come from the URL, or the AUTH
    token from `auth_token` (REDIS_AUTH_TOKEN_SECRET; the URL may still name an ACL user).

    `cluster`: True = a `RedisCluster` (the URL names any one node), False (the default: nothing is
    contacted here) = a standalone client, None = ask the server now (`INFO cluster`), once.

    Each attempt is bounded by `timeout_seconds` to connect and to read; one retry after a short backoff
    covers a connection that went stale while a Lambda sandbox was frozen, and the periodic health check
    finds such connections before a command is sent on them.

    Raises:
        redis.RedisError: with `cluster=None`, when the server cannot be asked (the callers' `_errors`
            or the container turn it into DependencyUnavailableError: a 503).
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "health_check_interval": 30,
        "decode_responses": True,
    }
    if auth_token is not None:
        provider = SecretCredentialProvider(auth_token, username=unquote(urlsplit(url).username or "") or None)
        options |= {"credential_provider": provider, "redis_connect_func": provider.connect}
    if cluster:
        return _cluster_client(url, options)
    client = redis.Redis.from_url(url, retry=_retry(), **options)
    if cluster is None and is_cluster(client):
        client.close()
        return _cluster_client(url, options)
    return client


def async_redis_client(url: str, *, timeout_seconds: float = 1.0, cluster: bool = False) -> Any:
    """A `redis.asyncio` client with the same timeouts, retry and health checks as `redis_client`, for
    reads on an event loop (`RedisSessionReader`). Nothing is contacted here. Its connections belong to
    the event loop that first uses them: build one per loop and `aclose()` it on that loop.

    Credentials come from the URL only: a REDIS_AUTH_TOKEN_SECRET deployment (Lambda, which runs no
    event-loop reads) has no async client (the container then keeps the read on a worker thread).
    """
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio.retry import Retry as AsyncRetry

    options: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "health_check_interval": 30,
        "decode_responses": True,
        "retry": AsyncRetry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
    }
    if cluster:
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

        return AsyncRedisCluster.from_url(_cluster_url(url), **options)
    return AsyncRedis.from_url(url, **options)


def is_cluster_client(client: Any) -> bool:
    """Whether `client` (sync or asyncio) is a cluster client: what REDIS_CLUSTER resolved to, no round trip."""
    return hasattr(client, "get_node_from_key")


def is_cluster(client: redis.Redis) -> bool:
    """Whether the server runs in cluster mode (`cluster_enabled:1` in `INFO cluster`)."""
    info: dict[str, Any] = client.info("cluster")  # type: ignore[assignment]  # redis-py 7 types sync and async alike
    return bool(info.get("cluster_enabled"))


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)


def _cluster_client(url: str, options: dict[str, Any]) -> RedisCluster:
    from redis.cluster import RedisCluster

    url = _cluster_url(url)

    class _Cluster(RedisCluster):
        def on_connect(self, connection: Any) -> None:
            # RedisCluster runs its own handshake and then the connect function; SecretCredentialProvider's
            # connect *is* the handshake (with its one refetch on WRONGPASS), so it runs alone.
            connect = self.user_on_connect_func
            if connect is None or self.read_from_replicas:
                super().on_connect(connection)
            else:
                connect(connection)

    # The retry is the cluster client's own (it may not be given to the nodes' clients); MOVED and ASK
    # redirections after a resharding are followed on top of it.
    return _Cluster.from_url(url, retry=_retry(), **options)


def _cluster_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0; REDIS_URL names {parts.path.strip('/')}")
    # A cluster has no SELECT: drop the database from the URL rather than fail on `/0`.
    return parts._replace(path="").geturl()


class SecretCredentialProvider(CredentialProvider):
    """The AUTH token from a secret, asked for on every new connection (redis-py calls
    `get_credentials` when it opens one), so a rotated token reaches new connections within the
    secret's max age. When the server refuses the cached token (WRONGPASS: rotated before the cache
    expired), `connect` fetches it again past the cache and authenticates once more; a second refusal
    is the client's AuthenticationError, which the adapters turn into a 503.
    """

    def __init__(self, secret: RotatingSecret, *, username: str | None = None) -> None:
        self._secret = secret
        self._username = username

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        token = self._secret.get()
        return (self._username, token) if self._username else (token,)

    def connect(self, connection: Any) -> None:
        """redis-py's `redis_connect_func`: the handshake (AUTH, SELECT...) with one refetch on refusal."""
        if getattr(connection, "_refetched_auth", False):  # the second handshake, below: no third
            connection.on_connect()
            return
        try:
            try:
                connection.on_connect()
            except redis.exceptions.AuthenticationError:
                # redis-py dropped the socket with the refusal: open a new one with the fresh token.
                self._secret.refresh()
                connection.disconnect()
                connection._refetched_auth = True
                try:
                    connection.connect()
                finally:
                    connection._refetched_auth = False
        except Exception:
            # redis-py closes the socket after a RedisError only; an unreadable secret (ConfigurationError)
            # must not leave an open, unauthenticated connection in the pool either.
            connection.disconnect()
            raise
