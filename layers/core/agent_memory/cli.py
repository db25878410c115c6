"""`agent-memory`: run the API locally, or invoke a Lambda handler in-process with an event file.

    agent-memory serve --port 8000 --data-dir ./memory [--workers 2]
    agent-memory invoke ApiFunction --event events/health.json
    agent-memory worker --data-dir ./memory       # works the embedded task queue until interrupted
    agent-memory keys create --tenant acme --name ci   # an API key, printed once on the last line
    agent-memory users delete --tenant acme --user alice   # everything of one user (asks first)
    agent-memory mcp --tenant acme     # the MCP server over stdio, for desktop and IDE agents

`invoke` stands in for `sam local invoke` on machines without Docker: same handler, same event files.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

# `invoke` reads each function's handler, timeout, memory and literal environment from template.yaml
# (agent_memory/sam_template.py), so a function added to the template is invocable with no change here.

# layers/core/agent_memory/cli.py → the repository root, for runs from outside a checkout's root.
_REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    function_name: str = "ApiFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def load_module(file_path: str | Path) -> ModuleType:
    """Import a handler module by file path, once per process, under its own name (as Lambda does)."""
    path = Path(file_path)
    if not path.is_absolute() and not path.exists():
        path = _REPO_ROOT / path
    if not path.is_file():
        raise FileNotFoundError(f"handler module not found: {file_path}")
    name = path.stem
    cached = sys.modules.get(name)
    if cached is not None and Path(getattr(cached, "__file__", "")).resolve() == path.resolve():
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so a second load reuses the module and its cached app
    spec.loader.exec_module(module)
    return module


def load_handler(function: str, template: str | Path | None = None) -> Any:
    """The handler callable of a SAM function by logical id (`ApiFunction`), as template.yaml names it.

    KeyError naming the known functions when the template has no such function."""
    from agent_memory.sam_template import TEMPLATE, TemplateError, function_spec, load_template

    path = Path(template or TEMPLATE)
    try:
        spec = function_spec(load_template(path), function)
    except TemplateError as exc:
        raise KeyError(str(exc)) from None
    return getattr(load_module(path.parent / spec.handler_file), spec.attribute)  # CodeUri: from the template


def _template_environment(function: str, template: Path) -> tuple[Any, list[str]]:
    """The function's spec, after setting its literal template variables the caller did not set itself.

    Returns the spec and one note per variable left unset (a !Ref or !If has no value off AWS)."""
    from agent_memory.sam_template import function_spec, load_template

    spec = function_spec(load_template(template), function)
    for name, value in spec.environment.items():
        os.environ.setdefault(name, value)  # the caller's environment wins, as with `sam local --env-vars`
    notes = [f"{name} ({why})" for name, why in spec.skipped.items() if name not in os.environ]
    return spec, notes


def _invoke(args: argparse.Namespace) -> int:
    source = sys.stdin if args.event == "-" else None
    try:
        raw = source.read() if source else Path(args.event).read_text()
        event = json.loads(raw)
    except OSError as exc:
        return _fail(f"cannot read event file {args.event}: {exc.strerror or exc}")
    except json.JSONDecodeError as exc:
        return _fail(f"event {args.event} is not JSON: {exc}")
    # Powertools logs and EMF metrics go to stdout, as on Lambda; here stdout is the response, so
    # everything the handler prints goes to stderr (the Logger binds its stream at import, hence both).
    from agent_memory.sam_template import TEMPLATE, TemplateError

    with contextlib.redirect_stdout(sys.stderr):
        template = Path(args.template) if args.template else TEMPLATE
        try:
            spec, unset = _template_environment(args.function, template)
        except TemplateError as exc:
            return _fail(f"invalid choice: {exc}" if "unknown function" in str(exc) else str(exc))
        if unset:
            print(f"invoke: not set from {template.name} (no value off AWS; set them yourself if needed): "
                  + ", ".join(unset), file=sys.stderr)
        try:
            handler = load_handler(args.function, template)
        except (KeyError, FileNotFoundError) as exc:
            return _fail(str(exc.args[0]))
        context = FakeLambdaContext(function_name=args.function, timeout_seconds=spec.timeout_seconds,
                                    memory_limit_in_mb=spec.memory_mb)
        try:
            response = handler(event, context)
        except Exception as exc:  # what the Lambda runtime reports for a raised error (an authorizer's 401)
            response, failed = {"errorMessage": str(exc), "errorType": type(exc).__name__}, True
        else:
            failed = False
    print(json.dumps(response, indent=2))
    return 1 if failed else 0


def _check_startup() -> str | None:
    """Build the configured adapters and prepare the long-term index; the problem, or None when ready.

    A wrong setting or an embedding dimension that does not match the index stops the server here,
    with the reason, instead of failing the first request that needs it.
    """
    from pydantic import ValidationError

    from agent_memory.bootstrap import get_container
    from agent_memory.domain.errors import AgentMemoryError

    try:
        get_container().check_startup()
    except ValidationError as exc:
        return f"invalid configuration: {exc}"
    except AgentMemoryError as exc:
        return f"cannot start: {exc.detail}"
    return None


def _init(args: argparse.Namespace) -> int:
    problem = _check_startup()
    if problem:
        return _fail(problem)
    from agent_memory.bootstrap import get_container

    container = get_container()
    print(
        f"ready: long-term index for {container.embedder.model} "
        f"({container.embedder.dimensions} dimensions) in {type(container.long_term_store).__name__}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # only `serve` needs it; the Lambda layer does not ship it

    problem = _check_auth_binding(args.host) or _check_startup()
    if problem:
        return _fail(problem)
    factory = "agent_memory.http.app:create_served_app"
    print(f"agent-memory: serving on http://{args.host}:{args.port} (docs at /docs)", file=sys.stderr)
    if args.reload or args.workers > 1:
        from agent_memory.bootstrap import get_container

        # The check built adapters in this process; each worker (or the reloaded app) builds its own.
        get_container().close()
        uvicorn.run(factory, factory=True, host=args.host, port=args.port, reload=args.reload, workers=args.workers)
    else:
        from agent_memory.http.app import create_served_app

        uvicorn.run(create_served_app(), host=args.host, port=args.port)
    return 0


def _check_auth_binding(host: str) -> str | None:
    """AUTH_MODE=disabled makes every caller every tenant: allowed only where no one else can connect."""
    import ipaddress

    from pydantic import ValidationError

    from agent_memory.config import get_settings

    try:
        mode = get_settings().auth_mode
    except ValidationError as exc:
        return f"invalid configuration: {exc}"
    if mode != "disabled" or host == "localhost":
        return None
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (
        f"refusing to serve on {host} with AUTH_MODE=disabled: anyone who can reach it would have every "
        "tenant's data. Bind to 127.0.0.1, or set AUTH_MODE=api_key (create a key with "
        "`agent-memory keys create --tenant <t>`) or AUTH_MODE=jwt"
    )


def _with_container(run: Any) -> int:
    """`run(container)` over the stores the settings select, closed after; a bad configuration or a
    refused operation is one line on stderr and exit status 1."""
    from pydantic import ValidationError

    from agent_memory.domain.errors import AgentMemoryError

    try:
        from agent_memory.bootstrap import get_container

        container = get_container()
        try:
            return int(run(container))
        finally:
            container.close()
    except ValidationError as exc:
        return _fail(f"invalid configuration: {exc}")
    except AgentMemoryError as exc:
        return _fail(exc.detail)


def _keys(args: argparse.Namespace) -> int:
    """`agent-memory keys create|list|revoke` against the store the settings select (SQLite or DynamoDB)."""
    from agent_memory.services.auth import ApiKeyService

    return _with_container(lambda container: args.keys_run(ApiKeyService(container.api_key_store), args))


def _keys_create(keys: Any, args: argparse.Namespace) -> int:
    from agent_memory.domain.auth import DEFAULT_KEY_SCOPES

    record, key = keys.create(
        args.tenant, name=args.name or "", scopes=args.scope or DEFAULT_KEY_SCOPES, expires_in_days=args.expires_in_days
    )
    print(f"key_id: {record.key_id}")
    print(f"tenant: {record.tenant}")
    print(f"scopes: {' '.join(sorted(record.scopes))}")
    print(f"expires: {_when(record.expires_at) or 'never'}")
    print("the key (shown once, store it now):")
    print(key)
    return 0


def _keys_list(keys: Any, args: argparse.Namespace) -> int:
    rows = [
        {
            "key_id": k.key_id,
            "name": k.name,
            "tenant": k.tenant,
            "scopes": sorted(k.scopes),
            "created_at": _when(k.created_at),
            "expires_at": _when(k.expires_at),
            "last_used_at": _when(k.last_used_at),
            "revoked_at": _when(k.revoked_at),
        }
        for k in keys.list_keys(args.tenant)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [["key_id", "tenant", "name", "scopes", "created", "expires", "last_used", "revoked"]]
    for row in rows:
        cells = [row["key_id"], row["tenant"], row["name"] or "-", ",".join(row["scopes"])]
        table.append(cells + [row[k] or "-" for k in ("created_at", "expires_at", "last_used_at", "revoked_at")])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _keys_revoke(keys: Any, args: argparse.Namespace) -> int:
    record = keys.revoke(args.key_id)
    print(f"revoked {record.key_id} (tenant {record.tenant}) at {_when(record.revoked_at)}")
    return 0


def _when(value: Any) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value is not None else None


def _worker(args: argparse.Namespace) -> int:
    """Work the embedded task queue until SIGINT/SIGTERM; a task under way finishes first."""
    import signal
    import threading

    problem = _check_startup()
    if problem:
        return _fail(problem)
    from agent_memory.bootstrap import get_container

    container = get_container()
    worker = container.task_worker()
    if worker is None:
        reason = "the queue is SQS (ExtractionFunction consumes it)" if container.settings.sqs_queue_url else (
            "background tasks are off (they need an LLM, OPENAI_API_KEY or LLM_PROVIDER, and LONG_TERM_MEMORY)"
        )
        return _fail(f"nothing to work: {reason}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"agent-memory: working the task queue in {container.settings.data_dir}", file=sys.stderr)
    try:
        worker.run(stop)
    finally:
        container.close()
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    """One pass of the scheduled cleanup (what CleanupFunction runs): expired sessions swept, final
    extractions queued, forgetting policies applied. `--max-seconds` stops it early, as Lambda's timeout
    would; the next run resumes. Prints the report as JSON."""
    import dataclasses

    from agent_memory.bootstrap import get_container
    from agent_memory.domain.errors import AgentMemoryError

    container = get_container()
    remaining = None
    if args.max_seconds is not None:
        deadline = time.monotonic() + args.max_seconds
        remaining = lambda: int((deadline - time.monotonic()) * 1000)  # noqa: E731
    try:
        report = container.cleanup_service.run(remaining_ms=remaining)
    except AgentMemoryError as exc:
        return _fail(f"cleanup failed: {exc.detail}")
    finally:
        container.close()
    print(json.dumps(dataclasses.asdict(report), indent=2))
    return 0


def _users(args: argparse.Namespace) -> int:
    """`agent-memory users export|delete`: one user's data in one tenant, over the stores the settings select
    (the service behind `GET /v1/users/{id}/export` and `DELETE /v1/users/{id}`)."""
    return _with_container(lambda container: args.users_run(container.user_data_service, args))


def _users_export(service: Any, args: argparse.Namespace) -> int:
    chunks = service.export_json(args.tenant, args.user, args.namespace)
    if args.output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
        return 0
    # Written beside the target and renamed at the end, so a failed export never leaves a partial file.
    partial = args.output.with_name(f".{args.output.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(chunk)
        partial.replace(args.output)
    finally:
        partial.unlink(missing_ok=True)
    print(f"exported user {args.user!r} of tenant {args.tenant!r} to {args.output}", file=sys.stderr)
    return 0


def _users_delete(service: Any, args: argparse.Namespace) -> int:
    scope = f"namespace {args.namespace!r}" if args.namespace else "every namespace"
    if not args.yes:
        print(f"Delete everything of user {args.user!r} in tenant {args.tenant!r} ({scope})? "
              "This cannot be undone. Type 'yes': ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return _fail("not deleted (no confirmation; pass --yes to skip it)")
    print(json.dumps(service.delete(args.tenant, args.user, args.namespace).to_json(), indent=2))
    return 0


def _mcp(args: argparse.Namespace) -> int:
    """The MCP server over stdin/stdout for one tenant until the client closes stdin (agent_memory/mcp).

    stdout carries only the protocol: the start-up check and every log line go to stderr."""
    import anyio

    from agent_memory.domain.errors import AgentMemoryError
    from agent_memory.services.auth import check_tenant

    with contextlib.redirect_stdout(sys.stderr):
        problem = _check_startup()
        if problem:
            return _fail(problem)
        from agent_memory.bootstrap import get_container

        container = get_container()
        try:
            tenant = check_tenant(args.tenant or container.settings.default_tenant, source="--tenant")
        except AgentMemoryError as exc:
            container.close()
            return _fail(exc.detail)
        from agent_memory.mcp.server import run_stdio
        from agent_memory.services.task_worker import BackgroundWorker

        # Extraction queued by this process's writes runs here too, as under `serve`.
        worker = container.task_worker() if container.settings.embedded_worker else None
        background = BackgroundWorker(worker) if worker is not None else None
    if background is not None:
        background.start()
    try:
        anyio.run(run_stdio, container, tenant)
    except KeyboardInterrupt:
        pass
    finally:
        if background is not None:
            background.stop()
        container.close()
    return 0


def _fail(message: str) -> int:
    print(f"agent-memory: error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-memory", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT") or 8000), help="port (default $PORT, else 8000)"
    )
    serve.add_argument("--workers", type=_positive, default=1, help="server processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    _add_data_dir(serve)
    serve.set_defaults(run=_serve)

    init = commands.add_parser("init", help="check the configuration and create the long-term index")
    _add_data_dir(init)
    init.set_defaults(run=_init)

    worker = commands.add_parser("worker", help="work the embedded task queue (extraction) until interrupted")
    _add_data_dir(worker)
    worker.set_defaults(run=_worker)

    keys = commands.add_parser("keys", help="create, list and revoke API keys (AUTH_MODE=api_key)")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key; prints it alone on the last line, once")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument("--name", help="what the key is for (shown by `keys list`)")
    create.add_argument(
        "--scope",
        action="append",
        choices=["memory:read", "memory:write", "memory:admin"],
        help="repeat for several (default memory:read and memory:write)",
    )
    create.add_argument("--expires-in-days", type=float, help="the key stops working after this many days")
    create.set_defaults(keys_run=_keys_create)
    listing = keys_commands.add_parser("list", help="list keys (never the key or its hash)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(keys_run=_keys_list)
    revoke = keys_commands.add_parser("revoke", help="revoke a key: the next request with it gets 401")
    revoke.add_argument("key_id", help="the id `keys create` and `keys list` show")
    revoke.set_defaults(keys_run=_keys_revoke)
    for command in (create, listing, revoke):
        _add_data_dir(command)
    keys.set_defaults(run=_keys)

    cleanup = commands.add_parser("cleanup", help="one pass of the scheduled cleanup (sweep, final extraction, forget)")
    cleanup.add_argument("--max-seconds", type=float, help="stop before this many seconds (the next run resumes)")
    _add_data_dir(cleanup)
    cleanup.set_defaults(run=_cleanup)

    users = commands.add_parser("users", help="export or delete everything of one user (data rights)")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    export = users_commands.add_parser("export", help="write the user's data as JSON (stdout or --output)")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    export.set_defaults(users_run=_users_export)
    delete = users_commands.add_parser("delete", help="delete the user's data from every store; prints counts")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(users_run=_users_delete)
    for command in (export, delete):
        command.add_argument("--tenant", required=True, help="the tenant the user belongs to")
        command.add_argument("--user", required=True, help="the user id (user_id in the data)")
        command.add_argument("--namespace", help="only this namespace (default: every namespace)")
        _add_data_dir(command)
    users.set_defaults(run=_users)

    mcp = commands.add_parser("mcp", help="the MCP server over stdio (memory tools for MCP clients)")
    mcp.add_argument("--tenant", help="the tenant the tools act for (default $DEFAULT_TENANT, else default)")
    _add_data_dir(mcp)
    mcp.set_defaults(run=_mcp)

    invoke = commands.add_parser("invoke", help="invoke a Lambda handler in-process with an event")
    invoke.add_argument("function", help="SAM logical id of a function in template.yaml (ApiFunction)")
    invoke.add_argument("--template", help="the SAM template that declares it (default: the checkout's template.yaml)")
    invoke.add_argument("--event", required=True, help="event JSON file, or - for stdin")
    invoke.set_defaults(run=_invoke)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_data_dir(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--data-dir",
        type=Path,
        help="where the embedded SQLite files live (sets AGENT_MEMORY_DATA_DIR; default .agent-memory)",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "data_dir", None) is not None:
        # Through the environment, so Settings, server workers and the reloader all see it.
        os.environ["AGENT_MEMORY_DATA_DIR"] = str(args.data_dir.resolve())
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
