"""What template.yaml says about each Lambda function, for `agent-memory invoke` and the template tests.

CloudFormation's short tags (`!Ref`, `!If`, `!GetAtt`, ...) are read as their long forms
(`{"Ref": ...}`, `{"Fn::If": [...]}`) by a `yaml.SafeLoader` subclass: the template stays data, nothing in
it is constructed as a Python object. A function's settings are its own merged over `Globals.Function`,
as SAM merges them; an environment value that is not a literal (a `!Ref`, an `!If`) has no value outside
AWS and is reported as skipped, never guessed.

    >>> spec = function_spec(load_template(), "ApiFunction")
    >>> spec.handler_file, spec.attribute
    ('functions/api/api_handler.py', 'handler')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FUNCTION_TYPE = "AWS::Serverless::Function"
DEFAULT_TIMEOUT_SECONDS = 3.0  # SAM's default when neither the function nor Globals sets one
# layers/core/agent_memory/sam_template.py → the repository root.
REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "template.yaml"


class TemplateError(Exception):
    """The template cannot be read, or does not describe what was asked (an unknown function)."""


def _loader() -> type:
    import yaml

    class CfnLoader(yaml.SafeLoader):
        """SafeLoader that reads `!Tag value` as `{"Fn::Tag": value}` (`!Ref` as `{"Ref": value}`)."""

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)  # !GetAtt A.B stays "A.B"
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    CfnLoader.add_multi_constructor("!", tagged)
    return CfnLoader


def load_template(path: str | Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data (tags in their long form). TemplateError when unreadable."""
    import yaml

    try:
        loaded = yaml.load(Path(path).read_text(), Loader=_loader())  # a SafeLoader subclass: data only
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict) or not isinstance(loaded.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources")
    return loaded


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the template declares it (Globals merged)."""

    logical_id: str
    handler_file: str  # relative to the template's directory: CodeUri + the handler's module
    attribute: str
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str] = field(default_factory=dict)  # literal values only
    skipped: dict[str, str] = field(default_factory=dict)  # name → why it has no local value


def functions(template: dict[str, Any]) -> list[str]:
    """The logical ids of every AWS::Serverless::Function, in template order."""
    return [name for name, resource in template["Resources"].items() if resource.get("Type") == FUNCTION_TYPE]


def _describe(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        (name, argument), = value.items()
        short = name.removeprefix("Fn::")
        return f"!{short} {argument if isinstance(argument, str) else '...'}"
    return type(value).__name__


def function_spec(template: dict[str, Any], logical_id: str) -> FunctionSpec:
    """Handler, timeout, memory and literal environment of one function. TemplateError if it is not one."""
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != FUNCTION_TYPE:
        raise TemplateError(f"unknown function {logical_id!r}; known: {', '.join(functions(template))}")
    defaults: dict[str, Any] = (template.get("Globals") or {}).get("Function") or {}
    properties: dict[str, Any] = resource.get("Properties") or {}

    def setting(name: str, default: Any = None) -> Any:
        return properties.get(name, defaults.get(name, default))

    code_uri, handler = setting("CodeUri"), setting("Handler")
    if not isinstance(code_uri, str) or not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{logical_id} needs a literal CodeUri and a Handler module.function")
    module, _, attribute = handler.rpartition(".")
    handler_file = f"{code_uri.rstrip('/')}/{module.replace('.', '/')}.py"

    variables = {**((defaults.get("Environment") or {}).get("Variables") or {}),
                 **((properties.get("Environment") or {}).get("Variables") or {})}
    environment: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, bool):
            environment[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            environment[name] = str(value)
        else:
            skipped[name] = _describe(value)
    timeout, memory = setting("Timeout", DEFAULT_TIMEOUT_SECONDS), setting("MemorySize", 128)
    return FunctionSpec(
        logical_id=logical_id,
        handler_file=handler_file,
        attribute=attribute,
        timeout_seconds=float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT_SECONDS,
        memory_mb=int(memory) if isinstance(memory, int) else 128,
        environment=environment,
        skipped=skipped,
    )


__all__ = ["TEMPLATE", "FunctionSpec", "TemplateError", "function_spec", "functions", "load_template"]
