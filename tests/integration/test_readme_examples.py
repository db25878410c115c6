"""README's examples run as written: the Python one saved to a file, the curl ones in a shell.

Each runs against a live server on a free port (the only edit is the port), as a newcomer would run it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.app import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(language: str) -> list[str]:
    section = README.read_text().split("## Using it", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_python_example_runs_as_written(live_server: LiveServer, tmp_path: Path) -> None:
    (example,) = _blocks("python")
    script = tmp_path / "example.py"
    script.write_text(example.replace("http://127.0.0.1:8000", live_server.base_url))
    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    # It prints what it found: the distance, then the memory's text
    assert re.fullmatch(r"\d\.\d{3}  User is vegetarian\n", completed.stdout), completed.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl example needs curl on PATH")
@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_curl_example_stores_and_finds_a_memory(live_server: LiveServer) -> None:
    (example,) = _blocks("bash")
    host = live_server.base_url.removeprefix("http://")
    completed = subprocess.run(
        ["bash", "-c", example.replace("localhost:8000", host)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    created, found = (json.loads(line) for line in completed.stdout.replace("}{", "}\n{").splitlines())
    # The memory had no id: the server assigned one, and the search finds it by that id
    assert created["status"] == "ok" and len(created["stored_ids"]) == 1
    assert [m["id"] for m in found["memories"]] == created["stored_ids"]
    assert found["memories"][0]["text"] == "User prefers window seats"
