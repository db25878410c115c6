"""Background task messages: versioned JSON, defined once, checked on the way into a queue and out of it.

Every message carries `type` and `schema_version` (a consumer refuses what it does not know instead of
guessing), the tenant and scope it acts on, and an idempotency key that names the work, not the
delivery: two deliveries of one message, or a replay from the dead-letter queue, carry the same key.

    >>> task = ExtractionTask.for_session(SessionKey(tenant="t1", session_id="s1"), generation="g1")
    >>> decode_task(encode_task(task)) == task
    True
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from agent_memory.domain.errors import InvalidInputError
from agent_memory.domain.models import DomainModel, SessionKey, UtcDatetime, new_id, utcnow

SCHEMA_VERSION: Literal[1] = 1
# A queue message is small: ids and scope only, never conversation text (SQS allows 256 KiB). Room for
# MAX_RECORDS_PER_TASK ids of the longest allowed size (256 bytes each, README) with margin.
MAX_TASK_BYTES = 65_536

Identifier = Annotated[str, Field(min_length=1, max_length=512)]


class InvalidTaskError(InvalidInputError):
    """A queue message that is not a task this version understands; retrying it cannot help."""


class ExtractionTask(DomainModel):
    """Extract long-term memories from one working-memory session, as it stood at `generation`.

    `generation` is the session's version when the task was enqueued (the `updated_at` its write
    stored). The consumer skips a task whose generation is no longer the session's: a newer write
    superseded it and enqueued its own task, so a burst of writes gives one run over the newest state.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["extract_session"] = "extract_session"
    schema_version: Literal[1] = SCHEMA_VERSION
    task_id: Identifier = Field(default_factory=new_id)
    tenant: Identifier
    session_id: Identifier
    namespace: str | None = Field(default=None, max_length=512)
    user_id: str | None = Field(default=None, max_length=512)
    generation: Identifier
    idempotency_key: Identifier
    enqueued_at: UtcDatetime = Field(default_factory=utcnow)

    @classmethod
    def for_session(cls, key: SessionKey, *, generation: str) -> ExtractionTask:
        return cls(
            tenant=key.tenant,
            session_id=key.session_id,
            namespace=key.namespace,
            user_id=key.user_id,
            generation=generation,
            idempotency_key=_digest("extract_session", key.tenant, key.namespace, key.user_id, key.session_id,
                                    generation),
        )

    @property
    def session_key(self) -> SessionKey:
        return SessionKey(
            tenant=self.tenant, session_id=self.session_id, namespace=self.namespace, user_id=self.user_id
        )

    @property
    def debounce_key(self) -> str:
        """Tasks with the same key supersede each other while pending (one per session)."""
        return _digest("extract_session", self.tenant, self.namespace, self.user_id, self.session_id)


MAX_RECORDS_PER_TASK = 100


class RecordExtractionTask(DomainModel):
    """The second pass (AMS §5.6): extract memories from long-term records stored with
    `discrete_memory_extracted="f"` (created by a client, or promoted from a session's `memories`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["extract_records"] = "extract_records"
    schema_version: Literal[1] = SCHEMA_VERSION
    task_id: Identifier = Field(default_factory=new_id)
    tenant: Identifier
    record_ids: list[Identifier] = Field(min_length=1, max_length=MAX_RECORDS_PER_TASK)
    idempotency_key: Identifier
    enqueued_at: UtcDatetime = Field(default_factory=utcnow)

    @classmethod
    def for_records(cls, tenant: str, record_ids: list[str]) -> RecordExtractionTask:
        return cls(
            tenant=tenant,
            record_ids=record_ids,
            idempotency_key=_digest("extract_records", tenant, *sorted(record_ids)),
        )

    @property
    def debounce_key(self) -> str:
        """Never superseded: each batch of records is its own work."""
        return self.idempotency_key


class SummaryViewRunTask(DomainModel):
    """Recompute every partition of a summary view; `task_id` is the `Task` record that reports progress."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["summary_view_run"] = "summary_view_run"
    schema_version: Literal[1] = SCHEMA_VERSION
    task_id: Identifier
    tenant: Identifier
    view_id: Identifier
    idempotency_key: Identifier
    enqueued_at: UtcDatetime = Field(default_factory=utcnow)

    @classmethod
    def for_view(cls, tenant: str, view_id: str, task_id: str) -> SummaryViewRunTask:
        return cls(task_id=task_id, tenant=tenant, view_id=view_id,
                   idempotency_key=_digest("summary_view_run", tenant, view_id, task_id))

    @property
    def debounce_key(self) -> str:
        return self.idempotency_key


AnyTask = ExtractionTask | RecordExtractionTask | SummaryViewRunTask
# New task types join this union with their own `type` literal.
Task = Annotated[AnyTask, Field(discriminator="type")]
_TASK: TypeAdapter[AnyTask] = TypeAdapter(Task)


def encode_task(task: AnyTask) -> str:
    """The message body for a queue; InvalidTaskError when it is over MAX_TASK_BYTES."""
    body = task.model_dump_json()
    if len(body.encode()) > MAX_TASK_BYTES:
        raise InvalidTaskError(f"task {task.task_id} is {len(body.encode())} bytes; the limit is {MAX_TASK_BYTES}")
    return body


def decode_task(body: str | bytes) -> AnyTask:
    """The task in a message body. Raises InvalidTaskError (never anything else) for a body that is not
    JSON, names an unknown type or schema version, lacks a field or has one too many."""
    if len(body) > MAX_TASK_BYTES:
        raise InvalidTaskError(f"message of {len(body)} bytes is over the task limit of {MAX_TASK_BYTES}")
    try:
        return _TASK.validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}" for error in exc.errors()[:5]
        )
        raise InvalidTaskError(f"not a valid task message: {problems}"[:500]) from None


def _digest(*parts: str | None) -> str:
    # \x1f (unit separator) cannot be confused with text inside an id, unlike "|" or ":".
    joined = "\x1f".join("" if p is None else p for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


__all__ = [
    "MAX_RECORDS_PER_TASK",
    "MAX_TASK_BYTES",
    "SCHEMA_VERSION",
    "AnyTask",
    "ExtractionTask",
    "InvalidTaskError",
    "RecordExtractionTask",
    "SummaryViewRunTask",
    "decode_task",
    "encode_task",
]
