"""Token buckets in this process's memory: the limiter of `agent-memory serve` without Redis.

Each server process has its own buckets, so `agent-memory serve --workers N` lets a caller through up
to N times the configured rate (README says so); with REDIS_URL set the Redis limiter is shared instead.
The number of buckets is bounded: past `max_buckets` the least recently used one is dropped, which can
only hand its caller a full bucket again (what an idle caller's bucket would be anyway).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from agent_memory.domain.rate_limit import BucketState, RateDecision, RateLimit, take_token


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class InProcessRateLimiter:
    """A `RateLimiter` in a dict. `clock_ms` (monotonic milliseconds) is injectable for tests.

    >>> limiter = InProcessRateLimiter(clock_ms=lambda: 0)
    >>> [limiter.acquire("t", "s", RateLimit(per_second=1, burst=2)).allowed for _ in range(3)]
    [True, True, False]
    """

    blocking = False

    def __init__(self, *, clock_ms: Callable[[], int] = _monotonic_ms, max_buckets: int = 100_000) -> None:
        self._clock_ms = clock_ms
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[str, str], BucketState] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, tenant: str, subject: str, limit: RateLimit) -> RateDecision:
        key = (tenant, subject)
        with self._lock:
            decision, state = take_token(self._buckets.get(key), now_ms=self._clock_ms(), limit=limit)
            self._buckets[key] = state
            self._buckets.move_to_end(key)
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        return decision


__all__ = ["InProcessRateLimiter"]
