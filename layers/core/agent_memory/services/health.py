"""The deep health check: does each backend answer? (`GET /v1/health?deep=true`)

The plain health check touches nothing (the AMS client polls it and it must answer while Redis is down);
the deep one calls each configured backend once, each bounded by its adapter's own timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent_memory.domain.errors import AgentMemoryError


@dataclass(frozen=True)
class BackendStatus:
    ok: bool
    milliseconds: float
    detail: str | None = None


def probe_backends(probes: Mapping[str, Callable[[], object]]) -> dict[str, BackendStatus]:
    """Run each probe once; a domain error is that backend's failure, with its text.

    >>> probe_backends({"fine": lambda: None})["fine"].ok
    True
    """
    statuses: dict[str, BackendStatus] = {}
    for name, probe in probes.items():
        started = time.perf_counter()
        try:
            probe()
        except AgentMemoryError as exc:
            statuses[name] = BackendStatus(False, _since(started), exc.detail)
        except Exception as exc:  # a misconfigured adapter must be reported here, not crash the check
            statuses[name] = BackendStatus(False, _since(started), f"{type(exc).__name__}: {exc}"[:300])
        else:
            statuses[name] = BackendStatus(True, _since(started))
    return statuses


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
