"""Extraction lag on the embedded path: from sending a working-memory PUT to its extracted memory being
searchable, p50/p95.

A real `agent-memory serve` process (SQLite stores, the fake embedder, the embedded queue worked by the
server's own thread) and the scripted OpenAI-compatible LLM of the tests (`tests/fixtures/openai_stub.py`)
on loopback, answering at once. EXTRACTION_DEBOUNCE_SECONDS=0, so the number is the machinery's own lag
(enqueue, the worker picking the task up, the LLM round trip, embedding, indexing, the search that finds
it); a deployment adds its debounce (5 s by default) and its LLM's latency on top.

    python -m bench.extraction_lag [--runs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.openai_stub import OpenAIStub, _make_handler
from tests.fixtures.redis_process import free_port
from tests.fixtures.serve_process import AGENT_MEMORY, ServeDidNotStart, wait_until_healthy

from bench._report import machine, percentiles, table, write_json

FACT = {"memories": [{"type": "semantic", "text": "User drinks green tea every morning", "topics": ["tea"]}]}


def _serve(data_dir: Path, llm_url: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": llm_url,
           "EXTRACTION_DEBOUNCE_SECONDS": "0", "AGENT_MEMORY_DATA_DIR": str(data_dir)}
    process = subprocess.Popen([str(AGENT_MEMORY), "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
    except ServeDidNotStart:
        process.kill()
        raise
    return base, process


def run(runs: int = 40) -> dict[str, Any]:
    stub = OpenAIStub()
    stub.default_chat_content = json.dumps(FACT)
    llm = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(stub))
    llm.daemon_threads = True
    threading.Thread(target=llm.serve_forever, daemon=True).start()
    stub.base_url = f"http://127.0.0.1:{llm.server_address[1]}/v1"
    lags: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, httpx.Client(timeout=10) as client:
        base, process = _serve(Path(tmp), stub.base_url)
        try:
            for i in range(runs + 3):  # the first three warm the server up and are not counted
                user = f"user-{i}"  # one scope per run, so hash dedup never drops the fact
                body = {"user_id": user, "messages": [{"role": "user", "content": "I drink green tea every morning"}]}
                search = {"text": "", "user_id": {"eq": user}, "limit": 1}
                started = time.perf_counter()
                put = client.put(f"{base}/v1/working-memory/s-{i}", json=body)
                assert put.headers.get("X-Agent-Memory-Extraction", "").startswith("queued"), put.headers
                while not client.post(f"{base}/v1/long-term-memory/search", json=search).json()["memories"]:
                    if time.perf_counter() - started > 30:
                        raise RuntimeError(f"run {i}: nothing extracted after 30 s")
                    time.sleep(0.002)
                if i >= 3:
                    lags.append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=20)
            llm.shutdown()
    return {"machine": machine(), "runs": runs, "put_to_searchable": percentiles(lags)}


def markdown(results: dict[str, Any]) -> str:
    lag = results["put_to_searchable"]
    return table(
        ["path", "p50 ms", "p95 ms", "runs"],
        [["embedded queue, PUT → searchable (debounce 0, scripted LLM)", f"{lag['p50_ms']:.0f}",
          f"{lag['p95_ms']:.0f}", lag["n"]]],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args(argv)
    results = run(args.runs)
    write_json("extraction_lag", results)
    print(markdown(results))


if __name__ == "__main__":
    main()
