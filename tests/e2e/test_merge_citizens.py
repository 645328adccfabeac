"""Never merge two citizens with points on sign-in; an administrator's merge (CLI) keeps every total and the boards.

The mini program and the official account sign in against the stand-in WeChat server (tests/fakes/wechat_wxa.py);
the merge runs as `rewards citizens merge` on the same database and Redis; `rewards check`'s logic (and the
command itself) confirm the boards equal the ledger afterwards.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from rewards.bootstrap import Container
from rewards.cases.identity import MERGED, PENDING, CitizenMerge, IdentityLink
from rewards.cases.models import AuditEntry, Case, Citizen, CitizenChange
from rewards.cli import app as cli
from rewards.leaderboard.check import check
from rewards.scoring.ledger import LedgerEntry
from tests.e2e.test_wxa_signin import as_session, mp_sign_in, settings, stand_in, wx_fixture, wxa  # noqa: F401  (fixtures)
from tests.fakes.wechat_wxa import WxaStandIn
from tests.integration.test_check_rebuild import award, void

runner = CliRunner()


def totals(c: Container) -> dict[str, int]:
    """Ledger total per canonical openid."""
    with c.read() as s:
        rows = s.execute(
            select(Citizen.openid, func.coalesce(func.sum(LedgerEntry.points), 0))
            .join(LedgerEntry, LedgerEntry.citizen_id == Citizen.id, isouter=True)
            .group_by(Citizen.openid)
        ).all()
    return {openid: int(points) for openid, points in rows}


def week_totals(c: Container) -> dict[str, int]:
    with c.read() as s:
        rows = s.execute(select(LedgerEntry.week, func.sum(LedgerEntry.points)).group_by(LedgerEntry.week)).all()
    return {week: int(points) for week, points in rows}


def test_two_citizens_with_points_are_never_joined_by_a_sign_in_and_an_admin_merge_keeps_every_total(
    client: TestClient, wx: WxaStandIn, container: Container, cli_env: dict[str, str]
) -> None:
    award(container, "LZ-M-1", "oMpAlice", district="城关区", verified=True)
    award(container, "LZ-M-2", "oMpAlice", district="城关区", verified=True)
    container.clock.advance(days=7)  # type: ignore[attr-defined]  # Bob's points fall in the next week
    award(container, "LZ-M-3", "oWxaBob", district="七里河区", verified=False)  # reported under the wxa openid
    mp_token = mp_sign_in(client, wx, "MPCODE1", "oMpAlice", "uAlice")
    before, weeks_before = totals(container), week_totals(container)
    assert before == {"oMpAlice": 2, "oWxaBob": 1}

    # the mini program's openid belongs to Bob, the unionid to Alice: both have points, so no automatic link
    wx.issue_wxa("WXCODE1", "oWxaBob", "uAlice")
    r = wxa(client, "WXCODE1")
    assert r.status_code == 200, r.text
    assert r.json()["openid"] == "oWxaBob" and r.json()["link_pending"] is True and r.json()["linked"] is False
    wx.issue_wxa("WXCODE2", "oWxaBob", "uAlice")
    assert wxa(client, "WXCODE2").json()["openid"] == "oWxaBob"  # again: still Bob, still one pending link
    assert totals(container) == before
    with container.read() as s:
        links = s.scalars(select(IdentityLink)).all()
        assert [(link.state, link.app, link.openid, link.unionid) for link in links] == [
            (PENDING, "wxa", "oWxaBob", "uAlice")
        ]
        pending_audit = s.scalars(select(AuditEntry.action).where(AuditEntry.action == "identity_link_pending")).all()
        assert len(pending_audit) == 1
    listed = runner.invoke(cli, ["citizens", "links"])
    assert listed.exit_code == 0, listed.output
    assert "oWxaBob (1 points)" in listed.output and "oMpAlice (2 points)" in listed.output

    # refused merges change nothing
    for args, why in (
        (["--from", "oWxaBob", "--into", "oWxaBob"], "itself"),
        (["--from", "oNobody", "--into", "oMpAlice"], "no citizen"),
        (["--from", "oWxaBob", "--into", "oMpAlice", "--reason", "  "], "reason"),
    ):
        refused = runner.invoke(cli, ["citizens", "merge", "--reason", "同一市民", "--by", "admin-1", *args])
        assert refused.exit_code == 2 and why in refused.output, refused.output
    assert totals(container) == before

    merged = runner.invoke(
        cli,
        [
            "citizens",
            "merge",
            "--from",
            "oWxaBob",
            "--into",
            "oMpAlice",
            "--reason",
            "同一市民，已电话核实",
            "--by",
            "admin-1",
        ],
    )
    assert merged.exit_code == 0, merged.output
    assert "1 reports, 1 ledger entries, 1 points moved" in merged.output

    after = totals(container)
    assert after == {"oMpAlice": 3, "oWxaBob": 0}
    assert sum(after.values()) == sum(before.values()) and week_totals(container) == weeks_before
    with container.read() as s:
        alice = s.scalar(select(Citizen).where(Citizen.openid == "oMpAlice"))
        bob = s.scalar(select(Citizen).where(Citizen.openid == "oWxaBob"))
        assert alice is not None and bob is not None
        assert s.scalar(select(Case.reporter_id).where(Case.case_id == "LZ-M-3")) == alice.id
        assert alice.verified is True and alice.district == "城关区"  # Alice's own facts stay; nothing launders a ban
        record = s.scalar(select(CitizenMerge))
        assert record is not None and (record.from_citizen_id, record.into_citizen_id) == (bob.id, alice.id)
        assert record.actor == "admin:admin-1" and record.points_moved == 1
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "citizen_merge"))
        assert entry is not None and entry.actor == "admin:admin-1"
        assert json.loads(entry.detail or "{}")["reason"] == "同一市民，已电话核实"
        changed = set(s.scalars(select(CitizenChange.citizen_id)).all())
        assert {alice.id, bob.id} <= changed  # the projector restates both
        assert s.scalar(select(IdentityLink.state)) == MERGED
        rules = sorted(s.scalars(select(LedgerEntry.rule).where(LedgerEntry.rule.like("moved_%"))).all())
        assert [r.split(":")[0] for r in rules] == ["moved_in", "moved_out"]

    # the boards follow: after-commit and through the projector; `rewards check` finds no difference
    container.projector.catch_up()
    assert check(container.db, container.boards).clean
    assert runner.invoke(cli, ["check"]).exit_code == 0
    standing = client.get("/api/v1/citizens/oMpAlice/standing", headers=as_session(mp_token)).json()
    assert standing["all_time"]["points"] == 3 and standing["stale"] is False
    points = client.get("/api/v1/citizens/oMpAlice/points", headers=as_session(mp_token)).json()
    assert points["total"] == 3
    assert {line["rule"].split(":")[0] for line in points["lines"]} == {"valid_report", "moved_in"}

    # Bob's mini-program openid now signs in as Alice; a second merge of Bob is refused
    wx.issue_wxa("WXCODE3", "oWxaBob", "uAlice")
    assert wxa(client, "WXCODE3").json()["openid"] == "oMpAlice"
    again = runner.invoke(
        cli, ["citizens", "merge", "--from", "oWxaBob", "--into", "oMpAlice", "--reason", "再次", "--by", "admin-1"]
    )
    assert again.exit_code == 2 and "already merged" in again.output
    assert totals(container) == after

    # a moved report voided later is reversed where its points now are (Alice), never on the emptied citizen
    void(container, "LZ-M-3")
    assert totals(container) == {"oMpAlice": 2, "oWxaBob": 0}
    container.projector.catch_up()
    assert check(container.db, container.boards).clean

    # a report that still arrives under Bob's official-account openid belongs to the merged account (Alice)
    award(container, "LZ-M-4", "oWxaBob", district="城关区", verified=True)
    assert totals(container) == {"oMpAlice": 3, "oWxaBob": 0}
    with container.read() as s:
        reporter = s.scalar(
            select(Citizen.openid).join(Case, Case.reporter_id == Citizen.id).where(Case.case_id == "LZ-M-4")
        )
        assert reporter == "oMpAlice"
    container.projector.catch_up()
    assert check(container.db, container.boards).clean
