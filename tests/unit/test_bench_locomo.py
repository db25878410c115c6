"""The LoCoMo bench runs end to end on a small slice (fake embedder, no cache), so it cannot rot unseen.

Its numbers are not asserted: quality is reported by `make bench`, not tested. What is asserted is that
the bench reads the data, drives the real service, and reports what README quotes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import locomo  # noqa: E402

pytestmark = pytest.mark.skipif(not locomo.DATA_DIR.is_dir(), reason=f"no LoCoMo data at {locomo.DATA_DIR}")


def test_bench_runs_the_service_and_reports_every_section() -> None:
    results = locomo.run("fake", conversations=["26"], use_cache=False, ablations=True)
    assert results["dataset"]["conversations"] == ["26"] and results["dataset"]["questions"] > 0
    assert set(results["recall"]) == {label for label, _, _ in locomo.store_modes()}
    assert set(results["ablation"]) == {"shipped", *(s.label for s in locomo.ABLATIONS)}
    for summary in (*results["recall"].values(), *results["ablation"].values()):
        assert 0.0 <= summary["overall"]["r@5"] <= summary["overall"]["r@10"] <= summary["overall"]["r@20"] <= 1.0
    assert results["ingest"]["records"] == results["dataset"]["turns"]
    assert "Ablation" in locomo.markdown(results)


def test_recall_counts_evidence_found_within_k() -> None:
    assert locomo.recall_at(["D1:1", "D1:2", "D1:3"], ["D1:3", "D9:9"], 2) == 0.0
    assert locomo.recall_at(["D1:1", "D1:2", "D1:3"], ["D1:3", "D9:9"], 3) == 0.5
