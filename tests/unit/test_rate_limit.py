"""The token bucket's arithmetic, the in-process limiter, and when the limit is on (Settings)."""

from __future__ import annotations

import pytest

from agent_memory.adapters.memory_rate_limiter import InProcessRateLimiter
from agent_memory.config import Settings
from agent_memory.domain.rate_limit import BucketState, RateLimit, take_token


class FakeClock:
    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        return self.now_ms


def test_a_new_bucket_allows_the_burst_then_refuses_with_the_time_to_the_next_token() -> None:
    limiter = InProcessRateLimiter(clock_ms=FakeClock())
    limit = RateLimit(per_second=2.0, burst=3)

    decisions = [limiter.acquire("t", "key:a", limit) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == pytest.approx(0.5)


def test_tokens_come_back_at_the_configured_rate_and_never_beyond_the_burst() -> None:
    clock = FakeClock()
    limiter = InProcessRateLimiter(clock_ms=clock)
    limit = RateLimit(per_second=2.0, burst=3)
    for _ in range(3):
        limiter.acquire("t", "key:a", limit)

    clock.now_ms += 500  # one token earned
    assert limiter.acquire("t", "key:a", limit).allowed
    assert not limiter.acquire("t", "key:a", limit).allowed

    clock.now_ms += 3_600_000  # an hour idle: full again, but only `burst` deep
    assert [limiter.acquire("t", "key:a", limit).allowed for _ in range(4)] == [True, True, True, False]


def test_buckets_are_per_subject_and_per_tenant() -> None:
    limiter = InProcessRateLimiter(clock_ms=FakeClock())
    limit = RateLimit(per_second=1.0, burst=1)

    assert limiter.acquire("t1", "key:a", limit).allowed
    assert not limiter.acquire("t1", "key:a", limit).allowed

    assert limiter.acquire("t1", "key:b", limit).allowed
    assert limiter.acquire("t2", "key:a", limit).allowed


def test_a_clock_that_goes_backwards_mints_no_tokens() -> None:
    limit = RateLimit(per_second=1.0, burst=5)

    decision, state = take_token(BucketState(tokens=0.0, updated_ms=10_000), now_ms=4_000, limit=limit)

    assert not decision.allowed
    assert state == BucketState(tokens=0.0, updated_ms=10_000)


def test_the_least_recently_used_bucket_is_dropped_past_the_bound() -> None:
    limiter = InProcessRateLimiter(clock_ms=FakeClock(), max_buckets=2)
    limit = RateLimit(per_second=1.0, burst=1)
    for subject in ("a", "b"):
        limiter.acquire("t", subject, limit)

    limiter.acquire("t", "c", limit)  # drops "a": its bucket starts full again

    assert limiter.acquire("t", "a", limit).allowed
    assert not limiter.acquire("t", "c", limit).allowed


@pytest.mark.parametrize(("per_second", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0), (float("inf"), 1)])
def test_a_limit_that_could_never_pass_a_request_is_refused(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="per_second > 0 and burst >= 1"):
        RateLimit(per_second=per_second, burst=burst)


def test_the_expiry_is_the_time_to_refill_an_empty_bucket_plus_a_second() -> None:
    assert RateLimit(per_second=20.0, burst=40).idle_expiry_ms == 3000


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_rate_limiting_is_off_by_default_without_auth_so_local_runs_are_unlimited() -> None:
    assert _settings().rate_limit is None


def test_rate_limiting_is_on_by_default_with_auth() -> None:
    limit = _settings(auth_mode="api_key").rate_limit

    assert limit == RateLimit(per_second=20.0, burst=40)
    assert limit.describe() == "RATE_LIMIT_PER_SECOND=20, RATE_LIMIT_BURST=40"


def test_an_explicit_limit_applies_without_auth_and_zero_turns_it_off() -> None:
    assert _settings(rate_limit_per_second=5).rate_limit == RateLimit(per_second=5.0, burst=40)
    assert _settings(auth_mode="api_key", rate_limit_per_second=0).rate_limit is None
    assert _settings(auth_mode="api_key", rate_limit_burst=0).rate_limit is None
