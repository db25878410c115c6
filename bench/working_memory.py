"""Working-memory GET/PUT through the Lambda handler vs a raw redis-py round trip of the same JSON.

The handler path is the whole ApiFunction in-process: API Gateway v2 event → Powertools → Mangum →
FastAPI → WorkingMemoryService → RedisWorkingMemoryStore → a real redis-server on loopback. Logs and
EMF metrics are written (to /dev/null), as they are on Lambda. The difference at p50 is what the
service adds on top of the network round trip it cannot avoid.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._redis import redis_server

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "500"))
WARMUP = 50
MESSAGES = 20
SESSION = "bench-session"
REPO = Path(__file__).resolve().parents[1]


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return {"p50_ms": statistics.median(samples_ns) / 1e6, "p95_ms": cuts[94] / 1e6}


def _measure(call: Callable[[], object]) -> dict[str, float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(ITERATIONS):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return _percentiles(samples)


def _events() -> tuple[dict[str, Any], dict[str, Any]]:
    """PUT and GET events for a 20-message session, derived from the checked-in event files."""
    put = json.loads((REPO / "events" / "working_memory_put.json").read_text())
    get = json.loads((REPO / "events" / "working_memory_get.json").read_text())
    body = json.loads(put["body"])
    body["messages"] = [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"Message {i}: the agent and the user talk about trip plans, dates and packing lists. " * 3,
            "id": f"01JGKZ3M4N5P6Q7R8S9T0V{i:04d}",
        }
        for i in range(MESSAGES)
    ]
    path = f"/v1/working-memory/{SESSION}"
    for event in (put, get):
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
    put["body"] = json.dumps(body)
    put["headers"]["content-length"] = str(len(put["body"].encode()))
    # The scope the client sends (namespace and user), so the key is found directly; without the user
    # the service resolves the session by id first (two more round trips). No model_name: both sides
    # move the whole session, nothing is truncated.
    get["rawQueryString"] = "namespace=demo&user_id=u1"
    get["queryStringParameters"] = {"namespace": "demo", "user_id": "u1"}
    return put, get


def run() -> dict[str, Any]:
    import redis
    from mangum import Mangum

    from agent_memory.bootstrap import Container
    from agent_memory.cli import FakeLambdaContext, load_module
    from agent_memory.config import Settings
    from agent_memory.http.app import create_app

    put_event, get_event = _events()
    with (
        redis_server() as url,
        tempfile.TemporaryDirectory() as data_dir,
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        settings = Settings(
            _env_file=None,
            redis_url=url,
            AGENT_MEMORY_DATA_DIR=Path(data_dir),  # type: ignore[call-arg]
            embedding_provider="fake",
            openai_api_key=None,
        )
        module: Any = load_module(REPO / "functions" / "api" / "api_handler.py")
        # The handler builds its app from the environment; this one is wired to the bench server.
        module._asgi = Mangum(create_app(Container(settings), inline_blocking_calls=True), lifespan="off")
        context = FakeLambdaContext()

        def handler_put() -> None:
            assert module.handler(put_event, context)["statusCode"] == 200

        def handler_get() -> None:
            assert module.handler(get_event, context)["statusCode"] == 200

        stored = module.handler(put_event, context)["body"]  # the document as the API returns it
        client = redis.Redis.from_url(url)
        client.set("raw:bench", stored)

        def raw_get() -> None:
            client.get("raw:bench")

        def raw_put() -> None:
            pipe = client.pipeline(transaction=True)  # MULTI/EXEC: value and TTL together, like the store
            pipe.set("raw:bench", stored)
            pipe.expire("raw:bench", 3600)
            pipe.execute()

        results = {
            "handler_get": _measure(handler_get),
            "raw_get": _measure(raw_get),
            "handler_put": _measure(handler_put),
            "raw_put": _measure(raw_put),
        }
        client.close()
    return {
        "iterations": ITERATIONS,
        "warmup": WARMUP,
        "messages": MESSAGES,
        "document_bytes": len(stored.encode()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": results,
        "overhead_p50_ms": {
            "get": results["handler_get"]["p50_ms"] - results["raw_get"]["p50_ms"],
            "put": results["handler_put"]["p50_ms"] - results["raw_put"]["p50_ms"],
        },
    }


def markdown(data: dict[str, Any]) -> str:
    r, over = data["results"], data["overhead_p50_ms"]
    rows = [
        ("GET via handler", r["handler_get"]),
        ("GET raw redis-py", r["raw_get"]),
        ("PUT via handler", r["handler_put"]),
        ("SET+EXPIRE raw redis-py (MULTI)", r["raw_put"]),
    ]
    lines = [
        f"### Working memory, {data['messages']} messages ({data['document_bytes']} B), "
        f"{data['iterations']} runs after {data['warmup']} warm-up",
        "",
        "| operation | p50 ms | p95 ms |",
        "|---|---:|---:|",
        *(f"| {name} | {m['p50_ms']:.3f} | {m['p95_ms']:.3f} |" for name, m in rows),
        "",
        f"Handler overhead at p50: GET +{over['get']:.3f} ms, PUT +{over['put']:.3f} ms.",
    ]
    return "\n".join(lines)
