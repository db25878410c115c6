"""What a request value must be for every store to hold it and for it to be addressed again.

Each rule is an annotated type shared by the API and domain models, so an out-of-range value is a 422
naming its field before any store is touched (docs/architecture.md, "Validation at the edge"):

- counts and offsets fit SQLite's and OpenSearch's signed 64-bit integers (`Count`);
- a TTL is at most `models.MAX_TTL_SECONDS` (`models.TtlSeconds`, about 68 years);
- a datetime lies between `EARLIEST` and `LATEST` in UTC, so its epoch seconds (SQLite) and epoch
  milliseconds (OpenSearch) convert back without rounding past year 9999 (`check_datetime_range`);
- free JSON (`data`, `metadata`, strategy config) nests at most `MAX_JSON_DEPTH` levels and holds only
  finite numbers (`JsonObject`);
- an id that ends up in a URL path (`Identifier`) is addressable there afterwards, by us and by the
  official client, which puts ids into paths without percent-encoding them.

NaN, Infinity and text that is not valid Unicode never get this far: the one JSON decoder at the edge
(`http/json_body.py`) refuses them.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32
MAX_ID_BYTES = 256  # OpenSearch caps a document _id at 512 bytes; ULIDs are 26, UUIDs 36
# The deepest page every long-term store serves: OpenSearch's default index.max_result_window.
MAX_SEARCH_WINDOW = 10_000
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

# Characters an id in a path cannot hold: `/` splits the path, `?` and `#` end it, `%` starts an
# escape the server decodes, `\` is a `/` to some proxies.
_PATH_UNSAFE = frozenset("/?#%\\")

Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
PositiveCount = Annotated[int, Field(ge=1, le=INT64_MAX)]


def check_datetime_range(value: datetime) -> datetime:
    """`value` in UTC if it lies between EARLIEST and LATEST, else ValueError.

    >>> check_datetime_range(datetime(2025, 1, 1)).isoformat()
    '2025-01-01T00:00:00+00:00'
    """
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("datetime is outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z in UTC") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError("datetime is outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z")
    return value


def _check_json_value(value: Any, depth: int) -> None:
    if isinstance(value, (dict, list)):
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"objects and arrays nested deeper than {MAX_JSON_DEPTH} levels")
        for item in value.values() if isinstance(value, dict) else value:
            _check_json_value(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """Free JSON: at most MAX_JSON_DEPTH levels of objects and arrays (the object itself is level 1)."""
    _check_json_value(value, 1)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def check_identifier(value: str) -> str:
    """An id that can be put in a URL path and found again: e.g. a ULID, a UUID, `user-42:fact`."""
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if value in (".", ".."):
        raise ValueError("must not be '.' or '..'")
    unsafe = sorted(_PATH_UNSAFE.intersection(value))
    if unsafe:
        raise ValueError(f"must not contain {' '.join(unsafe)} (it could not be addressed in a URL path)")
    if _has_control(value):
        raise ValueError("must not contain control characters")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes in UTF-8")
    return value


def check_scope_value(value: str) -> str:
    """A namespace or user id: free text, but bounded and printable (it is part of keys and filters)."""
    if _has_control(value):
        raise ValueError("must not contain control characters")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes in UTF-8")
    return value


Identifier = Annotated[str, AfterValidator(check_identifier)]
ScopeValue = Annotated[str, AfterValidator(check_scope_value)]


def check_unique_ids(items: list[Any]) -> list[Any]:
    """ValueError naming the first id that appears twice in one request."""
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.id in seen:
            raise ValueError(f"id {item.id!r} appears twice (items {seen[item.id]} and {index}); ids must be unique")
        seen[item.id] = index
    return items
