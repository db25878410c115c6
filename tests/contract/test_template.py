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
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, object]:
        if isinstance(node, yaml.ScalarNode):
            value: object = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
        return {name: value}

    CfnLoader.add_multi_constructor("!", tagged)
    loaded: dict[str, object] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # a SafeLoader: tags only
    return loaded


SECRET_SETTINGS = {
    "OPENAI_API_KEY_SECRET": ("HasOpenAIKey", "OpenAIApiKeySecretArn"),
    "EMBEDDING_API_KEY_SECRET": ("HasEmbeddingKey", "EmbeddingApiKeySecretArn"),
    "REDIS_AUTH_TOKEN_SECRET": ("HasRedisAuthToken", "RedisAuthTokenSecretArn"),
}
FUNCTIONS = ["ApiFunction", "ExtractionFunction"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_get_secret_locations_and_never_a_plain_key(function: str) -> None:
    resources: dict[str, dict[str, Any]] = _load_template()["Resources"]  # type: ignore[assignment]
    env = resources[function]["Properties"]["Environment"]["Variables"]

    assert not {"OPENAI_API_KEY", "EMBEDDING_API_KEY", "OPENAI_API_KEY_SECRET_ARN"} & set(env)
    for setting, (condition, parameter) in SECRET_SETTINGS.items():
        assert env[setting] == {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_secret_reads_are_granted_on_exactly_the_configured_secrets(function: str) -> None:
    resources: dict[str, dict[str, Any]] = _load_template()["Resources"]  # type: ignore[assignment]
    grants = {}
    for policy in resources[function]["Properties"]["Policies"]:
        if not (isinstance(policy, dict) and "Fn::If" in policy):
            continue
        condition, granted, otherwise = policy["Fn::If"]
        for statement in granted.get("Statement", []):
            if "secretsmanager:GetSecretValue" in str(statement["Action"]):
                assert otherwise == {"Ref": "AWS::NoValue"}  # nothing granted when the parameter is empty
                grants[condition] = statement["Resource"]

    assert grants == {condition: {"Ref": parameter} for condition, parameter in SECRET_SETTINGS.values()}


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
    env = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]

    assert env["RATE_LIMIT_PER_SECOND"] == {"Ref": "RateLimitPerSecond"}
    assert env["RATE_LIMIT_BURST"] == {"Ref": "RateLimitBurst"}
    assert (
        template["Parameters"]["RateLimitPerSecond"]["Default"],
        template["Parameters"]["RateLimitBurst"]["Default"],
    ) == (20, 40)
