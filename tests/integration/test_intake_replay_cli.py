"""`rewards intake replay`: exit 1 listing what still fails, exit 0 once everything applied (real SQL + Redis)."""

from __future__ import annotations

from typer.testing import CliRunner

from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cli import app
from tests.integration.test_intake_webhook import case_row, changed, inbox, ledger, submitted

runner = CliRunner()
# the command runs on the wall clock, so keep every event well in its past
PAST = {"occurred_at": "2020-03-02T10:00:00+08:00"}


def test_replay_exits_1_until_the_cause_is_gone_then_0(container: Container, cli_env: dict[str, str]) -> None:
    svc = IntakeService.of(container)
    # C2 refers to C1 as its first report, but C1 has not arrived yet
    second = submitted("C2", 5, reporter={"openid": "o-li", "name": "李四"}, occurred_at="2020-03-02T10:05:00+08:00")
    dup = changed("C2", "refused", 12, verdict="duplicate", duplicate_of="C1", occurred_at="2020-03-02T10:12:00+08:00")
    svc.receive([second, dup])
    stuck = runner.invoke(app, ["intake", "replay"])
    assert stuck.exit_code == 1, stuck.output
    assert "0 applied, 1 still failing" in stuck.output
    assert dup["event_id"] in stuck.output and "unknown case 'C1'" in stuck.output

    svc.receive([submitted("C1", 0, **PAST), changed("C1", "filed", 10, occurred_at="2020-03-02T10:10:00+08:00")])
    done = runner.invoke(app, ["intake", "replay"])
    assert done.exit_code == 0, done.output
    assert "1 applied, 0 still failing" in done.output and dup["event_id"] in done.output
    assert case_row(container, "C2").verdict == "duplicate" and inbox(container)[dup["event_id"]][0] == "applied"
    assert ledger(container) == [("valid_report", 2)]

    quiet = runner.invoke(app, ["intake", "replay"])
    assert quiet.exit_code == 0 and "replayed 0 event(s)" in quiet.output


def test_an_event_that_can_never_apply_keeps_failing(container: Container, cli_env: dict[str, str]) -> None:
    IntakeService.of(container).receive([changed("C1", "archived", 10, **PAST)])
    r = runner.invoke(app, ["intake", "replay", "--max-passes", "2"])
    assert r.exit_code == 1
    assert "[422 unknown_code]" in r.output and "C1-archived-10" in r.output
    assert inbox(container)["C1-archived-10"][0] == "failed"
