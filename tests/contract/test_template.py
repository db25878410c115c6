"""template.yaml passes `sam validate --lint` and `cfn-lint`.

The tools live outside the project venv (CI installs them into .venv-tools/). Without them the tests
skip locally and fail under CI=true, so a CI image that lost them cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


# --- what the template hands the functions (parsed, so these run without the tools) ---------------


def _load_template() -> dict[str, object]:
    """template.yaml with its short tags in their long form (`{"Ref": ...}`), by the loader `invoke` uses."""
    from agent_memory.sam_template import load_template

    return load_template(TEMPLATE)


def _environment(template: dict[str, Any], function: str) -> dict[str, Any]:
    """A function's environment as SAM merges it: Globals.Function's, then its own."""
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
    return merged


SECRET_SETTINGS = {
    "OPENAI_API_KEY_SECRET": ("HasOpenAIKey", "OpenAIApiKeySecretArn"),
    "EMBEDDING_API_KEY_SECRET": ("HasEmbeddingKey", "EmbeddingApiKeySecretArn"),
    "REDIS_AUTH_TOKEN_SECRET": ("HasRedisAuthToken", "RedisAuthTokenSecretArn"),
}
FUNCTIONS = ["ApiFunction", "ExtractionFunction"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_get_secret_locations_and_never_a_plain_key(function: str) -> None:
    env = _environment(_load_template(), function)

    assert not {"OPENAI_API_KEY", "EMBEDDING_API_KEY", "OPENAI_API_KEY_SECRET_ARN"} & set(env)
    for setting, (condition, parameter) in SECRET_SETTINGS.items():
        given = {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}
        if setting == "REDIS_AUTH_TOKEN_SECRET":  # Infrastructure=create: the secret the Infra stack made
            given = {"Fn::If": ["CreateInfra", {"Fn::GetAtt": "Infra.Outputs.RedisAuthTokenSecretArn"}, given]}
        assert env[setting] == given


@pytest.mark.parametrize("function", FUNCTIONS)
def test_secret_reads_are_granted_on_exactly_the_configured_secrets(function: str) -> None:
    resources: dict[str, dict[str, Any]] = _load_template()["Resources"]  # type: ignore[assignment]
    # The functions that touch the stores share one managed policy (StoreAccessPolicy).
    assert {"Ref": "StoreAccessPolicy"} in resources[function]["Properties"]["Policies"]
    statements = resources["StoreAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    grants = {}

    def collect(condition: str, branch: Any) -> None:
        if isinstance(branch, dict) and "Fn::If" in branch:  # a nested choice: its own condition
            inner, granted, otherwise = branch["Fn::If"]
            collect(inner, granted)
            collect(inner, otherwise)
        elif isinstance(branch, dict) and "secretsmanager:GetSecretValue" in str(branch.get("Action")):
            grants[condition] = branch["Resource"]

    for statement in statements:
        if isinstance(statement, dict) and "Fn::If" in statement:
            condition, granted, otherwise = statement["Fn::If"]
            collect(condition, granted)
            if "secretsmanager" in str(otherwise):
                collect(condition, otherwise)
            else:
                assert otherwise == {"Ref": "AWS::NoValue"}  # nothing granted when the parameter is empty
        else:
            assert "secretsmanager" not in str(statement), "a secret read granted unconditionally"

    assert grants == {
        **{condition: {"Ref": parameter} for condition, parameter in SECRET_SETTINGS.values()},
        "CreateInfra": {"Fn::GetAtt": "Infra.Outputs.RedisAuthTokenSecretArn"},
    }


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("rediss://master.cache.amazonaws.com:6379/0", True),
        ("rediss://app-user@master.cache.amazonaws.com:6379", True),
        ("rediss://:token@master.cache.amazonaws.com:6379/0", False),
        ("rediss://user:token@master.cache.amazonaws.com:6379/0", False),
        ("http://master.cache.amazonaws.com", False),
    ],
)
def test_redis_url_refuses_a_password(url: str, allowed: bool) -> None:
    import re

    parameters: dict[str, dict[str, str]] = _load_template()["Parameters"]  # type: ignore[assignment]

    assert bool(re.fullmatch(parameters["RedisUrl"]["AllowedPattern"], url)) is allowed


def test_the_api_function_gets_the_rate_limit_parameters() -> None:
    template: dict[str, Any] = _load_template()
    env = _environment(template, "ApiFunction")

    assert env["RATE_LIMIT_PER_SECOND"] == {"Ref": "RateLimitPerSecond"}
    assert env["RATE_LIMIT_BURST"] == {"Ref": "RateLimitBurst"}
    assert (
        template["Parameters"]["RateLimitPerSecond"]["Default"],
        template["Parameters"]["RateLimitBurst"]["Default"],
    ) == (20, 40)
