"""`WIRE_VERSION` moves with what WorkingMemory's JSON holds.

A GET may answer a session's stored JSON as it is when the store wrote it under the current
WIRE_VERSION (adapters/redis_working_memory.py). That is only right while the models write the same
JSON: a field added, removed, renamed or retyped in WorkingMemory or a model inside it must bump the
version, so that documents written before are decoded (and get the new field's default) instead.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent_memory.adapters.redis_working_memory import WIRE_VERSION
from agent_memory.domain.models import WorkingMemory

# The fingerprint below belongs to this version; change both together.
RECORDED = ("1", "203dbd3ebdbb6968")

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
