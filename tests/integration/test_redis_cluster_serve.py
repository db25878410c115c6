"""The real `agent-memory-client` (0.14.0) round trip through `agent-memory serve` on a local 3-node
Redis Cluster: the process reads REDIS_URL as a user sets it, detects the cluster (REDIS_CLUSTER=auto)
and stores working memory across the nodes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from agent_memory_client import MemoryAPIClient, MemoryClientConfig, MemoryNotFoundError
from agent_memory_client.models import MemoryMessage, WorkingMemory

from tests.fixtures.redis_cluster import RedisClusterNodes
from tests.fixtures.redis_process import free_port
from tests.fixtures.serve_process import AGENT_MEMORY, ServeDidNotStart, wait_until_healthy

pytestmark = [
    pytest.mark.redis,
    pytest.mark.filterwarnings("ignore:get_working_memory is deprecated:DeprecationWarning"),
]


async def test_the_client_round_trips_working_memory_through_serve_on_a_cluster(
    redis_cluster: RedisClusterNodes, redis_cluster_url: str, tmp_path: Path
) -> None:
    port = free_port()
    environment = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "", "REDIS_URL": redis_cluster_url}
    environment.pop("AGENT_MEMORY_DATA_DIR", None)
    process = subprocess.Popen(
        [str(AGENT_MEMORY), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_healthy(base, process)
        except ServeDidNotStart as exc:
            pytest.fail(str(exc))
        config = MemoryClientConfig(base_url=base, timeout=10.0, default_namespace="ns")
        async with MemoryAPIClient(config) as client:
            # Given sessions of several users (their index entries and keys in the tenant's one slot)
            for n in range(4):
                memory = WorkingMemory(
                    session_id=f"s{n}", namespace="ns", user_id=f"u{n % 2}",
                    messages=[MemoryMessage(role="user", content=f"hello {n}"),
                              MemoryMessage(role="assistant", content=f"hi {n}")],
                )  # fmt: skip
                await client.put_working_memory(f"s{n}", memory, user_id=f"u{n % 2}")
            await client.append_messages_to_working_memory(
                "s0", [MemoryMessage(role="user", content="one more")], user_id="u0"
            )

            # Then the client reads back what it wrote, lists by user, and deletes
            stored = await client.get_working_memory("s0", user_id="u0", namespace="ns")
            assert [m.content for m in stored.messages] == ["hello 0", "hi 0", "one more"]
            listed = await client.list_sessions(namespace="ns", user_id="u1")
            assert sorted(listed.sessions) == ["s1", "s3"] and listed.total == 2
            await client.delete_working_memory("s1", user_id="u1", namespace="ns")
            assert (await client.list_sessions(namespace="ns")).total == 3
            with pytest.raises(MemoryNotFoundError):
                await client.get_working_memory("s1", user_id="u1", namespace="ns")
        # And the data is in the cluster, not in the embedded store beside it
        assert not (tmp_path / "data" / "working_memory.sqlite3").exists()
        stored_keys = []
        for node in redis_cluster.node_clients():
            stored_keys += [k.decode() for k in node.scan_iter(match="am:wm:*:meta")]
            node.close()
        assert len(stored_keys) == 3
    finally:
        process.kill()
        process.wait(timeout=10)
