"""The cleanup's settings and wiring (no network): the policy settings, and what the Container gives
the service for each configuration. The runs themselves are tests/integration/test_cleanup.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.services.cleanup import CleanupService, policy_from_settings
from agent_memory.services.maintenance import ForgetPolicy
from tests.fixtures.app import make_settings


def test_no_policy_setting_means_no_forgetting() -> None:
    assert policy_from_settings(None, None, None) is None


def test_the_policy_settings_become_one_forget_policy() -> None:
    assert policy_from_settings(365, 90, 1000) == ForgetPolicy(max_age_days=365, max_inactive_days=90, budget=1000)
    assert policy_from_settings(None, None, 0) == ForgetPolicy(budget=0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("FORGET_MAX_AGE_DAYS", "0"), ("FORGET_MAX_INACTIVE_DAYS", "-1"), ("FORGET_BUDGET", "-5"),
     ("FORGET_MAX_AGE_DAYS", "nan"), ("CLEANUP_INTERVAL_MINUTES", "0")],
)  # fmt: skip
def test_a_bad_cleanup_setting_fails_at_start_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        make_settings(tmp_path)


def _service(tmp_path: Path, **settings: object) -> CleanupService:
    container = Container(make_settings(tmp_path, **settings), embedder=FakeEmbedder(dimensions=8), language_model=None)
    return container.cleanup_service


def test_by_default_the_service_sweeps_only(tmp_path: Path) -> None:
    service = _service(tmp_path)
    assert (service._scheduler, service._policy, service._long_term) == (None, None, None)
    assert service._lookahead_seconds == 2 * 15 * 60


def test_a_policy_brings_the_long_term_store_and_its_tenants(tmp_path: Path) -> None:
    service = _service(tmp_path, forget_max_age_days=30, cleanup_interval_minutes=5)
    assert service._policy == ForgetPolicy(max_age_days=30)
    assert service._long_term is not None and service._long_term_tenants is not None
    assert service._lookahead_seconds == 600


def test_no_forgetting_without_long_term_memory(tmp_path: Path) -> None:
    service = _service(tmp_path, forget_budget=10, long_term_memory=False)
    assert (service._policy, service._long_term) == (None, None)


def test_with_extraction_on_final_extractions_go_to_the_queue_without_debounce(tmp_path: Path) -> None:
    container = Container(make_settings(tmp_path, openai_api_key="test", extraction_debounce_seconds=30),
                          embedder=FakeEmbedder(dimensions=8))  # fmt: skip
    scheduler = container.cleanup_service._scheduler
    assert scheduler is not None and scheduler._delay_seconds == 0
    assert container.extraction_scheduler is not None and container.extraction_scheduler._delay_seconds == 30
