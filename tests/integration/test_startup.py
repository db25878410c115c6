"""Start-up checks: a dimension mismatch stops `serve`/`init` with the reason, before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_memory import bootstrap, cli
from agent_memory.adapters.fake_embedder import FakeEmbedder
from agent_memory.bootstrap import Container
from agent_memory.domain.errors import ConfigurationError
from tests.fixtures.app import make_settings


def test_init_creates_the_index_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bootstrap, "_container", Container(make_settings(tmp_path), embedder=FakeEmbedder(32)))
    assert cli.main(["init"]) == 0
    assert "32 dimensions" in capsys.readouterr().out
    assert (tmp_path / "data" / "long_term.sqlite3").exists()


def test_dimension_mismatch_fails_at_startup_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys  # type: ignore[no-untyped-def]
) -> None:
    # Given an index built with 32-dimension vectors
    Container(make_settings(tmp_path), embedder=FakeEmbedder(32)).check_startup()
    # When the service starts with an embedder of another dimension
    container = Container(make_settings(tmp_path), embedder=FakeEmbedder(48))
    with pytest.raises(ConfigurationError, match=r"32-dim vectors but the .* 48"):
        container.check_startup()
    monkeypatch.setattr(bootstrap, "_container", container)
    # Then `serve` refuses to start, saying why (before uvicorn binds anything)
    assert cli.main(["serve", "--port", "1"]) == 2
    assert "cannot start" in capsys.readouterr().err
