"""Per-principal rate limiting, applied once per request right after authentication.

`http/deps.get_principal` calls `enforce_rate_limit` with the authenticated principal; routes that do
not authenticate (health, the root, the OpenAPI document) are never limited. Over the limit is a
`RateLimitedError`: 429, `Retry-After`, and a detail naming the limit's settings and the caller.

When the limiter's Redis fails, the request fails with it (503 with `Retry-After`, like any dependency
failure) rather than passing unlimited; docs/architecture.md ("Rate limiting") gives the reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_memory.domain.errors import RateLimitedError

if TYPE_CHECKING:
    from agent_memory.bootstrap import Container
    from agent_memory.domain.auth import Principal
    from agent_memory.http.blocking import BlockingRunner


async def enforce_rate_limit(container: Container, principal: Principal, run: BlockingRunner) -> None:
    """Take one token from `principal`'s bucket; a no-op when rate limiting is off.

    Raises:
        RateLimitedError: the bucket is empty (429 with `Retry-After`).
        DependencyUnavailableError: the limiter's Redis failed or timed out (503).
    """
    limit = container.settings.rate_limit
    if limit is None:
        return
    limiter = container.rate_limiter
    if limiter.blocking:  # Redis: off the event loop under a server, inline under Lambda
        decision = await run(limiter.acquire, principal.tenant, principal.subject, limit)
    else:
        decision = limiter.acquire(principal.tenant, principal.subject, limit)
    if not decision.allowed:
        raise RateLimitedError(
            limit.describe(),
            decision.retry_after,
            detail=(
                f"rate limit exceeded: {limit.describe()} per principal ({principal.subject}); "
                f"retry after {decision.retry_after:.3g} s"
            ),
        )


__all__ = ["enforce_rate_limit"]
