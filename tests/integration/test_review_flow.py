"""The review of a published week on real SQL (PostgreSQL and SQLite) and real Redis: 公示, objections, decisions,
amended versions, 定榜 and prize claims, through the outbox publisher."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select, text

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, SetBan
from rewards.cases.models import AuditEntry, Case, Citizen
from rewards.clock import FixedClock, IsoWeek
from rewards.db import make_engine
from rewards.errors import Conflict, DomainError, Invalid, NotFound
from rewards.publish.models import PUBLISHED, Publication, WinnerNotice
from rewards.publish.port import FINAL
from rewards.review import derive as d
from rewards.review.models import Claim, Decision, FinalList, ListVersion, Objection, ReviewPool
from rewards.review.service import ReviewService, normalize_code
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import MakeContainer, test_settings
from tests.fakes.ledger_seed import Person, add_citizens, add_entries

WEEK = "2026-W47"
STAFF = Actor("validator-1", "console")
ADMIN = Actor("admin-1", "console")
PLACES = 80


def seed_week(c: Container, eligible: int = 90, ineligible: int = 3) -> list[int]:
    """W47 with `eligible` verified citizens of distinct totals (and a few unverified ones near the top), closed."""
    start = IsoWeek.parse(WEEK).start(c.settings.tz)
    people = [Person(f"市民{i:03d}号") for i in range(eligible)] + [
        Person(f"未实名{i}", verified=False) for i in range(ineligible)
    ]
    ids = add_citizens(c, people, start)
    lines = [(cid, 1000 - i, start + timedelta(minutes=i)) for i, cid in enumerate(ids[:eligible])]
    lines += [(cid, 2000 + i, start + timedelta(minutes=i)) for i, cid in enumerate(ids[eligible:])]
    add_entries(c, WEEK, lines)
    c.closer.close(IsoWeek.parse(WEEK))
    return ids[:eligible]


def openid_of(c: Container, citizen_id: int) -> str:
    with c.read() as s:
        citizen = s.get(Citizen, citizen_id)
        assert citizen is not None
        return citizen.openid


def counts(c: Container) -> dict[str, int]:
    """Rows per table the review writes (and the audit log): 'nothing written' compares these."""
    with c.read() as s:
        return {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Objection, Decision, ListVersion, ReviewPool, FinalList, Claim, AuditEntry, Citizen)
        }


@pytest.fixture
def c(db_engine: Engine, make_container: MakeContainer, clock: FixedClock, tmp_path: Path) -> Container:
    return make_container(
        test_settings(outbox_dir=tmp_path / "outbox", wechat_winner_template_id="tpl-winner"), engine=db_engine
    )


@pytest.fixture
def published(c: Container) -> list[int]:
    """W47 closed and its notice published (the window opens now)."""
    ids = seed_week(c)
    assert c.publishing.publish(WEEK).state == PUBLISHED
    return ids


def test_status_walks_the_phases(c: Container, clock: FixedClock) -> None:
    r = c.review
    assert r.status(WEEK).phase == "no_list"
    seed_week(c)
    assert r.status(WEEK).phase == "not_published"
    c.publishing.publish(WEEK)
    st = r.status(WEEK)
    assert st.phase == "open" and st.accepting_objections and st.window_days == 3
    assert st.deadline is not None and st.published_at is not None
    assert st.deadline - st.published_at == timedelta(days=3)
    clock.set(st.deadline)
    assert r.status(WEEK).phase == "reviewing"
    out = r.run_due()
    assert [o.week for o in out] == [WEEK] and out[0].finalized and out[0].announced and out[0].notified
    assert r.status(WEEK).phase == "final"


def test_version_one_is_the_notice_list_and_the_pool_reaches_past_the_prize_places(
    c: Container, published: list[int]
) -> None:
    v1 = c.review.current(WEEK)
    closed = c.closer.load(IsoWeek.parse(WEEK))
    assert closed is not None
    assert [(r.rank, r.citizen_id, r.points) for r in v1.rows] == [
        (r.rank, r.citizen_id, r.points) for r in closed.snapshot.rows
    ]
    assert len(v1.rows) == PLACES and v1.number == 1 and v1.changes == []
    with c.read() as s:
        pool = d.pool_from_bytes(s.scalars(select(ReviewPool.canonical)).one().encode())
    assert [x.citizen_id for x in pool.candidates] == published  # 90 eligible: the 10 beyond the prizes are reserve


def test_an_upheld_objection_amends_the_list_and_the_81st_enters(c: Container, published: list[int]) -> None:
    r = c.review
    objector = openid_of(c, published[50])
    o = r.object(WEEK, 3, objector, "该市民的上报照片系摆拍", channel="api")
    assert o.status == "open" and o.target_name == r.current(WEEK).rows[2].display_name
    second = r.object(WEEK, 3, openid_of(c, published[60]), "同一条目，另一位市民的异议")
    decision = r.uphold(o.id, "disqualify", "经核查确有摆拍", STAFF)
    assert decision.version is not None and decision.version.number == 2 and decision.mooted == [second.id]
    v2 = r.current(WEEK)
    assert [row.citizen_id for row in v2.rows] == published[:2] + published[3:81]
    assert [row.rank for row in v2.rows] == list(range(1, PLACES + 1))
    kinds = [(ch.kind, ch.before, ch.after) for ch in v2.changes]
    assert kinds[0] == ("removed", 3, None) and kinds[-1] == ("entered", None, 80)
    assert all(k == "moved" for k, _, _ in kinds[1:-1]) and len(kinds) == 79
    assert "市民" not in json.dumps([ch.display_name for ch in v2.changes], ensure_ascii=False).replace("*", "")
    # version 1 is untouched and still readable
    v1 = r.version(WEEK, 1)
    assert v1.rows[2].citizen_id == published[2]
    assert [v.number for v in r.versions(WEEK)] == [1, 2]
    # the objectors see the outcome
    mine = r.objections_of(objector)
    assert [(x.status, x.decision_reason, x.produced_version) for x in mine] == [("upheld", "经核查确有摆拍", 2)]
    assert r.objections_of(openid_of(c, published[60]))[0].status == "moot"
    with c.read() as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "objection_upheld" in actions


def test_void_case_voids_through_the_flows_and_reverses_the_points(c: Container, published: list[int]) -> None:
    r = c.review
    o = r.object(WEEK, 1, openid_of(c, published[10]), "第一名的案件是伪造的")
    with c.read() as s:
        case_id = s.scalars(
            select(Case.case_id)
            .join(LedgerEntry, LedgerEntry.case_pk == Case.id)
            .where(LedgerEntry.citizen_id == published[0])
        ).one()
    ev = r.evidence(o.id)
    assert [x.case_id for x in ev.cases] == [case_id] and ev.target_points == 1000
    r.uphold(o.id, "void_case", "伪造现场", STAFF, case_id=case_id)
    with c.read() as s:
        assert s.scalars(select(Case.status).where(Case.case_id == case_id)).one() == "voided"
        assert s.scalar(select(func.sum(LedgerEntry.points)).where(LedgerEntry.citizen_id == published[0])) == 0
    assert r.current(WEEK).rows[0].citizen_id == published[1]


def test_reject_keeps_the_list(c: Container, published: list[int]) -> None:
    r = c.review
    o = r.object(WEEK, 5, openid_of(c, published[20]), "怀疑刷分")
    out = r.reject(o.id, "经核查上报真实有效", STAFF)
    assert out.outcome == "rejected" and out.version is None
    assert r.current(WEEK).number == 1
    assert r.objections_of(openid_of(c, published[20]))[0].decision_reason == "经核查上报真实有效"
    with pytest.raises(Conflict) as e:
        r.uphold(o.id, "disqualify", "改判", STAFF)
    assert e.value.code == "objection_decided"


BAD_OBJECTIONS = [
    ("nonexistent rank", dict(rank=81), NotFound, "no_such_rank"),
    ("rank zero", dict(rank=0), Invalid, "invalid_rank"),
    ("empty reason", dict(reason="   "), Invalid, "reason_required"),
    ("10 kB reason", dict(reason="刷" * 10_240), Invalid, "reason_too_long"),
    ("malformed week", dict(week="2026-47"), Invalid, "invalid_week"),
    ("week with no list", dict(week="2026-W40"), NotFound, "no_list"),
    ("unknown channel", dict(channel="fax"), Invalid, "invalid_channel"),
]


@pytest.mark.parametrize(("case", "change", "error", "code"), BAD_OBJECTIONS, ids=[b[0] for b in BAD_OBJECTIONS])
def test_bad_objections_are_refused_with_a_code_and_write_nothing(
    c: Container, published: list[int], case: str, change: dict[str, object], error: type[DomainError], code: str
) -> None:
    c.review.current(WEEK)  # sealing the pool is a read's doing, not the refused objection's
    args: dict[str, object] = {"week": WEEK, "rank": 2, "openid": "o-new-citizen", "reason": "理由", "channel": "web"}
    args.update(change)
    before = counts(c)
    with pytest.raises(error) as e:
        c.review.object(**args)  # type: ignore[arg-type]
    assert e.value.code == code and e.value.status < 500
    assert counts(c) == before


def test_twice_after_the_deadline_and_before_publication(c: Container, clock: FixedClock) -> None:
    ids = seed_week(c)
    r = c.review
    with pytest.raises(Conflict) as e:
        r.object(WEEK, 1, openid_of(c, ids[5]), "理由")
    assert e.value.code == "not_published"
    c.publishing.publish(WEEK)
    r.object(WEEK, 1, openid_of(c, ids[5]), "理由")
    before = counts(c)
    with pytest.raises(Conflict) as e:
        r.object(WEEK, 1, openid_of(c, ids[5]), "再来一次")
    assert e.value.code == "already_objected" and counts(c) == before
    deadline = r.status(WEEK).deadline
    assert deadline is not None
    clock.set(deadline)
    with pytest.raises(Conflict) as e:
        r.object(WEEK, 2, openid_of(c, ids[6]), "迟到的异议")
    assert e.value.code == "objections_closed" and counts(c) == before


def test_finalize_waits_for_open_objections_then_issues_claims(
    c: Container, published: list[int], clock: FixedClock
) -> None:
    r = c.review
    o = r.object(WEEK, 2, openid_of(c, published[30]), "理由")
    deadline = r.status(WEEK).deadline
    assert deadline is not None
    clock.set(deadline + timedelta(minutes=1))
    waiting = r.finalize(WEEK)
    assert not waiting.finalized and waiting.waiting_for == "open_objections"
    r.uphold(o.id, "disqualify", "经核查属实", STAFF)  # decisions go on after the deadline
    done = r.finalize(WEEK)
    assert done.finalized and done.version == 2 and done.claims == PLACES and done.announced and done.notified
    assert r.finalize(WEEK) == done  # a second run changes nothing
    final = r.final(WEEK)
    assert final is not None and final.final and final.number == 2
    with c.read() as s:
        pubs = s.scalars(select(Publication).where(Publication.week == WEEK).order_by(Publication.id)).all()
        notices = s.scalars(select(WinnerNotice).where(WinnerNotice.kind == FINAL)).all()
    assert [(p.kind, p.state) for p in pubs] == [("notice", PUBLISHED), ("final", PUBLISHED)]
    assert pubs[1].title is not None and "定榜" in pubs[1].title
    assert len(notices) == PLACES and {n.citizen_id for n in notices} == {row.citizen_id for row in final.rows}
    # the winner's notice carries the code
    outbox = Path(c.settings.outbox_dir)
    claim = r.claims_of(openid_of(c, published[0]))[0]
    bodies = [json.loads(p.read_text(encoding="utf-8")) for p in (outbox / "notices").glob("*.json")]
    assert any(claim.code in b["data"]["remark"]["value"] for b in bodies)
    assert (outbox / f"{WEEK}-final.html").exists() and (outbox / f"{WEEK}.html").exists()
    with pytest.raises(Conflict) as e:
        r.reject(r.object(WEEK, 1, openid_of(c, published[40]), "x").id, "x", STAFF)
    assert e.value.code in ("objections_closed", "week_final")


def test_claims_redeem_once_and_refuse_bad_codes(c: Container, published: list[int], clock: FixedClock) -> None:
    r = c.review
    deadline = r.status(WEEK).deadline
    assert deadline is not None
    clock.set(deadline)
    r.finalize(WEEK)
    first = r.claims_of(openid_of(c, published[0]))[0]
    assert first.status == "pending" and first.rank == 1
    done = r.redeem(first.code.lower().replace("-", " "), STAFF, week=WEEK)
    assert done.status == "redeemed" and done.redeemed_by == "validator-1"
    second = r.claims_of(openid_of(c, published[1]))[0]
    before = counts(c)
    bad = [
        (first.code, {}, Conflict, "code_used"),
        ("not-a-code", {}, Invalid, "malformed_code"),
        ("ABCD-EFGH-JKLM", {}, NotFound, "unknown_code"),
        (second.code, {"week": "2026-W46"}, Conflict, "code_other_week"),
        (second.code, {"openid": openid_of(c, published[2])}, Conflict, "code_other_citizen"),
    ]
    for code, kw, error, reason in bad:
        with pytest.raises(error) as e:
            r.redeem(code, STAFF, **kw)  # type: ignore[arg-type]
        assert e.value.code == reason, code
    assert counts(c) == before
    # banned winner: the code stops working
    with c.uow() as uow:
        c.flows.set_banned(uow, SetBan(openid_of(c, published[3]), True, "作弊"), STAFF)
    third = r.claims_of(openid_of(c, published[3]))[0]
    assert third.status == "revoked"
    with pytest.raises(Conflict) as e:
        r.redeem(third.code, STAFF)
    assert e.value.code == "code_revoked"
    # after the claim deadline the rest are unclaimed
    clock.set(second.expires_at)
    assert r.claims_of(openid_of(c, published[1]))[0].status == "expired"
    with pytest.raises(Conflict) as e:
        r.redeem(second.code, STAFF)
    assert e.value.code == "code_expired"
    assert normalize_code(second.code) in second.code.replace("-", "")


def test_payout_export_has_real_names_and_is_audited(c: Container, published: list[int], clock: FixedClock) -> None:
    r = c.review
    with pytest.raises(NotFound) as e:
        r.export_payout(WEEK, ADMIN, "csv")
    assert e.value.code == "not_final"
    deadline = r.status(WEEK).deadline
    assert deadline is not None
    clock.set(deadline)
    r.finalize(WEEK)
    out = r.export_payout(WEEK, ADMIN, "csv")
    rows = list(csv.reader(io.StringIO(out.content.decode("utf-8-sig"))))
    assert rows[0][4] == "姓名" and rows[1][4] == "市民000号" and len(rows) == PLACES + 1 and out.rows == PLACES
    book = load_workbook(io.BytesIO(r.export_payout(WEEK, ADMIN, "xlsx").content))
    sheet = book.active
    assert sheet is not None and sheet.cell(2, 5).value == "市民000号" and sheet.max_row == PLACES + 1
    with c.read() as s:
        audits = s.scalars(select(AuditEntry.detail).where(AuditEntry.action == "payout_export")).all()
    assert audits == ["csv, 80 rows", "xlsx, 80 rows"]
    with pytest.raises(Invalid):
        r.export_payout(WEEK, ADMIN, "pdf")


def test_sealed_rows_are_refused_by_the_database(c: Container, published: list[int]) -> None:
    c.review.current(WEEK)
    with pytest.raises(Exception, match="immutable"), c.engine.begin() as conn:
        conn.execute(text("UPDATE review_versions SET checksum = 'x'"))
    with pytest.raises(Exception, match="immutable"), c.engine.begin() as conn:
        conn.execute(text("UPDATE review_pools SET checksum = 'x'"))


def test_window_zero_is_final_at_once_without_a_second_article(
    db_engine: Engine, make_container: MakeContainer, tmp_path: Path
) -> None:
    c = make_container(
        test_settings(outbox_dir=tmp_path / "o", objection_window_days=0, wechat_winner_template_id="tpl"),
        engine=db_engine,
    )
    ids = seed_week(c, eligible=5, ineligible=0)
    c.publishing.publish(WEEK)
    with pytest.raises(Conflict) as e:
        c.review.object(WEEK, 1, openid_of(c, ids[1]), "理由")
    assert e.value.code == "objections_closed"
    out = c.review.run_due()
    assert out[0].finalized and out[0].publication_state is None and out[0].claims == 5
    assert c.publishing.get(WEEK, FINAL) is None
    with c.read() as s:
        assert s.scalar(select(func.count()).select_from(WinnerNotice).where(WinnerNotice.kind == FINAL)) == 5
    assert c.review.run_due() == []


def test_service_is_wired(c: Container) -> None:
    assert isinstance(c.review, ReviewService) and c.jobs.finalize is not None


def test_weeks_published_before_the_upgrade_are_final_as_they_stand(tmp_path: Path) -> None:
    """Migration 0006 records already-published weeks as final (no claims), so the finalize job never announces
    history again; downgrading removes the review tables and kinds again."""
    from alembic import command  # local: only this migration test drives Alembic directly

    from rewards import migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'upgrade.db'}")
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO weekly_snapshots (id, week, closed_at, participants, winners, canonical, checksum, "
                "board_status) VALUES (1, '2026-W40', '2026-10-05', 0, 0, '{}', 'x', 'match')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO publications (week, snapshot_id, channel, state, version, attempts, created_at, "
                "updated_at, published_at) VALUES ('2026-W40', 1, 'outbox', 'published', 1, 1, '2026-10-05', "
                "'2026-10-05', '2026-10-05 02:00:00')"
            )
        )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT week, checksum, announced_at IS NOT NULL FROM review_finals")).all() == [
            ("2026-W40", "legacy", 1)
        ]
        assert conn.execute(text("SELECT kind FROM publications")).scalars().all() == ["notice"]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    engine.dispose()


BAD_DECISIONS = [
    ("unknown action", dict(action="ban_forever"), Invalid, "unknown_action"),
    ("empty reason", dict(reason=""), Invalid, "reason_required"),
    ("void without a case", dict(action="void_case"), Invalid, "case_required"),
    ("void of another citizen's case", dict(action="void_case", case_id="OTHER"), Invalid, "case_not_of_entry"),
    ("void of an unknown case", dict(action="void_case", case_id="NOPE-1"), Invalid, "case_not_of_entry"),
    ("no such objection", dict(objection_id=999_999), NotFound, "objection_not_found"),
]


@pytest.mark.parametrize(("case", "change", "error", "code"), BAD_DECISIONS, ids=[b[0] for b in BAD_DECISIONS])
def test_bad_decisions_are_refused_with_a_code_and_write_nothing(
    c: Container, published: list[int], case: str, change: dict[str, object], error: type[DomainError], code: str
) -> None:
    o = c.review.object(WEEK, 1, openid_of(c, published[9]), "理由")
    with c.read() as s:
        other_case = s.scalars(
            select(Case.case_id)
            .join(LedgerEntry, LedgerEntry.case_pk == Case.id)
            .where(LedgerEntry.citizen_id == published[1])
        ).one()
    args: dict[str, object] = {"objection_id": o.id, "action": "disqualify", "reason": "理由", "actor": STAFF}
    args.update(change)
    if args.get("case_id") == "OTHER":
        args["case_id"] = other_case
    before = counts(c)
    with pytest.raises(error) as e:
        c.review.uphold(**args)  # type: ignore[arg-type]
    assert e.value.code == code and counts(c) == before
    with c.read() as s:
        assert s.scalars(select(Case.status).where(Case.case_id == other_case)).one() == "filed"


def test_two_desks_redeeming_one_code_at_once_hand_over_one_prize(
    pg_engine: Engine, make_container: MakeContainer, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor  # local: only this race needs threads

    c = make_container(test_settings(outbox_dir=tmp_path / "o"), engine=pg_engine)
    ids = seed_week(c, eligible=3, ineligible=0)
    c.publishing.publish(WEEK)
    deadline = c.review.status(WEEK).deadline
    assert deadline is not None
    c.clock.set(deadline)  # type: ignore[attr-defined]  # the test container's FixedClock
    c.review.finalize(WEEK)
    code = c.review.claims_of(openid_of(c, ids[0]))[0].code

    def desk(n: int) -> str:
        try:
            c.review.redeem(code, Actor(f"desk-{n}", "console"))
        except Conflict as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(desk, range(8)))
    assert outcomes == ["code_used"] * 7 + ["ok"]
    with c.read() as s:
        assert s.scalar(select(func.count()).where(AuditEntry.action == "claim_redeemed")) == 1
