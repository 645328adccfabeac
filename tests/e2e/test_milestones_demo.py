"""`rewards demo` seeds a history in which the citizen it tells a newcomer to sign in as reaches milestones."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from rewards.cases.service import find_citizen
from rewards.cli.demo import run_demo
from rewards.demo import DemoPlan, showcase_citizen
from tests.conftest import MakeContainer, test_settings


def test_the_demo_citizen_reaches_a_few_milestones(
    pg_engine: Engine, make_container: MakeContainer, tmp_path: Path
) -> None:
    c = make_container(test_settings(outbox_dir=tmp_path / "outbox"), engine=pg_engine)
    run_demo(c, DemoPlan(citizens=300, weeks=2, reports_per_day=20))
    openid = showcase_citizen(c)
    assert openid == "demo-openid-00000"  # the demo's regular reporter leads this week
    with c.read() as session:
        citizen = find_citizen(session, openid)
        assert citizen is not None
        reached = {r.key for r in c.milestones.progress(session, citizen).reached}
    assert {"valid_1", "valid_10", "prize_first", "district_top"} <= reached
