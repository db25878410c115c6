"""README's configuration table is the user's reference: every setting is in it, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from agent_memory.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
# Read by libraries, not by Settings, yet worth a row.
EXTERNAL = {"POWERTOOLS_LOG_LEVEL"}


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE))
    settings = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
    assert settings - documented == set(), "settings missing from README"
    assert documented - settings - EXTERNAL == set(), "README rows with no setting"
