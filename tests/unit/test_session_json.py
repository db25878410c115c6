"""`WIRE_VERSION` moves with what WorkingMemory's JSON holds; messages write datetimes as the rest does.

A GET may answer a session's stored JSON as it is when the store wrote it under the current
WIRE_VERSION (adapters/redis_working_memory.py). That is only right while the models write the same
JSON: a field added, removed, renamed or retyped in WorkingMemory or a model inside it must bump the
version, so that documents written before are decoded (and get the new field's default) instead.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from agent_memory.adapters.redis_working_memory import WIRE_VERSION
from agent_memory.domain.models import MemoryMessage, UtcDatetime, WorkingMemory, format_datetime

# The fingerprint below belongs to this version; change both together.
RECORDED = ("1", "d65c328d455f9450")

_PROSE = {"description", "title", "examples"}


def _structure(schema: Any) -> Any:
    """The schema without its prose: only what changes the JSON a model writes."""
    if isinstance(schema, dict):
        return {k: _structure(v) for k, v in schema.items() if k not in _PROSE}
    if isinstance(schema, list):
        return [_structure(v) for v in schema]
    return schema


def fingerprint() -> str:
    schema = _structure(WorkingMemory.model_json_schema(mode="serialization"))
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]


def test_the_wire_version_belongs_to_the_models_as_they_are() -> None:
    assert (WIRE_VERSION, fingerprint()) == RECORDED, (
        "WorkingMemory's JSON changed: bump WIRE_VERSION in adapters/redis_working_memory.py and record "
        f"the new version with the fingerprint {fingerprint()!r} in RECORDED"
    )


@settings(max_examples=300, derandomize=True)  # the same cases on every run
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([None, UTC])
    )
    | st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]))
)
def test_messages_write_datetimes_as_format_datetime_does(value: datetime) -> None:
    """MemoryMessage's datetimes are written by pydantic-core (NativeUtcDatetime), every other model's by
    format_datetime: after validation both give the same text, whatever zone the input was in."""
    try:
        message = MemoryMessage(role="user", content="hi", created_at=value, persisted_at=value)
    except ValueError:  # outside 0001..9999 once in UTC: refused, as UtcDatetime refuses it
        with pytest.raises(ValueError):
            TypeAdapter(UtcDatetime).validate_python(value)
        return
    written = json.loads(message.model_dump_json())
    expected = format_datetime(TypeAdapter(UtcDatetime).validate_python(value))
    assert written["created_at"] == written["persisted_at"] == expected
    assert expected.endswith("Z")
