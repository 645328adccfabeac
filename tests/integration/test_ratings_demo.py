"""`rewards demo` seeds satisfaction ratings through the real RatingService: 我的 and the console have some to show."""

from __future__ import annotations

from sqlalchemy import Engine, select

from rewards.cases.models import Case, Citizen
from rewards.demo import DemoPlan, seed, showcase_citizen
from rewards.engagement import rating_rules as rules
from rewards.engagement.ratings import CaseRating, followups, satisfaction_counts
from tests.conftest import MakeContainer


def test_the_demo_seeds_ratings_and_a_follow_up(pg_engine: Engine, make_container: MakeContainer) -> None:
    c = make_container(engine=pg_engine)
    now = c.clock.now()
    first = seed(c, DemoPlan(citizens=300, weeks=1, reports_per_day=20), now, lambda done, total: None)
    since = first.start(c.settings.tz)
    with c.read() as s:
        ratings = s.scalars(select(CaseRating)).all()
        counts = satisfaction_counts(s, since=since, until=now)
        open_items = followups(s, handled=False)
        showcase = showcase_citizen(c)
        assert showcase is not None
        citizen = s.scalars(select(Citizen).where(Citizen.openid == showcase)).one()
        mine = s.scalars(select(Case.case_id).where(Case.reporter_id == citizen.id)).all()
        states = c.ratings.states(s, citizen.id, mine)
    assert len(ratings) >= 5 and counts.total == len(ratings)
    assert all(r.level in rules.LEVELS and r.rated_at <= now for r in ratings)
    assert open_items and open_items[0][0].comment  # the first rating: a 不满意 with a comment
    assert any(state.open_until is not None for state in states.values()), "我的 shows a rating form"
