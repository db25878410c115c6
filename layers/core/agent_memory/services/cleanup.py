"""The scheduled sweep (CleanupFunction on AWS, `agent-memory cleanup` locally): one pass over every tenant.

Per tenant, in order (tenants sorted, so a pass has a fixed order to resume in):
1. **sweep**: the tenant's expired sessions leave every working-memory index without waiting for a read
   (`SessionSweeper.sweep_expired`; expiry is the store's clock, the Redis server's for Redis);
2. **final extraction**: a session that expires within the lookahead (twice the run interval, so a
   late or failed run still sees it) and holds messages not yet extracted gets an extraction task now
   (`ExtractionScheduler.schedule`, no debounce), so nothing said is lost when its keys expire. A
   marker document per session *and* expiry makes it exactly once: a second run, or a run repeated
   after a crash, finds the marker; a later write moves the expiry, and that new expiry gets its own;
3. **forget**: the forgetting policy from settings (FORGET_MAX_AGE_DAYS, FORGET_MAX_INACTIVE_DAYS,
   FORGET_BUDGET; off when none is set) is applied to the tenant's long-term records with
   `maintenance.forget` (pinned records exempt; the budget counts per tenant).

Resume: before each tenant the run asks how much time is left (`remaining_ms`, Lambda's
`context.get_remaining_time_in_millis`); below the margin it stores a cursor (the last tenant finished)
in the DocumentStore and stops. The next run starts after that tenant and deletes the cursor when the
pass completes. Every step is idempotent, so a tenant cut off half-way is simply done again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.keys import session_member
from agent_memory.domain.models import format_datetime, utcnow
from agent_memory.services.maintenance import ForgetPolicy, Scope, forget

if TYPE_CHECKING:
    from agent_memory.domain.models import SessionKey
    from agent_memory.ports import DocumentStore, SessionSweeper, TenantDirectory, WorkingMemoryStore
    from agent_memory.services.extraction_scheduler import ExtractionScheduler
    from agent_memory.services.long_term import LongTermService

logger = logging.getLogger(__name__)

# The cursor lives under a name no tenant can have ("/" is refused in tenant ids), so no tenant's
# export or deletion ever sees it.
CURSOR_TENANT = "/cleanup"
CURSOR_KIND = "cleanup"
CURSOR_ID = "cursor"
FINAL_EXTRACTION_KIND = "cleanup-final-extraction"
# Long-term records a policy reads per tenant and run (newest first; maintenance.forget's limit).
FORGET_SCAN_LIMIT = 10_000
# Sessions per tenant and run considered for a final extraction.
EXPIRING_LIMIT = 1_000
# Time kept back before a tenant starts: one tenant's steps (a few store calls and queue sends).
DEFAULT_MARGIN_MS = 10_000


@dataclass
class CleanupReport:
    """What one run did; the handler turns each count into a metric."""

    tenants: int = 0
    sessions_swept: int = 0
    final_extractions_queued: int = 0
    records_forgotten: int = 0
    resumed: bool = False  # started after the cursor a cut-short run left
    finished: bool = True  # False: out of time, the next run resumes
    failed_tenants: list[str] = field(default_factory=list)


class CleanupService:
    """Sweep, final extraction and forgetting for every tenant; see the module docstring.

    Example::

        report = CleanupService(store, documents, interval_seconds=900).run(remaining_ms=lambda: 60_000)
    """

    def __init__(
        self,
        sessions: SessionSweeper,
        documents: DocumentStore,
        *,
        interval_seconds: int,
        scheduler: ExtractionScheduler | None = None,
        long_term: LongTermService | None = None,
        long_term_tenants: TenantDirectory | None = None,
        policy: ForgetPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        margin_ms: int = DEFAULT_MARGIN_MS,
    ) -> None:
        self._sessions = sessions
        self._documents = documents
        self._lookahead_seconds = 2 * interval_seconds
        self._scheduler = scheduler
        self._long_term = long_term
        self._long_term_tenants = long_term_tenants
        self._policy = policy if long_term is not None else None
        self._clock = clock
        self._margin_ms = margin_ms

    def run(self, *, remaining_ms: Callable[[], int] | None = None) -> CleanupReport:
        """One pass, or as much of it as the time allows (then the cursor says where the next starts).

        Raises:
            DependencyUnavailableError: the stores could not be listed or the cursor not read or
                written (a tenant's own failure is logged and counted, and the pass goes on).
        """
        report = CleanupReport()
        after = self._read_cursor()
        report.resumed = after is not None
        tenants = [t for t in self._tenants() if after is None or t > after]
        for tenant in tenants:
            if remaining_ms is not None and remaining_ms() < self._margin_ms:
                self._write_cursor(after)
                report.finished = False
                return report
            try:
                self._clean(tenant, report)
            except DependencyUnavailableError as exc:
                # One tenant's failure (its shard, its OpenSearch index) must not stop the others; the
                # next pass does it again.
                logger.warning("cleanup of a tenant failed tenant=%s error=%s", tenant, exc.detail)
                report.failed_tenants.append(tenant)
            report.tenants += 1
            after = tenant
        self._documents.delete(CURSOR_TENANT, CURSOR_KIND, [CURSOR_ID])
        return report

    # -- one tenant -------------------------------------------------------------------------------

    def _clean(self, tenant: str, report: CleanupReport) -> None:
        report.sessions_swept += self._sessions.sweep_expired(tenant)
        if self._scheduler is not None:
            report.final_extractions_queued += self._final_extractions(tenant)
        if self._policy is not None and self._long_term is not None:
            result = forget(self._long_term, tenant, self._policy, scope=Scope(), limit=FORGET_SCAN_LIMIT,
                            dry_run=False, pinned_ids=None, now=self._clock())  # fmt: skip
            report.records_forgotten += result.deleted

    def _final_extractions(self, tenant: str) -> int:
        assert self._scheduler is not None
        store: WorkingMemoryStore = self._sessions  # type: ignore[assignment]  # both ports, one adapter
        queued = 0
        for key, expiry_ms in self._sessions.expiring_sessions(tenant, self._lookahead_seconds, limit=EXPIRING_LIMIT):
            marker = _marker_id(key, expiry_ms)
            if self._documents.get(tenant, FINAL_EXTRACTION_KIND, marker) is not None:
                continue
            memory = store.get(key)
            if memory is None:
                continue
            status = self._scheduler.schedule(key, memory)
            if status is None or not status.startswith("queued"):
                continue  # nothing to extract, or the queue is down: the next run tries again
            # Kept until the session would have expired, and one lookahead longer.
            now_ms = int(self._clock().timestamp() * 1000)
            ttl = max(1, (expiry_ms - now_ms) // 1000) + self._lookahead_seconds
            body = json.dumps({"session_id": key.session_id, "expiry_ms": expiry_ms,
                               "queued_at": format_datetime(self._clock())})  # fmt: skip
            self._documents.put(tenant, FINAL_EXTRACTION_KIND, marker, body, ttl_seconds=ttl)
            queued += 1
        return queued

    # -- tenants and the cursor -------------------------------------------------------------------

    def _tenants(self) -> list[str]:
        found = set(self._sessions.tenants())
        if self._policy is not None and self._long_term_tenants is not None:
            found |= set(self._long_term_tenants.tenants())
        return sorted(found)

    def _read_cursor(self) -> str | None:
        body = self._documents.get(CURSOR_TENANT, CURSOR_KIND, CURSOR_ID)
        if body is None:
            return None
        after = json.loads(body).get("after")
        return after if isinstance(after, str) else None

    def _write_cursor(self, after: str | None) -> None:
        if after is None:  # not one tenant done: the next run starts from the beginning anyway
            return
        body = json.dumps({"after": after, "saved_at": format_datetime(self._clock())})
        self._documents.put(CURSOR_TENANT, CURSOR_KIND, CURSOR_ID, body)


def _marker_id(key: SessionKey, expiry_ms: int) -> str:
    return hashlib.sha256(f"{session_member(key)}|{expiry_ms}".encode()).hexdigest()[:32]


def policy_from_settings(max_age_days: float | None, max_inactive_days: float | None,
                         budget: int | None) -> ForgetPolicy | None:  # fmt: skip
    """The forgetting policy the settings describe, or None (off) when none of them is set."""
    if max_age_days is None and max_inactive_days is None and budget is None:
        return None
    return ForgetPolicy(max_age_days=max_age_days, max_inactive_days=max_inactive_days, budget=budget)


__all__ = ["CURSOR_TENANT", "CleanupReport", "CleanupService", "policy_from_settings"]
