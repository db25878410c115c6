"""Cold start of ApiFunction from the built Lambda layer, side by side with a one-route FastAPI+Mangum handler.

    .venv/bin/python -m bench.layer_cold_start [--runs 10] [--layer DIR] [--no-source-rows] [--no-api-key-rows]

Builds the layer with the deployment's recipe (`layers/build.sh`) for this machine's architecture (the
arm64 build's .so files cannot run on x86_64), unless --layer names a built one (the directory holding
`python/`). Every sample is a fresh Python 3.12 interpreter, as Lambda's INIT is, with
`PYTHONDONTWRITEBYTECODE=1` and `-B` (Lambda's /opt is read-only: nothing compiled is kept) and `-s`,
whose sys.path is the layer's `python/` and the handler's directory ahead of the standard library only;
the child fails the sample if any third-party module came from elsewhere. Timed in the child, from
before `import <handler module>` to after the first response:

- `minimal`: a FastAPI app with one GET route under Mangum (app built at import, as usually written): the
  target's reference;
- `minimal, health, collector paused`: the same with the garbage collector paused for its cold start, as
  our handlers do (agent_memory/cold_start.py): what that pause alone gives (for comparison only);
- `ours, health` / `ours, first GET` / `ours, first PUT`: api_handler with a real redis-server
  (REDIS_URL), the first request of the process being `GET /v1/health`, a working-memory GET of a stored
  session (`events/working_memory_get.json`, with `model_name`: the response's context percentages count
  tokens), the same GET without `model_name` (`ours, first GET, no model_name`: what agent-memory-client
  sends unless its config sets `default_model_name`), or a working-memory PUT; long-term memory and
  extraction off (LONG_TERM_MEMORY=false,
  ENABLE_DISCRETE_MEMORY_EXTRACTION=false: their clients are built on their first use, which these
  requests never reach), AUTH_MODE=disabled (AWS_LAMBDA_FUNCTION_NAME unset, else the app refuses it),
  AWS_LAMBDA_RUNTIME_API set as the runtime sets it;
- `ours, first GET/PUT, api_key` (`--no-api-key-rows` leaves them out): the stack's default auth, the key
  read from a moto DynamoDB server (in this process); with the credentials in the environment, as on
  Lambda, the read goes through adapters/_aws_json.py and boto3 stays unimported;
- `ours, first GET/PUT, api_key, every feature on`: the same with the rest of what the created stack turns
  on (`_full_stack`): Redis's AUTH token read from Secrets Manager (moto), long-term memory (OpenSearch,
  never reached by these requests), Bedrock embeddings and LLM, extraction queued (the PUT sends its task
  to SQS on moto);
- every row's sys.path ends with boto3 pip-installed and compiled in a directory of its own, standing for
  the runtime's /var/runtime, which every Lambda function has (Powertools imports botocore's package);
- the same rows from a copy of the layer without its `__pycache__` directories (`--no-source-rows`
  leaves them out): what a layer without bytecode costs on every cold start.

Samples of all rows are interleaved, so a burst of load on the shared machine hits every row alike.
Results: printed (Markdown) and written to bench/results/layer_cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench._redis import redis_server
from bench._report import table, write_json

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"
API_DIR = REPO / "functions" / "api"

MINIMAL_HANDLER = '''\
"""The smallest FastAPI+Mangum Lambda handler: one route, app and adapter built at import."""
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/v1/health")
def health():
    return {"now": 0}


handler = Mangum(app, lifespan="off")
'''

# The same handler with the collector paused for its cold start as ours is (agent_memory/cold_start.py):
# what that pause alone would give the minimal handler, for comparison (the target is against the one above).
MINIMAL_PAUSED_HANDLER = '''\
"""The minimal handler, the cyclic garbage collector off from its import to the end of its first invocation."""
import gc

gc.disable()

from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/v1/health")
def health():
    return {"now": 0}


_adapter = Mangum(app, lifespan="off")


def handler(event, context):
    try:
        return _adapter(event, context)
    finally:
        if not gc.isenabled():
            gc.freeze()
            gc.enable()
'''

# Runs in the child (python3.12 -B -s): argv = layer python dir, handler dir, module, event file, and
# and a directory standing for the runtime's /var/runtime (boto3).
_CHILD = r"""
import json, sys, time
layer, handler_dir, module, event_path = sys.argv[1:5]
runtime = sys.argv[5:6]
# The handler and the layer, as /var/task and /opt/python, then the standard library (and /var/runtime).
sys.path[:] = [handler_dir, layer] + [p for p in sys.path if "site-packages" not in p] + runtime
event = json.load(open(event_path))


class Context:
    function_name = "ApiFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    log_group_name = "/aws/lambda/local"
    log_stream_name = "local"

    def get_remaining_time_in_millis(self):
        return 29000


c0, t0 = time.process_time(), time.perf_counter()
handler = __import__(module).handler
t1 = time.perf_counter()
response = handler(event, Context())
t2, c2 = time.perf_counter(), time.process_time()
status = int(response["statusCode"])
assert status < 300, response
import os, sysconfig
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
foreign, from_source = [], []
for name, mod in list(sys.modules.items()):
    path = getattr(mod, "__file__", None) or ""
    if not path or path.startswith(stdlib) and "site-packages" not in path:
        continue
    if not (path.startswith(layer) or path.startswith(handler_dir) or runtime and path.startswith(runtime[0])):
        foreign.append(name)
    elif path.endswith(".py") and path.startswith(layer):
        cached = getattr(mod, "__cached__", None)
        if not cached or not os.path.exists(cached):
            from_source.append(name)
assert not foreign, f"modules from outside the layer: {sorted(foreign)[:10]}"
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_ms": (t2 - t1) * 1e3, "cpu_ms": (c2 - c0) * 1e3,
                  "status": status,
                  "from_source": len(from_source), "modules": len(sys.modules)}))
"""


def python312() -> str:
    """The interpreter the layer is built for: PYTHON312, python3.12 on PATH, or pyenv's newest 3.12."""
    candidates = [os.environ.get("PYTHON312"), shutil.which("python3.12")]
    candidates += sorted((str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")), reverse=True)
    for candidate in candidates:
        if not candidate:
            continue
        check = subprocess.run([candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"],
                               capture_output=True, timeout=30)  # fmt: skip
        if check.returncode == 0:
            return candidate
    raise SystemExit("bench.layer_cold_start needs Python 3.12 (set PYTHON312)")


def build_layer(out: Path, python: str) -> Path:
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    subprocess.run(["bash", str(REPO / "layers" / "build.sh"), str(out), arch], check=True, timeout=900,
                   env={**os.environ, "PYTHON312": python})  # fmt: skip
    return out / "python"


def without_bytecode(layer: Path, out: Path) -> Path:
    shutil.copytree(layer, out, ignore=shutil.ignore_patterns("__pycache__"))
    return out


def _sample(
    python: str, layer: Path, handler_dir: Path, module: str, event: Path, env: dict[str, str],
    runtime: Path,
) -> dict[str, Any]:
    result = subprocess.run(
        [python, "-B", "-s", "-c", _CHILD, str(layer), str(handler_dir), module, str(event), str(runtime)],
        capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{module} {event.name}: {result.stderr.strip()[-2000:]}")
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(key: str) -> dict[str, float]:
        values = [s[key] for s in samples]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    totals = [s["import_ms"] + s["first_ms"] for s in samples]
    return {
        "n": len(samples),
        "import_ms": stats("import_ms"),
        "first_ms": stats("first_ms"),
        "total_ms": {"median": statistics.median(totals), "min": min(totals), "max": max(totals)},
        "cpu_ms": stats("cpu_ms"),
        "modules_compiled_from_source": max(s["from_source"] for s in samples),
        "modules_loaded": statistics.median(s["modules"] for s in samples),
    }


def _load() -> list[float]:
    return list(os.getloadavg())


def _runtime_boto3(out: Path, python: str) -> Path:
    """boto3 for this machine in a directory of its own, compiled like the layer: the runtime's /var/runtime."""
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                    "--only-binary=:all:", "--target", str(out), "boto3"], check=True, timeout=600)  # fmt: skip
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(out)],
                   check=True, timeout=600, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


@contextmanager
def _api_key_table() -> Iterator[tuple[dict[str, str], str]]:
    """moto's DynamoDB with the stack's key table and one key: (environment, the key)."""
    import boto3
    from moto.server import ThreadedMotoServer
    from tests.fixtures.moto_dynamodb import create_api_keys_table
    from tests.fixtures.redis_process import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "API_KEYS_TABLE": "bench-api-keys",
               "DYNAMODB_ENDPOINT_URL": endpoint}  # fmt: skip
        create_api_keys_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                                           aws_access_key_id="testing", aws_secret_access_key="testing"),
                              env["API_KEYS_TABLE"])  # fmt: skip
        cli = Path(sys.executable).with_name("agent-memory")
        created = subprocess.run([str(cli), "keys", "create", "--tenant", "bench", "--name", "bench"],
                                 env={**os.environ, **env, "AUTH_MODE": "api_key"}, capture_output=True, text=True,
                                 check=True, timeout=120)  # fmt: skip
        key = created.stdout.strip().splitlines()[-1].strip()
        yield env, key
    finally:
        server.stop()


REDIS_TOKEN = "bench-redis-token"


def _full_stack(moto_endpoint: str, redis_url: str) -> dict[str, str]:
    """The rest of a stack with every feature on, as the created stack has them: a Redis whose AUTH token
    is read from Secrets Manager (moto's server), long-term memory in OpenSearch (an address nothing
    listens on: a working-memory call must not reach it), Bedrock for embeddings and the LLM (clients
    only built, never called), extraction queued to an SQS queue on moto's server."""
    import boto3
    from tests.fixtures.redis_process import free_port

    options = {"region_name": "us-east-1", "endpoint_url": moto_endpoint, "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}  # fmt: skip
    queue_url = boto3.client("sqs", **options).create_queue(QueueName="bench-extraction")["QueueUrl"]
    boto3.client("secretsmanager", **options).create_secret(Name="bench/redis-token", SecretString=REDIS_TOKEN)
    return {"REDIS_URL": redis_url, "REDIS_AUTH_TOKEN_SECRET": "bench/redis-token",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,
            "LONG_TERM_MEMORY": "true", "OPENSEARCH_URL": f"http://127.0.0.1:{free_port()}",
            "EMBEDDING_PROVIDER": "bedrock", "LLM_PROVIDER": "bedrock",
            "GENERATION_MODEL": "us.amazon.nova-lite-v1:0", "ENABLE_DISCRETE_MEMORY_EXTRACTION": "true",
            "EXTRACTION_DEBOUNCE_SECONDS": "5", "SQS_QUEUE_URL": queue_url,
            "SQS_ENDPOINT_URL": moto_endpoint}  # fmt: skip


def _without_model_name(event: Path, out: Path) -> Path:
    """The GET as agent-memory-client sends it by default (no default_model_name): the namespace only."""
    data = json.loads(event.read_text())
    query = {k: v for k, v in data["queryStringParameters"].items() if k != "model_name"}
    data["queryStringParameters"] = query
    data["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    out.write_text(json.dumps(data))
    return out


def _with_key(event: Path, key: str, out: Path) -> Path:
    data = json.loads(event.read_text())
    data["headers"] = {**data["headers"], "authorization": f"Bearer {key}"}
    out.write_text(json.dumps(data))
    return out


def measure(layer: Path, python: str, runs: int, *, source_rows: bool, api_key_rows: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="layer-cold-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        minimal_dir = tmp / "minimal"
        minimal_dir.mkdir()
        (minimal_dir / "minimal_handler.py").write_text(MINIMAL_HANDLER)
        (minimal_dir / "minimal_paused_handler.py").write_text(MINIMAL_PAUSED_HANDLER)
        layers = {"bytecode": layer}
        if source_rows:
            layers["source only"] = without_bytecode(layer, tmp / "source-only")
        redis_url = stack.enter_context(redis_server())
        # Every function's sys.path ends with the runtime's /var/runtime, which holds boto3 and botocore
        # (Powertools imports botocore's package when it can, to tag the SDK's user agent)
        runtime = _runtime_boto3(tmp / "runtime", python)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            "REDIS_URL": redis_url,
            "LONG_TERM_MEMORY": "false",
            "ENABLE_DISCRETE_MEMORY_EXTRACTION": "false",
            "AUTH_MODE": "disabled",
            "AGENT_MEMORY_DATA_DIR": str(tmp / "data"),
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "AWS_REGION": "us-east-1",
            # Set by the Lambda runtime in every execution environment; the handlers pause the garbage
            # collector for their cold start only there (agent_memory/cold_start.py)
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        }
        get, put = EVENTS / "working_memory_get.json", EVENTS / "working_memory_put.json"
        get_plain = _without_model_name(get, tmp / "get_plain.json")
        # (name, layer kind, handler dir, module, event, environment)
        rows: list[tuple[str, str, Path, str, Path, dict[str, str]]] = []
        for kind in layers:
            rows += [
                (f"minimal, health ({kind})", kind, minimal_dir, "minimal_handler", EVENTS / "health.json", env),
                (f"minimal, health, collector paused ({kind})", kind, minimal_dir, "minimal_paused_handler",
                 EVENTS / "health.json", env),
                (f"ours, health ({kind})", kind, API_DIR, "api_handler", EVENTS / "health.json", env),
                (f"ours, first GET ({kind})", kind, API_DIR, "api_handler", get, env),
                (f"ours, first GET, no model_name ({kind})", kind, API_DIR, "api_handler", get_plain, env),
                (f"ours, first PUT ({kind})", kind, API_DIR, "api_handler", put, env),
            ]  # fmt: skip
        if api_key_rows:
            key_env, key = stack.enter_context(_api_key_table())
            keyed = {**env, **key_env, "AUTH_MODE": "api_key"}
            rows += [
                ("ours, first GET, api_key (bytecode)", "bytecode", API_DIR, "api_handler",
                 _with_key(get, key, tmp / "get_key.json"), keyed),
                ("ours, first PUT, api_key (bytecode)", "bytecode", API_DIR, "api_handler",
                 _with_key(put, key, tmp / "put_key.json"), keyed),
            ]  # fmt: skip
            # The keyed GETs read the session in the key's tenant
            _sample(python, layer, API_DIR, "api_handler", rows[-1][4], keyed, runtime)
            token_redis = stack.enter_context(redis_server(password=REDIS_TOKEN))
            full = {**keyed, **_full_stack(key_env["DYNAMODB_ENDPOINT_URL"], token_redis)}
            rows += [
                ("ours, first GET, api_key, every feature on (bytecode)", "bytecode", API_DIR,
                 "api_handler", _with_key(get, key, tmp / "get_key.json"), full),
                ("ours, first PUT, api_key, every feature on (bytecode)", "bytecode", API_DIR,
                 "api_handler", _with_key(put, key, tmp / "put_key.json"), full),
            ]  # fmt: skip
            _sample(python, layer, API_DIR, "api_handler", rows[-1][4], full, runtime)  # their GET's session
        # The session the GETs read; one unmeasured round of every row warms the page cache.
        _sample(python, layer, API_DIR, "api_handler", put, env, runtime)
        for _, kind, handler_dir, module, event, row_env in rows:
            _sample(python, layers[kind], handler_dir, module, event, row_env, runtime)
        load_before = _load()
        samples: dict[str, list[dict[str, Any]]] = {row[0]: [] for row in rows}
        started = time.monotonic()
        for _ in range(runs):
            for name, kind, handler_dir, module, event, row_env in rows:
                samples[name].append(_sample(python, layers[kind], handler_dir, module, event, row_env, runtime))
        elapsed = time.monotonic() - started
        load_after = _load()
    results = {name: _summary(s) for name, s in samples.items()}
    minimal = results["minimal, health (bytecode)"]
    for summary in results.values():
        summary["total_vs_minimal"] = summary["total_ms"]["median"] / minimal["total_ms"]["median"]
        summary["cpu_vs_minimal"] = summary["cpu_ms"]["median"] / minimal["cpu_ms"]["median"]
    return {
        "runs": runs,
        "python": _version(python),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "seconds": round(elapsed, 1),
        "rows": results,
    }


def _version(python: str) -> str:
    command = [python, "-c", "import platform; print(platform.python_version())"]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def layer_size(layer: Path) -> dict[str, float]:
    """Unzipped bytes of python/, and the size of a deflate-9 zip of it (what Lambda's 250 MB / upload see)."""
    unzipped = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        archive = shutil.make_archive(str(Path(tmp) / "layer"), "zip", root_dir=layer.parent, base_dir=layer.name)
        zipped = Path(archive).stat().st_size
    return {"unzipped_mb": round(unzipped / 1e6, 1), "zipped_mb": round(zipped / 1e6, 1)}


HEADERS = ["handler, first request (layer)", "import ms", "first request ms", "total ms", "range ms", "vs minimal",
           "CPU ms", "CPU vs minimal", "modules compiled"]  # fmt: skip


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, row in data["rows"].items():
        total, cpu = row["total_ms"], row["cpu_ms"]
        rows.append([
            name, f"{row['import_ms']['median']:.0f}", f"{row['first_ms']['median']:.0f}",
            f"**{total['median']:.0f}**", f"{total['min']:.0f}–{total['max']:.0f}", f"{row['total_vs_minimal']:.2f}×",
            f"{cpu['median']:.0f}", f"{row['cpu_vs_minimal']:.2f}×", row["modules_compiled_from_source"],
        ])  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in data["load_before"])
    return "\n".join([
        f"### Cold start from the layer, medians of {data['runs']} fresh interpreters (Python {data['python']}, "
        f"{data['machine']}, {data['cpus']} cores; load average {load} before)",
        "",
        table(HEADERS, rows),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layer_cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="samples per row (default 10)")
    parser.add_argument("--layer", type=Path, help="a built layer (the directory holding python/); default: build one")
    parser.add_argument("--no-source-rows", action="store_true", help="skip the rows without bytecode")
    parser.add_argument("--no-api-key-rows", action="store_true", help="skip the AUTH_MODE=api_key rows")
    args = parser.parse_args(argv)
    python = python312()
    with tempfile.TemporaryDirectory(prefix="layer-build-") as build_dir:
        layer = (args.layer / "python") if args.layer else build_layer(Path(build_dir), python)
        data = measure(layer, python, args.runs, source_rows=not args.no_source_rows,
                       api_key_rows=not args.no_api_key_rows)
        data["layer"] = layer_size(layer)
    write_json("layer_cold_start", data)
    print(markdown(data))
    after = ", ".join(f"{x:.2f}" for x in data["load_after"])
    size = data["layer"]
    print(f"\nlayer: {size['unzipped_mb']} MB unzipped, {size['zipped_mb']} MB zipped; load average after: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
