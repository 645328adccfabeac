"""Signing in with linked WeChat identities, and an administrator's merge of two citizens (ledger-preserving).

Sign-in (`sign_in_linked`): find the openid's citizen and the unionid's citizen, let the pure rule
(rewards.cases.linking.decide) say what to do, and do it: attach the openid, record the unionid, move an empty
citizen's openids, or record a pending link. Two citizens who both have points or reports are never joined here.

Merge (`merge_citizens`, `rewards citizens merge`): an administrator joins citizen B into citizen A in one
transaction. The ledger stays append-only: every entry of B is answered by a `moved_out:<id>` entry of B (the
opposite points) and a `moved_in:<id>` entry of A (the same points), both with the original entry's case, week and
time, so every total and every week's total of A plus B is unchanged, A ranks as if it had earned B's points when
B did, and the projector applies the new entries like any others (they are also handed to the boards after
commit). B's reports move to A, B's openids sign in as A, and both citizens get a citizen_changes row so the
boards restate them (A may become eligible or change district). The merge is audited and recorded once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from rewards.cases import identity
from rewards.cases.identity import MERGED, PENDING, CitizenIdentity, CitizenMerge, IdentityLink
from rewards.cases.linking import Decision, Outcome, Party, decide
from rewards.cases.models import Case, Citizen
from rewards.cases.service import audit, record_citizen_change, upsert_citizen
from rewards.db import UnitOfWork
from rewards.errors import Conflict, Invalid, NotFound
from rewards.scoring import ledger
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import AwardDecision
from rewards.scoring.ports import BoardSink

SIGN_IN_ACTOR = "wechat-sign-in"
MOVED_OUT = "moved_out:"
MOVED_IN = "moved_in:"
MAX_REASON = 500


@dataclass(frozen=True)
class SignIn:
    """Who a sign-in signed in as (canonical openid), and what the linking rule decided."""

    citizen_id: int
    openid: str
    decision: Decision


@dataclass(frozen=True)
class MergeReport:
    """What a merge moved."""

    merge_id: int
    from_citizen_id: int
    into_citizen_id: int
    into_openid: str
    cases_moved: int
    entries_moved: int
    points_moved: int


def established(session: Session, citizen_id: int) -> bool:
    """A citizen is established once it has a ledger entry or a report (merging it needs an administrator)."""
    has_entry = select(exists().where(LedgerEntry.citizen_id == citizen_id))
    has_case = select(exists().where(Case.reporter_id == citizen_id))
    return bool(session.scalar(has_entry)) or bool(session.scalar(has_case))


def _party(session: Session, citizen: Citizen | None) -> Party | None:
    return None if citizen is None else Party(citizen.id, established(session, citizen.id))


def sign_in_linked(
    session: Session,
    app: str,
    openid: str,
    unionid: str | None,
    now: datetime,
    *,
    snapshot_user: bool = False,
) -> SignIn:
    """Sign in an app's openid (with the unionid WeChat returned, if any); return the canonical citizen."""
    owner = identity.owner_of(session, app, openid)
    holder = identity.union_owner(session, unionid) if unionid else None
    decision = decide(_party(session, owner), _party(session, holder))
    detail = json.dumps({"app": app, "outcome": decision.outcome.value})
    if decision.outcome is Outcome.NEW:
        citizen = upsert_citizen(session, openid, now)
    else:
        assert decision.citizen_id is not None
        citizen = session.get_one(Citizen, decision.citizen_id)
    if decision.outcome is Outcome.ABSORB:
        assert decision.pair is not None
        emptied, kept = decision.pair
        moved = identity.move_identities(session, emptied, kept)
        detail = json.dumps({"app": app, "outcome": decision.outcome.value, "openids_moved": moved})
        audit(session, now, SIGN_IN_ACTOR, "identity_absorbed", f"citizen:{emptied}->{kept}", detail)
    elif decision.outcome is Outcome.LINK:
        audit(session, now, SIGN_IN_ACTOR, "identity_linked", f"citizen:{citizen.id}", detail)
    elif decision.outcome is Outcome.PENDING:
        assert decision.pair is not None and unionid is not None
        if identity.record_pending(session, decision.pair, app, openid, unionid, now):
            pair = f"citizen:{decision.pair[0]}->{decision.pair[1]}"
            audit(session, now, SIGN_IN_ACTOR, "identity_link_pending", pair, detail)
    identity.attach(session, app, openid, citizen.id, unionid if decision.record_unionid else None, now)
    if snapshot_user and not citizen.snapshot_user:  # WeChat is_snapshotuser=1: flag, never unflag
        upsert_citizen(session, citizen.openid, now, snapshot_user=True)
    session.flush()
    return SignIn(citizen.id, citizen.openid, decision)


def _citizen(session: Session, openid: str, role: str) -> Citizen:
    # the account itself, not its successor: a merge names the two accounts as they are (a merged one is refused)
    citizen = session.scalar(select(Citizen).where(Citizen.openid == openid))
    if citizen is None:
        raise NotFound(f"no citizen with that openid ({role})", code="unknown_citizen")
    return citizen


def merge_citizens(
    uow: UnitOfWork,
    sink: BoardSink,
    from_openid: str,
    into_openid: str,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> MergeReport:
    """Join citizen `from` into citizen `into` (an administrator's decision, audited); refuse what cannot be."""
    session = uow.session
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise Invalid(f"a merge needs a reason of 1-{MAX_REASON} characters", code="bad_reason")
    if not actor.strip():
        raise Invalid("a merge needs the administrator's name", code="bad_actor")
    source = _citizen(session, from_openid, "--from")
    target = _citizen(session, into_openid, "--into")
    if source.id == target.id:
        raise Conflict("a citizen cannot be merged into itself", code="same_citizen")
    # lock both citizens (in id order: two merges of the same pair never deadlock) before reading their ledgers
    ids = sorted((source.id, target.id))
    session.scalars(select(Citizen).where(Citizen.id.in_(ids)).order_by(Citizen.id).with_for_update()).all()
    if identity.merge_of(session, source.id) is not None:
        raise Conflict("that citizen was already merged into another", code="already_merged")
    if identity.merge_of(session, target.id) is not None:
        raise Conflict("the citizen to merge into was itself merged away: merge into its successor", code="merged_away")

    cases_moved = session.execute(update(Case).where(Case.reporter_id == source.id).values(reporter_id=target.id))
    moved_entries: list[LedgerEntry] = []
    points = 0
    for entry in sorted(ledger.entries_for_citizen(session, source.id), key=lambda e: e.id):
        if entry.points == 0:
            continue
        out = AwardDecision(entry.case_pk, source.id, f"{MOVED_OUT}{entry.id}", -entry.points,
                            f"账户合并：积分转入合并后的账户（原记录 {entry.reason}）")  # fmt: skip
        into = AwardDecision(entry.case_pk, target.id, f"{MOVED_IN}{entry.id}", entry.points,
                             f"账户合并：由合并前的账户转入（{entry.reason}）")  # fmt: skip
        for decision in (out, into):
            row = ledger.insert_entry(session, decision, entry.week, entry.created_at)
            if row is not None:
                moved_entries.append(row)
        points += entry.points

    # B's openids sign in as A (B's canonical openid too, without a row of its own: identity.owner_of follows merges)
    identity.move_identities(session, source.id, target.id)
    links = session.scalars(
        select(IdentityLink).where(
            IdentityLink.state == PENDING,
            IdentityLink.from_citizen_id.in_(ids),
            IdentityLink.into_citizen_id.in_(ids),
        )
    ).all()
    for link in links:  # the unionid the pending link held now joins A's openids
        link.state, link.resolved_at, link.resolved_by = MERGED, now, actor
        session.execute(
            update(CitizenIdentity)
            .where(CitizenIdentity.app == link.app, CitizenIdentity.openid == link.openid)
            .where(CitizenIdentity.unionid.is_(None))
            .values(unionid=link.unionid)
        )

    # the person is verified if either account was; a ban on either account stays (a merge launders nothing)
    target.verified = target.verified or source.verified
    target.banned = target.banned or source.banned
    for field in ("name", "phone", "district"):
        if getattr(target, field) is None and getattr(source, field) is not None:
            setattr(target, field, getattr(source, field))
    target.updated_at = source.updated_at = now
    source.merged_into_id = target.id  # later reports and lookups under B's openid find A (cases.service.successor)
    record_citizen_change(session, source.id, now)
    record_citizen_change(session, target.id, now)

    merge = CitizenMerge(
        from_citizen_id=source.id,
        into_citizen_id=target.id,
        actor=actor,
        reason=reason,
        at=now,
        cases_moved=int(cases_moved.rowcount),  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
        entries_moved=len(moved_entries) // 2,
        points_moved=points,
    )
    session.add(merge)
    session.flush()
    detail = {
        "merge": merge.id,
        "reason": reason,
        "cases": merge.cases_moved,
        "entries": merge.entries_moved,
        "points": points,
        "links_resolved": len(links),
    }
    pair = f"citizen:{source.id}->{target.id}"
    audit(session, now, actor, "citizen_merge", pair, json.dumps(detail, ensure_ascii=False))
    if moved_entries:
        facts = ledger.facts_for_entries(session, moved_entries)
        uow.after_commit(lambda: sink.apply(facts))
    return MergeReport(
        merge.id, source.id, target.id, target.openid, merge.cases_moved, merge.entries_moved, merge.points_moved
    )
