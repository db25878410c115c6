"""README's Memory Platform sessions example runs as written against a live server (the only edit is the port)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.app import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def _curl_example() -> str:
    section = README.read_text().split("## Memory Platform sessions", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return example


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl example needs curl on PATH")
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_the_session_curl_example_creates_appends_and_reads(live_server: LiveServer) -> None:
    host = live_server.base_url.removeprefix("http://")
    completed = subprocess.run(
        ["bash", "-c", _curl_example().replace("localhost:8000", host)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    created, appended, got = (json.loads(line) for line in completed.stdout.splitlines())
    assert (created["session_id"], created["subject"], created["items"]) == ("trip-42", "user-7", [])
    assert [i["content"] for i in appended["items"]] == ["I want a window seat"]
    assert got == appended
    assert got["max_items"] == 50 and got["ttl_seconds"] == 3600 and got["token_count"] > 0
