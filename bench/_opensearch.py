"""The OpenSearch cluster a bench runs against: $OPENSEARCH_URL, or a throwaway test node
(infra/opensearch-node) on a free loopback port, started with the tests' launcher and stopped on exit."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.opensearch_process import OpenSearchNodeUnavailable, running_opensearch_node


@contextmanager
def opensearch_url() -> Iterator[str]:
    """Yields the cluster's URL, e.g. `http://127.0.0.1:40123`."""
    if url := os.environ.get("OPENSEARCH_URL"):
        yield url.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="bench-opensearch-") as workdir:
        try:
            with running_opensearch_node(Path(workdir)) as node:
                yield node.url
        except OpenSearchNodeUnavailable as exc:  # only the launcher raises it
            raise SystemExit(str(exc)) from None
