"""The examples in docstrings are part of the documentation: keep them true."""

from __future__ import annotations

import doctest

import pytest

from agent_memory.adapters import openai_client, opensearch_long_term
from agent_memory.domain import keywords, tasks, temporal, validation
from agent_memory.http import json_body
from agent_memory.mcp import tools as mcp_tools
from agent_memory.services import cl100k, extraction_strategies, ranking


@pytest.mark.parametrize(
    "module",
    [
        keywords,
        ranking,
        temporal,
        validation,
        json_body,
        tasks,
        extraction_strategies,
        cl100k,
        openai_client,
        opensearch_long_term,
        mcp_tools,
    ],
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
