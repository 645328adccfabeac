"""Guard the dependency direction: pure modules import only the standard library and each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "rewards/clock.py",
    "rewards/masking.py",
    "rewards/cases/lifecycle.py",
    "rewards/scoring/model.py",
    "rewards/scoring/rules.py",
    "rewards/leaderboard/ranking.py",
    "rewards/leaderboard/tiers.py",
    "rewards/leaderboard/keys.py",
    "rewards/leaderboard/scores.py",
    "rewards/cases/geo.py",
    "intake_adapter/translate.py",
]
# pure modules may also import these project modules (themselves pure, or the error types they raise)
ALLOWED_PROJECT = {
    "rewards.errors",
    "rewards.clock",
    "rewards.masking",
    "rewards.cases.lifecycle",
    "rewards.scoring.model",
    "rewards.scoring.rules",
    "rewards.leaderboard.ranking",
    "rewards.leaderboard.tiers",
    "rewards.leaderboard.keys",
    "rewards.leaderboard.scores",
    "rewards.cases.geo",
    "rewards.cases.flows",  # translate maps onto the flows' frozen dataclasses only
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", [m for m in PURE if (ROOT / m).exists()])
def test_pure_module_imports(module: str) -> None:
    bad = set()
    for name in imported_modules(ROOT / module):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if name in ALLOWED_PROJECT:
            continue
        bad.add(name)
    assert not bad, f"{module} is meant to be pure but imports {sorted(bad)}"


def test_rewards_never_imports_intake_adapter_outside_the_mount_points() -> None:
    allowed = {"rewards/app.py", "rewards/cli.py", "rewards/migrate.py"}
    offenders = []
    for path in (ROOT / "rewards").rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        if rel in allowed:
            continue
        if any(n.split(".")[0] == "intake_adapter" for n in imported_modules(path)):
            offenders.append(rel)
    assert not offenders
