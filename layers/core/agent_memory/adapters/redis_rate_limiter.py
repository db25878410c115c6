"""Per-principal token buckets in Redis, shared by every Lambda instance and server process.

One Lua script per request: read the bucket, refill it, take a token, write it back with an expiry, in
one round trip and atomically (two instances cannot both take the last token). The bucket is one HASH
(`domain/keys.rate_limit_key`), so the script touches one key and runs on cluster-mode ElastiCache too.

The clock is the Redis server's (`TIME` inside the script), not the caller's: Lambda instances' clocks
drift apart by milliseconds to seconds, and a bucket refilled from two clocks would grant tokens that
were never earned (or withhold earned ones). Scripts are replicated by their effects (the default since
Redis 7), so calling TIME in one is allowed. Tests pass `now_ms` to drive the refill without waiting.
A bucket expires once it would be full again (`RateLimit.idle_expiry_ms`): an idle caller's bucket
vanishes, and an absent bucket is read as a full one, which is exactly what it would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.keys import check_prefix, rate_limit_key
from agent_memory.domain.rate_limit import RateDecision, RateLimit

# KEYS[1] the bucket; ARGV: tokens per second, burst, expiry (ms), now (ms, or "" for the server's TIME).
# Returns {allowed (0/1), tokens left (string: Lua numbers become integers in replies), wait (ms)}.
# The arithmetic is `domain.rate_limit.take_token`'s.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate / 1000)
  stamp = now
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%d', stamp))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return {allowed, string.format('%.17g', tokens), wait}
"""


class RedisRateLimiter:
    """A `RateLimiter` over the process's Redis client (`_redis.redis_client`: its timeouts bound the call).

    >>> limiter = RedisRateLimiter(redis_client("redis://localhost:6379/0"))
    >>> limiter.acquire("acme", "key:k1", RateLimit(per_second=10, burst=20)).allowed
    True
    """

    blocking = True

    def __init__(self, client: Any, *, key_prefix: str = "am") -> None:
        self._prefix = check_prefix(key_prefix)
        self._take = client.register_script(_TAKE)

    def acquire(self, tenant: str, subject: str, limit: RateLimit, *, now_ms: int | None = None) -> RateDecision:
        """Take a token. `now_ms` replaces the server's clock (tests only).

        Raises:
            DependencyUnavailableError: Redis failed or timed out.
        """
        key = rate_limit_key(self._prefix, tenant, subject)
        args = [repr(limit.per_second), limit.burst, limit.idle_expiry_ms, "" if now_ms is None else now_ms]
        with _errors():
            allowed, tokens, wait_ms = self._take(keys=[key], args=args)
        return RateDecision(allowed=bool(int(allowed)), retry_after=int(wait_ms) / 1000, remaining=float(tokens))


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        detail = f"rate limit check failed: {type(exc).__name__}: {exc}"
        raise DependencyUnavailableError("redis", detail[:300]) from exc


__all__ = ["RedisRateLimiter"]
