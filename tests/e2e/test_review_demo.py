"""`rewards demo` puts the seeded weeks through the review: the older week final with claim codes (one handed
over), last week in 公示 with one open objection and one upheld (version 2); a second run changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select

from rewards.bootstrap import Container
from rewards.cli.demo import run_demo
from rewards.demo import DemoPlan, showcase_citizen
from rewards.review.models import Claim, Decision, ListVersion, Objection
from tests.conftest import MakeContainer, test_settings

PLAN = DemoPlan(citizens=300, weeks=2, reports_per_day=20)


def rows(c: Container) -> dict[str, int]:
    with c.read() as s:
        return {m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Claim, Decision, ListVersion, Objection)}  # fmt: skip


def test_the_demo_shows_the_whole_review_path(pg_engine: Engine, make_container: MakeContainer, tmp_path: Path) -> None:
    c = make_container(test_settings(outbox_dir=tmp_path / "outbox"), engine=pg_engine)
    run_demo(c, PLAN)
    final, notice = "2026-W46", "2026-W47"  # the clock stands in 2026-W48
    assert c.review.status(final).phase == "final"
    claims = c.review.claims(final)
    assert claims and sum(cl.status == "redeemed" for cl in claims) == 1
    status = c.review.status(notice)
    assert status.phase == "open" and status.open_objections == 1 and status.current_version == 2
    outcomes = sorted(o.status for o in c.review.objections(notice, status=None))
    assert outcomes == ["open", "upheld"]
    showcase = showcase_citizen(c)
    assert showcase is not None and [o.status for o in c.review.objections_of(showcase)] == ["open"]
    before = rows(c)
    run_demo(c, PLAN)  # reused, not seeded again: the review is not repeated either
    assert rows(c) == before
