"""`ScriptPipeline` and `RedisSessionReader` against a real redis-server: concurrent reads share round trips
and each still gets its own answer; a NOSCRIPT, an error in one call, a cancelled call and a server that
is gone are each handled as the module says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from agent_memory.adapters._redis import async_redis_client, redis_client
from agent_memory.adapters.redis_autopipeline import MAX_BATCH, ScriptPipeline
from agent_memory.adapters.redis_working_memory import RedisSessionReader, RedisWorkingMemoryStore
from agent_memory.domain import keys
from agent_memory.domain.errors import DependencyUnavailableError
from agent_memory.domain.models import MemoryMessage, SessionJson, SessionKey, WorkingMemory
from tests.fixtures.redis_process import free_port

pytestmark = pytest.mark.redis

# Reads one key's value; a key holding a hash makes GET fail inside the script (WRONGTYPE).
ECHO = "return redis.call('GET', KEYS[1])"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    client = async_redis_client(redis_url, timeout_seconds=2.0)
    yield client
    await client.aclose()


class Counting(ScriptPipeline):
    """Records the size of every pipeline sent."""

    def __init__(self, client: Any, script: str) -> None:
        super().__init__(client, script)
        self.batches: list[int] = []

    async def _pipeline(self, batch: list[Any]) -> list[Any]:
        self.batches.append(len(batch))
        return await super()._pipeline(batch)


async def test_concurrent_calls_share_pipelines_and_each_gets_its_own_answer(client: Any) -> None:
    await client.mset({f"k{i}": f"v{i}" for i in range(300)})
    pipeline = Counting(client, ECHO)

    answers = await asyncio.gather(*(pipeline.call([f"k{i}"]) for i in range(300)))

    assert answers == [f"v{i}" for i in range(300)]
    # The first call went alone; the other 299 waited for it and went in pipelines of at most MAX_BATCH.
    assert sum(pipeline.batches) == 299
    assert max(pipeline.batches) == MAX_BATCH
    assert pipeline._sender is None and not pipeline._waiting  # nothing is left running once idle


async def test_a_call_alone_uses_no_pipeline(client: Any) -> None:
    await client.set("k", "v")
    pipeline = Counting(client, ECHO)

    assert await pipeline.call(["k"]) == "v"
    assert await pipeline.call(["missing"]) is None
    assert pipeline.batches == []


async def test_an_unknown_script_is_loaded_and_the_calls_sent_again(client: Any) -> None:
    await client.mset({f"k{i}": f"v{i}" for i in range(20)})
    pipeline = Counting(client, ECHO)
    await pipeline.call(["k0"])
    await client.script_flush()  # as after a restart or a failover: the server no longer knows the script

    answers = await asyncio.gather(*(pipeline.call([f"k{i}"]) for i in range(20)))

    assert answers == [f"v{i}" for i in range(20)]
    assert await client.script_exists(pipeline._script.sha) == [True]


async def test_an_error_in_one_call_is_that_calls_alone(client: Any) -> None:
    await client.mset({f"k{i}": f"v{i}" for i in range(10) if i != 5})
    await client.hset("k5", mapping={"a": "b"})  # a hash: GET inside the script fails for this key only

    pipeline = ScriptPipeline(client, ECHO)
    results = await asyncio.gather(*(pipeline.call([f"k{i}"]) for i in range(10)), return_exceptions=True)

    assert isinstance(results[5], ResponseError) and "WRONGTYPE" in str(results[5])
    assert [r for i, r in enumerate(results) if i != 5] == [f"v{i}" for i in range(10) if i != 5]


async def test_a_cancelled_call_does_not_disturb_the_others(client: Any) -> None:
    await client.mset({f"k{i}": f"v{i}" for i in range(10)})
    pipeline = ScriptPipeline(client, ECHO)
    tasks = [asyncio.create_task(pipeline.call([f"k{i}"])) for i in range(10)]
    await asyncio.sleep(0)  # every call has started: the first is in flight, the others wait
    tasks[3].cancel()

    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [f"v{i}" for i in range(10) if i != 3]
    assert pipeline._sender is None and not pipeline._waiting


async def test_a_server_that_is_gone_fails_every_call_and_leaves_nothing_waiting() -> None:
    client = async_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.5)
    pipeline = ScriptPipeline(client, ECHO)
    try:
        results = await asyncio.gather(*(pipeline.call([f"k{i}"]) for i in range(20)), return_exceptions=True)
    finally:
        await client.aclose()

    assert len(results) == 20 and all(isinstance(r, (RedisConnectionError, OSError)) for r in results), results
    assert pipeline._sender is None and not pipeline._waiting


def _stored(redis_url: str, key: SessionKey, memory: WorkingMemory) -> None:
    store = RedisWorkingMemoryStore(redis_client(redis_url))
    try:
        store.put(key, memory)
    finally:
        store.close()


async def test_the_reader_answers_what_the_store_answers(redis_url: str) -> None:
    keys = [SessionKey(tenant="t1", session_id=f"s{i}", user_id="u") for i in range(40)]
    for i, key in enumerate(keys):
        memory = WorkingMemory(
            session_id=key.session_id,
            messages=[MemoryMessage(role="user", content=f"message {i} é 🙂")],
            data={"i": i},
            ttl_seconds=600 if i % 2 else None,
        )
        _stored(redis_url, key, memory)
    store = RedisWorkingMemoryStore(redis_client(redis_url))
    reader = RedisSessionReader(async_redis_client(redis_url))
    try:
        decoded = await asyncio.gather(*(reader.get(key) for key in keys))
        as_json = await asyncio.gather(*(reader.get(key, as_json=True) for key in keys))
        missing = await reader.get(SessionKey(tenant="t2", session_id="s1", user_id="u"), as_json=True)
        expected = [store.get(key) for key in keys]
    finally:
        await reader.aclose()
        store.close()

    assert decoded == expected
    assert all(isinstance(j, SessionJson) for j in as_json)
    assert [WorkingMemory.model_validate_json(j) for j in as_json] == expected
    assert missing is None  # another tenant's key: nothing


async def test_the_reader_decodes_a_document_not_written_in_this_format(redis_url: str) -> None:
    key = SessionKey(tenant="t1", session_id="old")
    _stored(redis_url, key, WorkingMemory(session_id="old", messages=[MemoryMessage(role="user", content="hi")]))
    plain = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    meta_key = keys.session_meta_key(keys.DEFAULT_PREFIX, key)
    assert await plain.hdel(meta_key, "wire") == 1  # as a document from before WIRE_VERSION, or after a prime
    await plain.aclose()
    reader = RedisSessionReader(async_redis_client(redis_url))
    try:
        memory = await reader.get(key, as_json=True)
    finally:
        await reader.aclose()

    assert isinstance(memory, WorkingMemory) and memory.messages[0].content == "hi"


async def test_the_reader_turns_a_redis_failure_into_a_503_error() -> None:
    reader = RedisSessionReader(async_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.5))
    try:
        with pytest.raises(DependencyUnavailableError) as raised:
            await reader.get(SessionKey(tenant="t1", session_id="s1"))
    finally:
        await reader.aclose()
    assert raised.value.dependency == "redis" and "get failed" in raised.value.detail
