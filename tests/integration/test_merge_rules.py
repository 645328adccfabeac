"""An administrator's merge on real SQL and Redis: what moves, what is refused, who signs in as whom afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rewards.bootstrap import Container
from rewards.cases.identity import CitizenIdentity
from rewards.cases.models import Citizen
from rewards.errors import Conflict, Invalid, NotFound
from rewards.leaderboard.check import check
from rewards.scoring.citizen_links import merge_citizens, sign_in_linked
from rewards.scoring.ledger import total_for_citizen
from tests.integration.test_check_rebuild import award


def merge(c: Container, source: str, target: str, reason: str = "同一市民") -> None:
    with c.uow() as uow:
        merge_citizens(uow, c.sink, source, target, actor="admin:test", reason=reason, now=c.clock.now())


def citizen(c: Container, openid: str) -> Citizen:
    with c.read() as s:
        found = s.scalar(select(Citizen).where(Citizen.openid == openid))
        assert found is not None
        s.expunge(found)
        return found


def test_a_citizen_known_only_from_reports_is_merged_and_its_openid_then_signs_in_as_the_one_kept(
    container: Container,
) -> None:
    c = container
    award(c, "LZ-R-1", "oKeep", verified=False, district=None)
    c.clock.advance(seconds=5)  # type: ignore[attr-defined]
    award(c, "LZ-R-2", "oGone", verified=True, district="安宁区")  # the later, verified account
    with c.uow() as uow:
        citizen_gone = uow.session.scalar(select(Citizen).where(Citizen.openid == "oGone"))
        assert citizen_gone is not None
        citizen_gone.banned = True  # a ban on either account stays with the person
    merge(c, "oGone", "oKeep")
    kept, gone = citizen(c, "oKeep"), citizen(c, "oGone")
    assert kept.verified is True and kept.banned is True and kept.district == "安宁区"
    with c.read() as s:
        assert total_for_citizen(s, kept.id) == 2 and total_for_citizen(s, gone.id) == 0
        assert s.scalars(select(CitizenIdentity).where(CitizenIdentity.citizen_id == gone.id)).all() == []
    with c.uow() as uow:  # the merged account's openid, never signed in before, signs in as the one kept
        signed = sign_in_linked(uow.session, "wxa", "oGone", None, c.clock.now())
    assert signed.openid == "oKeep" and signed.citizen_id == kept.id
    c.projector.catch_up()
    assert check(c.db, c.boards).clean
    standing = c.leaderboard.standing("oKeep")
    assert standing.all_time.points == 2 and not standing.stale


def test_merges_that_cannot_be_are_refused_and_change_nothing(container: Container) -> None:
    c = container
    award(c, "LZ-R-3", "oA")
    award(c, "LZ-R-4", "oB")
    award(c, "LZ-R-5", "oC")
    with pytest.raises(Invalid):
        merge(c, "oB", "oA", reason="")
    with pytest.raises(NotFound):
        merge(c, "oNobody", "oA")
    with pytest.raises(Conflict):
        merge(c, "oA", "oA")
    merge(c, "oB", "oA")
    with pytest.raises(Conflict, match="already merged"):
        merge(c, "oB", "oC")
    with pytest.raises(Conflict, match="merged away"):
        merge(c, "oC", "oB")
    with c.read() as s:
        totals = {o: total_for_citizen(s, citizen(c, o).id) for o in ("oA", "oB", "oC")}
    assert totals == {"oA": 2, "oB": 0, "oC": 1}
    c.projector.catch_up()
    assert check(c.db, c.boards).clean
