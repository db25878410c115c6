"""BedrockLanguageModel without network: the Converse request shape, checked by botocore's Stubber against
the service model."""

from __future__ import annotations

import pytest

from agent_memory.adapters.bedrock_llm import BedrockLanguageModel, converse_messages
from agent_memory.adapters.bedrock_runtime import make_bedrock_runtime_client
from agent_memory.ports import ChatMessage


def test_converse_messages_open_with_a_user_turn_and_alternate():
    # Given a transcript that opens with the assistant, repeats a role, and has an empty message
    messages = [
        ChatMessage(role="assistant", content="Hello, how can I help?"),
        ChatMessage(role="user", content="Remember my name."),
        ChatMessage(role="tool", content="name=Ada"),
        ChatMessage(role="user", content=" "),
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="assistant", content="Noted."),
    ]

    # When mapped to Converse
    system, turns = converse_messages(messages)

    # Then system prompts stand apart, a user turn opens, roles alternate, nothing is empty
    assert system == [{"text": "Be brief."}]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[2]["content"] == [{"text": "Remember my name."}, {"text": "name=Ada"}]
    assert all(block["text"].strip() for turn in turns for block in turn["content"])


def test_the_converse_request_is_valid_for_the_real_client(monkeypatch: pytest.MonkeyPatch):
    from botocore.stub import Stubber

    # Given a real bedrock-runtime client that checks parameters against the service model (no network)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = make_bedrock_runtime_client("us-east-1", timeout_seconds=20, dependency="llm")
    stubber = Stubber(client)
    stubber.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": '{"ok": true}'}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
            "metrics": {"latencyMs": 10},
        },
        {
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "messages": [{"role": "user", "content": [{"text": "Answer as JSON."}]}],
            "system": [{"text": "You answer briefly."}, {"text": stubber_json_instruction()}],
            "inferenceConfig": {"maxTokens": 64},
        },
    )
    llm = BedrockLanguageModel(model="anthropic.claude-3-haiku-20240307-v1:0", client=client)

    # When asked in JSON mode with a cap
    with stubber:
        messages = [ChatMessage(role="system", content="You answer briefly."),
                    ChatMessage(role="user", content="Answer as JSON.")]  # fmt: skip
        completion = llm.complete(messages, json_mode=True, max_tokens=64)

    # Then the stubbed answer comes back with its usage
    assert (completion.text, completion.total_tokens) == ('{"ok": true}', 8)
    stubber.assert_no_pending_responses()


def stubber_json_instruction() -> str:
    from agent_memory.adapters import bedrock_llm

    return bedrock_llm._JSON_INSTRUCTION


def test_boto3_is_imported_at_the_first_call_not_when_the_adapter_is_built():
    import subprocess
    import sys

    code = """if True:
        import sys
        from agent_memory.adapters.bedrock_llm import BedrockLanguageModel
        llm = BedrockLanguageModel(model="m", endpoint_url="http://127.0.0.1:9")
        print("boto3" in sys.modules)
        llm._bedrock()
        print("boto3" in sys.modules)
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "True"]
