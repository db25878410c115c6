"""A throwaway redis-server on a free loopback port, for benches: the tests' launcher, outside pytest."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.redis_process import RedisServerUnavailable, running_redis_server


@contextmanager
def redis_server(password: str | None = None) -> Iterator[str]:
    """Yields `redis://127.0.0.1:<port>/0` of a fresh server without persistence (with `requirepass` when
    `password` is given; the URL does not carry it); stops it on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        try:
            with running_redis_server(Path(workdir), password=password) as server:
                yield server.url
        except RedisServerUnavailable as exc:  # only the launcher raises it
            raise SystemExit(str(exc)) from None
