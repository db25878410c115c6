"""template.yaml passes `sam validate --lint` and `cfn-lint`.

The tools live outside the project venv (CI installs them into .venv-tools/). Without them the tests
skip locally and fail under CI=true, so a CI image that lost them cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


def find_tool(name: str, env_var: str) -> str:
    """$<env_var>, then .venv-tools/bin/<name>, then PATH; skip (or fail under CI) when absent."""
    candidates = [os.environ.get(env_var), str(REPO / ".venv-tools" / "bin" / name), shutil.which(name)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    message = f"{name} not found (looked at ${env_var}, .venv-tools/bin/{name}, PATH)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must install it", pytrace=False)
    pytest.skip(reason=message)


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    # A region keeps `sam validate` from asking for AWS configuration; telemetry off for CI logs.
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def test_sam_validate_lint() -> None:
    sam = find_tool("sam", "SAM_CLI")

    result = run([sam, "validate", "--lint", "--template-file", str(TEMPLATE)])

    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint() -> None:
    cfn_lint = find_tool("cfn-lint", "CFN_LINT")

    result = run([cfn_lint, str(TEMPLATE)])

    assert result.returncode == 0, result.stdout + result.stderr
