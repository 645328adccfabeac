"""`rewards intake import FILE`: a JSONL history export through intake, resumable, bad lines named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from intake_adapter.history_import import ImportState, import_history, state_path
from intake_adapter.models import InboxEvent
from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cases.models import Case
from rewards.cli import app
from rewards.scoring.ledger import LedgerEntry
from tests.integration.test_intake_webhook import submitted

runner = CliRunner()
PAST = "2020-03-02T10:{:02d}:00+08:00"  # the command runs on the wall clock: keep every event in its past


def history(cases: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in range(cases):
        out.append(submitted(f"H{n}", 0, occurred_at=PAST.format(n % 50)))
        for k, status in enumerate(("filed", "dispatched", "resolved")):
            event = {"event_id": f"H{n}-{status}", "type": "case.status_changed", "case_id": f"H{n}"}
            out.append({**event, "status": status, "occurred_at": PAST.format(n % 50 + k + 1)})
    return out


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def counts(c: Container) -> tuple[int, int, int]:
    with c.read() as s:
        return (
            s.scalar(select(func.count()).select_from(Case)) or 0,
            s.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
            s.scalar(select(func.sum(InboxEvent.attempts))) or 0,
        )


def test_import_applies_the_export_and_a_second_run_changes_nothing(
    container: Container, cli_env: dict[str, str], tmp_path: Path
) -> None:
    export = write(tmp_path / "h.jsonl", [json.dumps(e, ensure_ascii=False) for e in history(30)])
    done = runner.invoke(app, ["intake", "import", str(export), "--batch-size", "7", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert "imported 120 line(s): 120 event(s) applied, 0 already applied, 0 line(s) refused" in done.output
    assert counts(container) == (30, 30, 120)
    assert state_path(export).exists()
    again = runner.invoke(app, ["intake", "import", str(export), "--no-progress"])  # resumes at the end: nothing
    assert again.exit_code == 0 and "0 event(s) applied" in again.output
    fresh = runner.invoke(app, ["intake", "import", str(export), "--restart", "--no-progress"])  # all duplicates
    assert fresh.exit_code == 0 and "0 event(s) applied, 120 already applied" in fresh.output, fresh.output
    assert counts(container) == (30, 30, 120)


def test_bad_lines_are_named_with_their_line_numbers_and_exit_1(
    container: Container, cli_env: dict[str, str], tmp_path: Path
) -> None:
    good = [json.dumps(e, ensure_ascii=False) for e in history(2)]
    bad_category = json.dumps(submitted("B1", 0, category="flying_saucer", occurred_at=PAST.format(1)))
    lines = [good[0], "{not json", good[1], "", bad_category, "[1, 2]", *good[2:]]
    export = write(tmp_path / "bad.jsonl", lines)
    done = runner.invoke(app, ["intake", "import", str(export), "--no-progress"])
    assert done.exit_code == 1, done.output
    assert "8 event(s) applied" in done.output and "3 line(s) refused" in done.output
    assert "line 2: not valid JSON" in done.output
    assert "line 5 event B1-submitted: failed [422 unknown_category]" in done.output
    assert "line 6: rejected [422 invalid_event] an event must be a JSON object" in done.output
    assert counts(container)[:2] == (2, 2)


def test_an_event_unblocked_later_in_the_file_is_not_reported(container: Container, tmp_path: Path) -> None:
    events = history(1)
    events = [events[1], events[0], *events[2:]]  # filed arrives before its report (two batches of one)
    export = write(tmp_path / "order.jsonl", [json.dumps(e, ensure_ascii=False) for e in events])
    state = import_history(IntakeService.of(container), export, batch_size=1)
    assert state.errors == [] and state.applied == 4


def test_an_interrupted_import_resumes_and_applies_nothing_twice(container: Container, tmp_path: Path) -> None:
    export = write(tmp_path / "long.jsonl", [json.dumps(e, ensure_ascii=False) for e in history(25)])
    svc = IntakeService.of(container)
    seen: list[int] = []

    def stop_after_three(state: ImportState) -> None:
        seen.append(state.lines_done)
        if len(seen) == 3:
            raise KeyboardInterrupt  # Ctrl-C after the third batch committed

    with pytest.raises(KeyboardInterrupt):
        import_history(svc, export, batch_size=10, on_batch=stop_after_three)
    assert seen == [10, 20, 30] and counts(container)[0] == 8  # cases H0..H6 whole, H7's report and filed

    # the state file is one batch behind (as if the crash came between the commit and its write): no harm done
    state = json.loads(state_path(export).read_text(encoding="utf-8"))
    state.update(lines_done=20, bytes_done=sum(len(line) for line in export.read_bytes().splitlines(True)[:20]))
    state_path(export).write_text(json.dumps(state), encoding="utf-8")
    final = import_history(svc, export, batch_size=10)
    assert final.errors == [] and final.lines_done == 100
    assert final.duplicate == 10  # the third batch, sent again
    assert counts(container) == (25, 25, 100)  # every event applied exactly once


def test_a_changed_export_starts_over(container: Container, tmp_path: Path) -> None:
    export = write(tmp_path / "x.jsonl", [json.dumps(e, ensure_ascii=False) for e in history(2)])
    svc = IntakeService.of(container)
    import_history(svc, export)
    export.write_text(export.read_text(encoding="utf-8") + json.dumps(history(3)[-1]) + "\n", encoding="utf-8")
    state = import_history(svc, export)  # a different size: from the first line again (duplicates, then the new one)
    assert (state.applied, state.duplicate) == (0, 8)
    assert [(e.line, e.event_id) for e in state.errors] == [(9, "H2-resolved")]  # its case is not in this export
