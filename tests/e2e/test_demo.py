"""`rewards demo --no-serve`: seeds through the real flows, closes and publishes, and does not claim to serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rewards.bootstrap import Container
from rewards.cases.models import Case
from rewards.cli import app

runner = CliRunner()
SMALL = ["--citizens", "300", "--weeks", "1", "--reports-per-day", "20"]


def test_demo_without_serving_seeds_publishes_and_serves_nothing(
    container: Container, cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REWARDS_OUTBOX_DIR", str(tmp_path / "outbox"))
    first = runner.invoke(app, ["demo", "--no-serve", *SMALL])
    assert first.exit_code == 0, first.output
    assert "is ready" not in first.output and "http://" not in first.output  # nothing listens: no URLs
    assert "nothing is served (--no-serve)" in first.output and "publication published" in first.output
    assert "seeded in" in first.output
    with container.read() as session:
        cases = session.scalars(select(Case)).all()
    assert all(c.photos and c.photos[0].startswith("/static/web/demo/") for c in cases)  # served by the service
    by_id = {c.case_id: c for c in cases}
    duplicates = [c for c in cases if c.verdict == "duplicate"]
    assert duplicates and all(by_id[c.duplicate_of or ""].category == c.category for c in duplicates)
    assert sum(c.status == "reported" for c in cases) >= 16 and sum(c.status == "voided" for c in cases) <= 1
    assert len(list((tmp_path / "outbox").iterdir())) >= 1
    again = runner.invoke(app, ["demo", "--no-serve", *SMALL])
    assert again.exit_code == 0 and "already seeded: reusing it" in again.output
    check = runner.invoke(app, ["check"])
    assert check.exit_code == 0, check.output  # the boards the demo built agree with its ledger
