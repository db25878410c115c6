"""HTTP throughput of one `agent-memory serve` process: the cheap health check vs a working-memory GET.

A real server process (default configuration: auth and extraction off, working memory in a real
redis-server, the fake embedder so no model loads) is loaded by `wrk` on loopback: `/v1/health` and a GET
of a two-message session, alternating, in the same run, so machine noise hits both alike. The target of
issue 7: the GET answers at least 80% as many requests per second as the health check.

    python -m bench.http_throughput [--seconds 8] [--rounds 3] [--connections 32] [--workers 1] [--pin]

Needs `wrk` (Debian: `apt-get install wrk`). On a 2-core machine the server, redis-server and wrk share
both cores, so a GET also pays for Redis's and wrk's scheduling on the server's core, which a deployment
(ElastiCache on its own machine) does not. `--pin` puts the server on core 0 and redis-server and a
one-thread wrk on core 1: closer to that deployment, and reported as its own row.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.redis_process import free_port, running_redis_server
from tests.fixtures.serve_process import AGENT_MEMORY, ServeDidNotStart, wait_until_healthy

from bench._report import machine, table, write_json

SESSION = "bench-session"
ROUTES = {"health": "/v1/health", "working_memory_get": f"/v1/working-memory/{SESSION}"}


def _wrk(url: str, *, seconds: int, connections: int, pin: bool) -> float:
    threads = "-t1" if pin else "-t2"
    output = subprocess.run(
        ["wrk", threads, f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, {1})) if pin else None,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match or re.search(r"Non-2xx or 3xx responses", output):
        raise SystemExit(f"wrk against {url} failed or got errors:\n{output}")
    return float(match.group(1))


def _serve(redis_url: str, data_dir: str, workers: int, pin: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "EMBEDDING_PROVIDER": "fake", "OPENAI_API_KEY": ""}
    process = subprocess.Popen(
        [str(AGENT_MEMORY), "serve", "--port", str(port), "--data-dir", data_dir, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pin else None,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
    except ServeDidNotStart as exc:
        process.kill()
        raise SystemExit(str(exc)) from None
    return process, base


def run(
    *, seconds: int = 8, rounds: int = 3, connections: int = 32, workers: int = 1, pin: bool = False
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench.http_throughput needs wrk on PATH (apt-get install wrk)")
    if pin and len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("--pin needs at least two cores")
    samples: dict[str, list[float]] = {name: [] for name in ROUTES}
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_redis_server(Path(workdir)) as redis,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        if pin:
            os.sched_setaffinity(redis.process.pid, {1})
        process, base = _serve(redis.url, data_dir, workers, pin)
        try:
            session = {
                "messages": [
                    {"role": "user", "content": "I'm planning a trip to Lisbon in May."},
                    {"role": "assistant", "content": "Noted: Lisbon, May. Flights or hotels first?"},
                ],
            }
            assert httpx.put(f"{base}{ROUTES['working_memory_get']}", json=session).status_code == 200
            for path in ROUTES.values():  # warm up both
                _wrk(f"{base}{path}", seconds=2, connections=connections, pin=pin)
            for _ in range(rounds):
                for name, path in ROUTES.items():
                    samples[name].append(_wrk(f"{base}{path}", seconds=seconds, connections=connections, pin=pin))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "workers": workers,
        "pinned": pin,
        "machine": machine(),
        "requests_per_second": samples,
        "median_requests_per_second": medians,
        "get_over_health": medians["working_memory_get"] / medians["health"],
    }


def markdown(data: dict[str, Any]) -> str:
    medians = data["median_requests_per_second"]
    rows = [
        (name, f"{medians[name]:,.0f}", " / ".join(f"{v:,.0f}" for v in data["requests_per_second"][name]))
        for name in ROUTES
    ]
    return "\n".join(
        [
            f"### HTTP throughput, one `agent-memory serve` ({data['workers']} worker), "
            f"wrk -t{1 if data['pinned'] else 2} -c{data['connections']}, {data['rounds']} × {data['seconds']} s "
            f"per route, alternating{' (server on core 0; redis-server and wrk on core 1)' if data['pinned'] else ''}",
            "",
            table(["route", "median req/s", "each round"], rows),
            "",
            f"Working-memory GET / health: **{data['get_over_health']:.0%}** (target ≥ 80%).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="server on core 0; redis-server and wrk on core 1")
    args = parser.parse_args(argv)
    results = run(
        seconds=args.seconds, rounds=args.rounds, connections=args.connections, workers=args.workers, pin=args.pin
    )
    write_json("http_throughput-pinned" if args.pin else "http_throughput", results)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
