"""agent_memory.cold_start: the collector paused for a Lambda cold start, then frozen and resumed.

Each case runs in a fresh interpreter: the collector's state is the process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "core"

_CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
states = []
def note(step):
    states.append([step, gc.isenabled(), gc.get_freeze_count() > 0])
if sys.argv[2] == "off-already":
    gc.disable()
from agent_memory import cold_start
cold_start.pause(); note("paused")
garbage = [[] for _ in range(3)]
for item in garbage:
    item.append(item)  # cycles only the collector frees
del garbage, item
cold_start.resume(collect=sys.argv[3] == "collect"); note("resumed")
cold_start.resume(); note("resumed again")
print(json.dumps(states))
"""


def _run(*, in_lambda: bool, before: str = "on", collect: bool = False) -> list[list[object]]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    if in_lambda:
        env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9001"
    result = subprocess.run([sys.executable, "-c", _CHILD, str(LAYER), before, "collect" if collect else "-"],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    states: list[list[object]] = json.loads(result.stdout)
    return states


def test_in_lambda_the_collector_is_off_until_resumed_then_frozen_and_on() -> None:
    assert _run(in_lambda=True) == [["paused", False, False], ["resumed", True, True], ["resumed again", True, True]]


def test_resume_with_collect_also_freezes_and_turns_it_on() -> None:
    assert _run(in_lambda=True, collect=True) == [
        ["paused", False, False], ["resumed", True, True], ["resumed again", True, True]
    ]  # fmt: skip


def test_outside_lambda_nothing_changes() -> None:
    assert _run(in_lambda=False) == [["paused", True, False], ["resumed", True, False],
                                     ["resumed again", True, False]]  # fmt: skip


def test_a_collector_someone_else_turned_off_stays_off() -> None:
    # pause() did not turn it off, so resume() does not turn it on (nor freeze anything)
    assert _run(in_lambda=True, before="off-already") == [
        ["paused", False, False], ["resumed", False, False], ["resumed again", False, False]
    ]  # fmt: skip
