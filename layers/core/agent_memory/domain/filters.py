"""Search filters: the AMS wire format plus the operators the official client sends.

Server operators (AMS): tags `eq ne any all startswith`; enums `eq ne any all`; datetimes
`gt lt gte lte eq ne between inclusive`. Client-only operators we also honour: `in_` (= any),
`not_eq` (= ne), `not_in` and `none` (= has none of). Unlike AMS, every operator that is set applies
(so `gte`+`lte` is a range) and `all` means AND. A filter object with no operator is a 422, not a 500.

`matches()` is the reference semantics; store adapters translate the same model into their query
language and the shared contract suite checks they agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from agent_memory.domain.models import DomainModel, MemoryRecord, MemoryTypeEnum, UtcDatetime
from agent_memory.domain.temporal import TimeWindow

TAG_FIELDS = ("session_id", "namespace", "user_id", "topics", "entities", "extraction_strategy")
LIST_FIELDS = ("topics", "entities")
DATE_FIELDS = ("created_at", "last_accessed", "event_date")


def _nonempty(name: str, values: list[Any] | None) -> None:
    if values is not None and len(values) == 0:
        raise ValueError(f"'{name}' must be a non-empty list")


class TagFilter(DomainModel):
    eq: str | None = None
    ne: str | None = None
    any: list[str] | None = None
    all: list[str] | None = None
    startswith: str | None = None
    in_: list[str] | None = Field(default=None, alias="in_")
    not_eq: str | None = None
    not_in: list[str] | None = None
    none: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> TagFilter:
        set_ops = [k for k in self.operator_names() if getattr(self, k) is not None]
        if not set_ops:
            raise ValueError(
                "filter has no operator; use one of eq, ne, any, all, startswith, in_, not_eq, not_in, none"
            )
        if self.eq is not None and self.ne is not None and self.eq == self.ne:
            raise ValueError("'eq' and 'ne' cannot be the same value")
        if self.startswith is not None and (len(set_ops) > 1 or self.startswith == ""):
            raise ValueError("'startswith' must be a non-empty string and cannot be combined")
        for name in ("any", "all", "in_", "not_in", "none"):
            _nonempty(name, getattr(self, name))
        return self

    @staticmethod
    def operator_names() -> tuple[str, ...]:
        return ("eq", "ne", "any", "all", "startswith", "in_", "not_eq", "not_in", "none")

    # Normalised view used by adapters: every filter is (must_any, must_all, must_not, prefix).
    def required_any(self) -> list[list[str]]:
        """Groups of values; a record must hold at least one value of each group."""
        groups: list[list[str]] = []
        if self.eq is not None:
            groups.append([self.eq])
        if self.any:
            groups.append(list(self.any))
        if self.in_:
            groups.append(list(self.in_))
        for value in self.all or []:
            groups.append([value])
        return groups

    def excluded(self) -> list[str]:
        values: list[str] = []
        for single in (self.ne, self.not_eq):
            if single is not None:
                values.append(single)
        values.extend(self.not_in or [])
        values.extend(self.none or [])
        return values

    def matches(self, values: Iterable[str]) -> bool:
        held = set(values)
        if self.startswith is not None:
            return any(v.startswith(self.startswith) for v in held)
        if any(not held.intersection(group) for group in self.required_any()):
            return False
        return not held.intersection(self.excluded())


class EnumFilter(TagFilter):
    """`memory_type`: the same operators as tags, each value checked against the enum."""

    @model_validator(mode="after")
    def _check_values(self) -> EnumFilter:
        allowed = {m.value for m in MemoryTypeEnum}
        for name in self.operator_names():
            value = getattr(self, name)
            for item in [value] if isinstance(value, str) else value or []:
                if name != "startswith" and item not in allowed:
                    raise ValueError(f"'{item}' is not a memory type; use one of {sorted(allowed)}")
        return self


class DateTimeFilter(DomainModel):
    gt: UtcDatetime | None = None
    lt: UtcDatetime | None = None
    gte: UtcDatetime | None = None
    lte: UtcDatetime | None = None
    eq: UtcDatetime | None = None
    ne: UtcDatetime | None = None
    between: list[UtcDatetime] | None = None
    inclusive: Literal["both", "neither", "left", "right"] = "both"

    @model_validator(mode="after")
    def _check(self) -> DateTimeFilter:
        ops = [k for k in ("gt", "lt", "gte", "lte", "eq", "ne", "between") if getattr(self, k) is not None]
        if not ops:
            raise ValueError("filter has no operator; use one of gt, lt, gte, lte, eq, ne, between")
        if self.between is not None:
            if len(self.between) != 2:
                raise ValueError("'between' takes exactly two datetimes")
            if any(getattr(self, k) is not None for k in ("eq", "ne", "gt", "lt", "gte")):
                raise ValueError("'between' cannot be combined with eq, ne, gt, lt or gte")
        return self

    def bounds(self) -> tuple[datetime | None, bool, datetime | None, bool]:
        """(lower, lower_inclusive, upper, upper_inclusive) from every range operator that is set."""
        lower: datetime | None = None
        lower_inc = True
        upper: datetime | None = None
        upper_inc = True

        def raise_lower(value: datetime, inclusive: bool) -> None:
            nonlocal lower, lower_inc
            if lower is None or value > lower or (value == lower and not inclusive):
                lower, lower_inc = value, inclusive

        def lower_upper(value: datetime, inclusive: bool) -> None:
            nonlocal upper, upper_inc
            if upper is None or value < upper or (value == upper and not inclusive):
                upper, upper_inc = value, inclusive

        if self.gt is not None:
            raise_lower(self.gt, False)
        if self.gte is not None:
            raise_lower(self.gte, True)
        if self.lt is not None:
            lower_upper(self.lt, False)
        if self.lte is not None:
            lower_upper(self.lte, True)
        if self.between is not None:
            raise_lower(self.between[0], self.inclusive in ("both", "left"))
            lower_upper(self.between[1], self.inclusive in ("both", "right"))
        return lower, lower_inc, upper, upper_inc

    def matches(self, value: datetime | None) -> bool:
        if value is None:
            return False
        if self.eq is not None and value != self.eq:
            return False
        if self.ne is not None and value == self.ne:
            return False
        lower, lower_inc, upper, upper_inc = self.bounds()
        if lower is not None and (value < lower or (value == lower and not lower_inc)):
            return False
        return not (upper is not None and (value > upper or (value == upper and not upper_inc)))


class SearchFilters(DomainModel):
    """Every filter of a search request; all that are set are ANDed."""

    session_id: TagFilter | None = None
    namespace: TagFilter | None = None
    user_id: TagFilter | None = None
    topics: TagFilter | None = None
    entities: TagFilter | None = None
    extraction_strategy: TagFilter | None = None
    memory_type: EnumFilter | None = None
    created_at: DateTimeFilter | None = None
    last_accessed: DateTimeFilter | None = None
    event_date: DateTimeFilter | None = None

    @classmethod
    def for_scope(
        cls, *, namespace: str | None = None, user_id: str | None = None, session_id: str | None = None
    ) -> SearchFilters:
        """Equality filters for the parts of a scope that are set; unset parts do not filter."""
        return cls(
            namespace=TagFilter(eq=namespace) if namespace else None,
            user_id=TagFilter(eq=user_id) if user_id else None,
            session_id=TagFilter(eq=session_id) if session_id else None,
        )

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def matches(self, record: MemoryRecord) -> bool:
        for name in (*TAG_FIELDS, "memory_type"):
            tag_filter: TagFilter | None = getattr(self, name)
            if tag_filter is None:
                continue
            raw = getattr(record, name)
            values = list(raw or []) if name in LIST_FIELDS else [str(raw)] if raw not in (None, "") else []
            if not tag_filter.matches(values):
                return False
        for name in DATE_FIELDS:
            date_filter: DateTimeFilter | None = getattr(self, name)
            if date_filter is not None and not date_filter.matches(getattr(record, name)):
                return False
        return True


class SearchQuery(DomainModel):
    """What a LongTermStore is asked: one page of records for one tenant.

    `vector` is set for semantic and hybrid mode, `text` for keyword and hybrid mode; neither means a
    filter-only listing (newest first). `distance_threshold` is a cosine distance (0..2) and applies to
    the vector side. `alpha` weighs the vector side in hybrid mode; `time_window`, the period the text names,
lifts hybrid candidates dated inside it (services/ranking.py).
    """

    tenant: str
    mode: Literal["semantic", "keyword", "hybrid", "list"]
    filters: SearchFilters = Field(default_factory=SearchFilters)
    text: str | None = None
    vector: list[float] | None = None
    alpha: float = Field(default=0.5, ge=0, le=1)
    time_window: TimeWindow | None = None
    distance_threshold: float | None = None
    limit: int = Field(default=10, ge=1)
    offset: int = Field(default=0, ge=0)
