"""Summary views and tasks (AMS rows 14–21) through the API on both backends (documents in SQLite or a
real redis-server), with the scripted LLM on loopback and the embedded queue worked by the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.http.app import create_app
from agent_memory.services.task_worker import TaskWorker
from tests.fixtures.app import make_settings
from tests.fixtures.openai_stub import OpenAIStub

MEMORIES = [
    {"id": "a1", "text": "User likes hiking", "user_id": "ann", "namespace": "app"},
    {"id": "a2", "text": "User has a dog named Rex", "user_id": "ann", "namespace": "app"},
    {"id": "b1", "text": "User plays chess", "user_id": "ben", "namespace": "app"},
    {"id": "c1", "text": "User likes opera", "user_id": "cy", "namespace": "other"},
]


@pytest.fixture(params=["sqlite", "redis"])
def app(
    request: pytest.FixtureRequest, tmp_path: Path, openai_stub: OpenAIStub
) -> Iterator[tuple[TestClient, Container]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = make_settings(
        tmp_path, redis_url=redis_url, openai_api_key="test", openai_base_url=openai_stub.base_url
    )
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as client:
        memories = [{**m, "memory_type": "semantic", "discrete_memory_extracted": "t"} for m in MEMORIES]
        assert client.post("/v1/long-term-memory/", json={"memories": memories}).status_code == 200
        yield client, container
    container.close()


def create(client: TestClient, **view: Any) -> dict[str, Any]:
    response = client.post("/v1/summary-views", json={"name": "per user", "group_by": ["user_id"],
                                                       "filters": {"namespace": "app"}, **view})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_views_are_created_listed_read_and_deleted(app: tuple[TestClient, Container]) -> None:
    client, _ = app
    view = create(client)
    assert view["id"] and view["source"] == "long_term" and view["group_by"] == ["user_id"]

    assert [v["id"] for v in client.get("/v1/summary-views").json()] == [view["id"]]
    assert client.get(f"/v1/summary-views/{view['id']}").json() == view
    assert client.delete(f"/v1/summary-views/{view['id']}").json() == {"status": "ok"}
    missing = client.get(f"/v1/summary-views/{view['id']}")
    assert missing.status_code == 404 and missing.json() == {"detail": f"SummaryView {view['id']} not found"}
    assert client.get("/v1/summary-views").json() == []


@pytest.mark.parametrize(
    ("view", "detail"),
    [
        ({"source": "working_memory"}, "SummaryView.source must be 'long_term' for now"),
        ({"group_by": ["colour"]}, "Unsupported group_by fields: colour"),
        ({"filters": {"text": "x"}}, "Unsupported filter fields: text"),
    ],
)
def test_an_unsupported_view_is_a_400_naming_the_problem(
    app: tuple[TestClient, Container], view: dict[str, Any], detail: str
) -> None:
    client, _ = app
    response = client.post("/v1/summary-views", json={"group_by": ["user_id"], **view})
    assert response.status_code == 400 and detail in response.json()["detail"]


def test_a_partition_run_summarizes_one_group_now_and_is_listed(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, _ = app
    view = create(client)
    openai_stub.script_chat("Ann likes hiking and has a dog named Rex.")

    response = client.post(f"/v1/summary-views/{view['id']}/partitions/run", json={"group": {"user_id": "ann"}})

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["summary"] == "Ann likes hiking and has a dog named Rex."
    assert (result["group"], result["memory_count"], result["empty"]) == ({"user_id": "ann"}, 2, False)
    prompt = openai_stub.requests[-1][1]["messages"][0]["content"]
    assert "User likes hiking" in prompt and "User plays chess" not in prompt  # only ann's memories
    listed = client.get(f"/v1/summary-views/{view['id']}/partitions", params={"user_id": "ann"}).json()
    assert [p["summary"] for p in listed] == [result["summary"]]
    assert client.get(f"/v1/summary-views/{view['id']}/partitions", params={"user_id": "ben"}).json() == []
    # and a group with no memories is an empty result without an LLM call
    calls = len(openai_stub.requests)
    empty = client.post(f"/v1/summary-views/{view['id']}/partitions/run", json={"group": {"user_id": "zed"}}).json()
    assert empty["empty"] is True and empty["memory_count"] == 0 and len(openai_stub.requests) == calls


def test_a_partition_run_needs_exactly_the_views_group_keys(app: tuple[TestClient, Container]) -> None:
    client, _ = app
    view = create(client)

    response = client.post(f"/v1/summary-views/{view['id']}/partitions/run", json={"group": {"namespace": "app"}})

    assert response.status_code == 400
    assert "must exactly match view.group_by ['user_id']" in response.json()["detail"]


def test_a_full_run_is_a_task_that_reports_its_progress(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    view = create(client)
    openai_stub.default_chat_content = "a summary"

    started = client.post(f"/v1/summary-views/{view['id']}/run", json={})
    assert started.status_code == 200, started.text
    task = started.json()
    assert (task["type"], task["status"], task["view_id"]) == ("summary_view_full_run", "pending", view["id"])
    assert client.get(f"/v1/tasks/{task['id']}").json()["status"] == "pending"

    worker = container.task_worker()
    assert worker is not None and worker.run_once()

    done = client.get(f"/v1/tasks/{task['id']}").json()
    assert done["status"] == "success" and done["started_at"] and done["completed_at"]
    groups = sorted(p["group"]["user_id"] for p in client.get(f"/v1/summary-views/{view['id']}/partitions").json())
    assert groups == ["ann", "ben"]  # "cy" is outside the view's namespace filter


def test_a_failed_run_says_why_in_its_task_and_is_retried(
    app: tuple[TestClient, Container], openai_stub: OpenAIStub
) -> None:
    client, container = app
    view = create(client)
    task = client.post(f"/v1/summary-views/{view['id']}/run", json={"task_id": "my-task"}).json()
    assert task["id"] == "my-task"
    openai_stub.script_chat({"status": 500}, {"status": 500})

    queue: Any = container.task_queue
    TaskWorker(queue, container.run_task, retry_base_seconds=60).run_once()

    failed = client.get("/v1/tasks/my-task").json()
    assert failed["status"] == "failed" and "HTTP 500" in failed["error_message"]
    assert queue.counts() == {"pending": 1, "dead": 0}  # back on the queue for a retry


def test_unknown_ids_are_404s(app: tuple[TestClient, Container]) -> None:
    client, _ = app
    assert client.get("/v1/tasks/nope").json() == {"detail": "Task nope not found"}
    assert client.post("/v1/summary-views/nope/run", json={}).status_code == 404
    assert client.delete("/v1/summary-views/nope").status_code == 404


def test_without_an_llm_views_are_kept_but_cannot_run(tmp_path: Path) -> None:
    container = Container(make_settings(tmp_path), embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as client:
        view = create(client)
        run = client.post(f"/v1/summary-views/{view['id']}/run", json={})
        partition = client.post(f"/v1/summary-views/{view['id']}/partitions/run", json={"group": {"user_id": "a"}})
        features = client.get("/v1/health").json()["features"]

    assert run.status_code == 400 and "need an LLM" in run.json()["detail"]
    assert partition.status_code == 400
    assert features["summary_views"] is False


def test_summary_view_runs_do_not_need_extraction_switched_on(
    tmp_path: Path, openai_stub: OpenAIStub
) -> None:
    settings = make_settings(tmp_path, openai_api_key="test", openai_base_url=openai_stub.base_url,
                             enable_discrete_memory_extraction=False)
    container = Container(settings, embedder=FakeEmbedder(dimensions=64))
    with TestClient(create_app(container)) as client:
        view = create(client)
        task = client.post(f"/v1/summary-views/{view['id']}/run", json={}).json()
        worker = container.task_worker()
        assert worker is not None and worker.run_once()

        assert client.get(f"/v1/tasks/{task['id']}").json()["status"] == "success"
        assert client.get("/v1/health").json()["features"]["extraction"] is False
