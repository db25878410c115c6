"""The token bucket every rate limiter applies, as pure arithmetic (no clock, no I/O).

A bucket holds at most `burst` tokens and gains `per_second` of them each second; a request takes one
token or is refused with the time until the next one. The Redis limiter runs the same arithmetic inside
a Lua script (`adapters/redis_rate_limiter.py`), the in-process one calls `take_token`.

    >>> limit = RateLimit(per_second=1.0, burst=2)
    >>> state = BucketState(tokens=2.0, updated_ms=0)
    >>> decision, state = take_token(state, now_ms=0, limit=limit)
    >>> decision.allowed, state.tokens
    (True, 1.0)
    >>> decision, state = take_token(BucketState(tokens=0.5, updated_ms=0), now_ms=0, limit=limit)
    >>> decision.allowed, decision.retry_after
    (False, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`per_second` sustained requests, `burst` at once. Named by the settings that set it."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)) or self.burst < 1:
            raise ValueError(f"a rate limit needs per_second > 0 and burst >= 1, not {self}")

    def describe(self) -> str:
        """The limit as its settings spell it, for the 429's detail."""
        return f"RATE_LIMIT_PER_SECOND={self.per_second:g}, RATE_LIMIT_BURST={self.burst}"

    @property
    def idle_expiry_ms(self) -> int:
        """How long an empty bucket takes to fill again, plus a second: past it a bucket is full, which
        is what an absent one means, so its key can expire."""
        return math.ceil(self.burst * 1000 / self.per_second) + 1000


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until a token is available; 0 when allowed
    remaining: float  # tokens left after this request


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float
    updated_ms: int


def take_token(state: BucketState | None, *, now_ms: int, limit: RateLimit) -> tuple[RateDecision, BucketState]:
    """Refill `state` up to `now_ms`, then take one token if there is one. No state = a full bucket.

    A clock that went backwards (`now_ms` before `updated_ms`) refills nothing and keeps the later stamp,
    so a skewed caller can never mint tokens.
    """
    if state is None:
        state = BucketState(tokens=float(limit.burst), updated_ms=now_ms)
    tokens = state.tokens
    if now_ms > state.updated_ms:
        tokens = min(float(limit.burst), tokens + (now_ms - state.updated_ms) * limit.per_second / 1000)
    stamp = max(now_ms, state.updated_ms)
    if tokens >= 1:
        return RateDecision(True, 0.0, tokens - 1), BucketState(tokens - 1, stamp)
    wait = (1 - tokens) / limit.per_second
    return RateDecision(False, wait, tokens), BucketState(tokens, stamp)
