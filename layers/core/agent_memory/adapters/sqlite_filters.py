"""The SQLite store's query builder: `SearchFilters` as a WHERE fragment over `records r`.

Same semantics as `SearchFilters.matches` (the reference; the store contract suite checks it): scalar
columns hold NULL for a missing or blank value, topics and entities live one value per row in
`record_tags`, dates are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from agent_memory.domain.filters import DATE_FIELDS, TAG_FIELDS, SearchFilters, TagFilter

SCALAR_TAG_COLUMNS = frozenset({"session_id", "namespace", "user_id", "extraction_strategy", "memory_type"})
CHUNK = 500  # values per IN (...) list, well under SQLite's bound-parameter limit


def chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def marks(count: int) -> str:
    return ",".join("?" * count)


def _tag_sql(name: str, tag: TagFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if name in SCALAR_TAG_COLUMNS:
        column = f"r.{name}"
        if tag.startswith is not None:
            clauses.append(f"substr({column}, 1, ?) = ?")
            params += [len(tag.startswith), tag.startswith]
        for group in tag.required_any():
            clauses.append(f"{column} IN ({marks(len(group))})")
            params += group
        if excluded := tag.excluded():
            clauses.append(f"({column} IS NULL OR {column} NOT IN ({marks(len(excluded))}))")
            params += excluded
        return clauses, params
    held = "r.rid IN (SELECT t.rid FROM record_tags t WHERE t.field = ? AND {})"
    if tag.startswith is not None:
        clauses.append(held.format("substr(t.value, 1, ?) = ?"))
        params += [name, len(tag.startswith), tag.startswith]
    for group in tag.required_any():
        clauses.append(held.format(f"t.value IN ({marks(len(group))})"))
        params += [name, *group]
    if excluded := tag.excluded():
        clauses.append("NOT " + held.format(f"t.value IN ({marks(len(excluded))})"))
        params += [name, *excluded]
    return clauses, params


def filter_sql(filters: SearchFilters) -> tuple[str, list[Any]]:
    """A WHERE fragment over `records r` equivalent to `filters.matches` ("1" when nothing is set)."""
    clauses: list[str] = []
    params: list[Any] = []
    for name in (*TAG_FIELDS, "memory_type"):
        tag: TagFilter | None = getattr(filters, name)
        if tag is not None:
            more, values = _tag_sql(name, tag)
            clauses += more
            params += values
    for name in DATE_FIELDS:
        date_filter = getattr(filters, name)
        if date_filter is None:
            continue
        column = f"r.{name}"
        clauses.append(f"{column} IS NOT NULL")
        if date_filter.eq is not None:
            clauses.append(f"{column} = ?")
            params.append(date_filter.eq.timestamp())
        if date_filter.ne is not None:
            clauses.append(f"{column} != ?")
            params.append(date_filter.ne.timestamp())
        lower, lower_inc, upper, upper_inc = date_filter.bounds()
        if lower is not None:
            clauses.append(f"{column} {'>=' if lower_inc else '>'} ?")
            params.append(lower.timestamp())
        if upper is not None:
            clauses.append(f"{column} {'<=' if upper_inc else '<'} ?")
            params.append(upper.timestamp())
    return (" AND ".join(clauses) or "1"), params
