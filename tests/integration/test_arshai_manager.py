"""The Arshai memory manager (integrations/arshai, issue 12 item 3) in an environment of its own.

Arshai 1.15.0 pins openai<2 and mcp<2, which the service's own dependencies exclude, so it is never installed
beside the service: this test builds `.venv-arshai` (arshai==1.15.0, pytest and the manager package, which
depends only on httpx), cached by a stamp named after the package's pyproject hash as the Makefile's stamps
are, and runs the package's own tests there against a live `agent-memory serve` with API keys (and a port with
nothing behind it). Building the venv needs PyPI; when it fails the test fails (never skips), so CI notices.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.redis_process import free_port
from tests.integration.test_auth_serve import create_key, serving

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "integrations" / "arshai"
VENV = ROOT / ".venv-arshai"
INSTALL_TIMEOUT_SECONDS = 900  # a cold pip install of arshai and its dependencies: about 3 minutes here


def arshai_python() -> Path:
    """The venv's interpreter, (re)built when the package's pyproject.toml changed since the last build."""
    digest = hashlib.sha256((PACKAGE / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{digest}"
    python = VENV / "bin" / "python"
    if stamp.exists() and python.exists():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", f"{PACKAGE}[test]"],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"building .venv-arshai took over {INSTALL_TIMEOUT_SECONDS} s: {' '.join(step)}")
        if done.returncode != 0:
            pytest.fail(f"building .venv-arshai failed ({' '.join(step)}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    stamp.touch()
    return python


def test_arshais_working_memory_agent_through_the_manager_against_a_live_server(tmp_path: Path) -> None:
    python = arshai_python()
    data_dir = tmp_path / "memory"
    _, key = create_key(data_dir, "--tenant", "arshai-tests")
    # The real local embedder (long-term search by query ranks by meaning); no rate limit for a burst of turns.
    with serving(data_dir, EMBEDDING_PROVIDER="local", RATE_LIMIT_PER_SECOND="0") as base_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "AGENT_MEMORY"))}
        env.update(AGENT_MEMORY_URL=base_url, AGENT_MEMORY_API_KEY=key,
                   AGENT_MEMORY_STOPPED_URL=f"http://127.0.0.1:{free_port()}")
        done = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--show-capture=no", "--tb=short",
             "tests"],
            cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    output = done.stdout[:8000] + done.stderr[-2000:]
    assert done.returncode == 0, output
    assert "5 passed" in done.stdout and "skipped" not in done.stdout, output
