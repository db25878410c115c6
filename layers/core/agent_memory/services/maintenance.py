"""Forgetting and compaction of long-term memory (AMS contract §5.7 and §5.12).

Both work on one scope (namespace / user / session) of one tenant, read candidates in pages, and are
bounded by `limit` so one call (or one scheduled Lambda invocation) always finishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ConfigDict, Field

from agent_memory.domain.filters import SearchFilters
from agent_memory.domain.models import DomainModel, MemoryRecordResult, MemoryTypeEnum
from agent_memory.domain.search import RecencyWeights, recency_score
from agent_memory.domain.validation import Count

if TYPE_CHECKING:
    from agent_memory.services.long_term import CreateOutcome, LongTermService

PAGE = 500
COMPACTION_DISTANCE = 0.2


class ForgetPolicy(DomainModel):
    model_config = ConfigDict(allow_inf_nan=False)

    max_age_days: float | None = Field(default=None, gt=0)
    max_inactive_days: float | None = Field(default=None, gt=0)
    budget: Count | None = None
    memory_type_allowlist: list[MemoryTypeEnum] | None = None
    hard_age_multiplier: float = Field(default=12.0, ge=1)


@dataclass(frozen=True)
class Scope:
    namespace: str | None = None
    user_id: str | None = None
    session_id: str | None = None

    def filters(self) -> SearchFilters:
        return SearchFilters.for_scope(namespace=self.namespace, user_id=self.user_id, session_id=self.session_id)


class ForgetResult(DomainModel):
    scanned: int
    deleted: int
    deleted_ids: list[str]
    dry_run: bool


def iter_scope(service: LongTermService, tenant: str, scope: Scope, limit: int) -> Iterator[MemoryRecordResult]:
    """Up to `limit` records of the scope, newest first, read a page at a time."""
    offset = 0
    while offset < limit:
        size = min(PAGE, limit - offset)
        page, _ = service.listing(tenant, scope.filters(), limit=size, offset=offset)
        yield from page
        if len(page) < size:
            return
        offset += size


def select_for_forgetting(
    records: list[MemoryRecordResult], policy: ForgetPolicy, pinned_ids: set[str], now: datetime
) -> list[str]:
    """Ids the policy would delete. Pinned records and records outside the allowlist are never chosen."""
    allow = set(policy.memory_type_allowlist or [])
    eligible = [r for r in records if not r.pinned and r.id not in pinned_ids and (not allow or r.memory_type in allow)]
    doomed: list[MemoryRecordResult] = []
    survivors: list[MemoryRecordResult] = []
    for record in eligible:
        age = (now - record.created_at) / timedelta(days=1)
        idle = (now - record.last_accessed) / timedelta(days=1)
        if policy.max_age_days is not None and policy.max_inactive_days is not None:
            too_old = age > policy.max_age_days * policy.hard_age_multiplier or (
                age > policy.max_age_days and idle > policy.max_inactive_days
            )
        else:
            too_old = (policy.max_age_days is not None and age > policy.max_age_days) or (
                policy.max_inactive_days is not None and idle > policy.max_inactive_days
            )
        (doomed if too_old else survivors).append(record)
    if policy.budget is not None and len(survivors) > policy.budget:
        weights = RecencyWeights(semantic_weight=0.0, recency_weight=1.0)
        ranked = sorted(survivors, key=lambda r: -recency_score(r, weights, now))
        doomed.extend(ranked[policy.budget :])
    return [r.id for r in doomed]


def forget(
    service: LongTermService,
    tenant: str,
    policy: ForgetPolicy,
    *,
    scope: Scope,
    limit: int,
    dry_run: bool,
    pinned_ids: list[str] | None,
    now: datetime,
) -> ForgetResult:
    records = list(iter_scope(service, tenant, scope, limit))
    ids = select_for_forgetting(records, policy, set(pinned_ids or []), now)
    if ids and not dry_run:
        service.delete(tenant, ids)
    return ForgetResult(scanned=len(records), deleted=len(ids), deleted_ids=ids, dry_run=dry_run)


def compact(service: LongTermService, tenant: str, scope: Scope, *, limit: int = 1000) -> int:
    """Drop exact duplicates (same content hash: keep the most recently accessed), then merge near
    duplicates through the LLM when one is configured. Returns how many records the scope holds after."""
    records = list(iter_scope(service, tenant, scope, limit))
    by_hash: dict[str, list[MemoryRecordResult]] = {}
    for record in records:
        by_hash.setdefault(record.memory_hash or record.content_hash(), []).append(record)
    doomed: list[str] = []
    for group in by_hash.values():
        group.sort(key=lambda r: r.last_accessed, reverse=True)
        doomed.extend(r.id for r in group[1:])
    service.delete(tenant, doomed)
    gone = set(doomed)
    service.merge_near_duplicates(tenant, [r for r in records if r.id not in gone], COMPACTION_DISTANCE)
    _, total = service.listing(tenant, scope.filters(), limit=1)
    return total


__all__ = ["CreateOutcome", "ForgetPolicy", "ForgetResult", "Scope", "compact", "forget"]
