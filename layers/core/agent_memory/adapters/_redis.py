"""The one way this package builds a Redis client, shared by every Redis adapter and the container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

if TYPE_CHECKING:
    from agent_memory.adapters.secrets import RotatingSecret


def redis_client(url: str, *, timeout_seconds: float = 1.0, auth_token: RotatingSecret | None = None) -> redis.Redis:
    """A client for a `redis://` or `rediss://` (TLS) URL; credentials come from the URL, or the AUTH
    token from `auth_token` (REDIS_AUTH_TOKEN_SECRET; the URL may still name an ACL user).

    Each attempt is bounded by `timeout_seconds` to connect and to read; one retry after a short backoff
    covers a connection that went stale while a Lambda sandbox was frozen, and the periodic health check
    finds such connections before a command is sent on them.
    """
    options: dict[str, Any] = {}
    if auth_token is not None:
        provider = SecretCredentialProvider(auth_token, username=unquote(urlsplit(url).username or "") or None)
        options = {"credential_provider": provider, "redis_connect_func": provider.connect}
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        health_check_interval=30,
        decode_responses=True,
        **options,
    )


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
