"""Every setting is in the README's table: a setting nobody can find does not help an operator.

Rows may group settings: `REWARDS_PUBLISH_MAX_ATTEMPTS` / `_BACKOFF_SECONDS` names REWARDS_PUBLISH_BACKOFF_SECONDS
(the short name replaces the tail of the full one after some underscore).
"""

from __future__ import annotations

import re
from pathlib import Path

from rewards.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
FULL = re.compile(r"`(REWARDS_[A-Z0-9_]+)`")
GROUP = re.compile(r"`(REWARDS_[A-Z0-9_]+)`((?:\s*/\s*`_[A-Z0-9_]+`)+)")


def documented(text: str) -> set[str]:
    """Every setting name the README spells out, and every one a grouped row abbreviates."""
    names = set(FULL.findall(text))
    for full, rest in GROUP.findall(text):
        for short in re.findall(r"`(_[A-Z0-9_]+)`", rest):
            names |= {full[:i] + short for i, ch in enumerate(full) if ch == "_"}
    return names


def test_every_setting_is_in_the_readme() -> None:
    settings = {f"REWARDS_{name.upper()}" for name in Settings.model_fields}
    missing = sorted(settings - documented(README.read_text(encoding="utf-8")))
    assert missing == [], f"add these to README.md's configuration table: {missing}"


def test_a_grouped_row_names_its_settings() -> None:
    row = "| `REWARDS_PUBLISH_MAX_ATTEMPTS` / `_BACKOFF_SECONDS` | `5` / `1.0` | … |"
    assert {"REWARDS_PUBLISH_MAX_ATTEMPTS", "REWARDS_PUBLISH_BACKOFF_SECONDS"} <= documented(row)
    assert "REWARDS_PUBLISH_MAX_POLLS" not in documented(row)
