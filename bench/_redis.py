"""A throwaway redis-server on a free loopback port, for benches (tests have their own fixture)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _binary() -> str:
    for candidate in (os.environ.get("REDIS_SERVER_BIN"), "/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("redis-server not found ($REDIS_SERVER_BIN, /usr/bin, PATH); apt-get install redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """Yields `redis://127.0.0.1:<port>/0` of a fresh server without persistence; stops it on exit."""
    import redis

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        command = [
            _binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--logfile",
            str(Path(workdir) / "redis.log"),
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            deadline = time.monotonic() + 10
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"redis-server exited with {process.returncode}")
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"redis-server on port {port} did not answer PING") from None
                    time.sleep(0.05)
            client.close()
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
