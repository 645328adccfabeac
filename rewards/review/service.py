"""The review of a published week: 公示 with objections, decisions, amended list versions, 定榜 and prize claims.

Interface changes (for the edges): none since first written. Wiring: `Container.review` (bootstrap); the scheduler
runs `run_due` as its `finalize-weeks` job (WeeklyJobs.finalize).

The state machine of one week (phase in `ReviewStatusOut`):

    no_list --close--> not_published --first publication completes--> open (objections until the deadline)
        --deadline passes--> reviewing (open objections are decided; decisions allowed until final)
        --finalize (deadline passed and no open objection)--> final (claims, 定榜 article, winner notices)

* The deadline is the first (notice) publication's completion time + `objection_window_days`; with 0 days the
  list is final as soon as the first publication completes (no second article; the winners get their claim codes
  by template message all the same).
* The list: version 1 is the notice list; each upheld objection adds a version derived by
  `rewards.review.derive` from the week's sealed candidate pool (the snapshot's winners followed by the next
  eligible citizens of the ledger as of the close) minus every removed citizen. Sealed rows never change; every
  load re-checks their checksums.
* Upholding removes the entry's citizen from the week's list (both actions); `void_case` also voids the named case
  through `CaseFlows.void` in the same transaction (its points are reversed in the ledger, in the current week).
  Other open objections on the same entry are closed as `moot`. Every decision is in the audit log.
* Finalize runs under the week's review lease; each step is idempotent and resumes after a crash: the final record
  and the claim codes are written in one transaction, the 定榜 article goes through `PublishService.publish_final`
  (the publication state machine, kind "final"), then the winner notices (one record per week, kind and citizen).
* Claim codes: 12 characters from an unambiguous alphabet (60 bits from `secrets`), shown grouped `XXXX-XXXX-XXXX`;
  input is accepted with or without dashes/spaces, any case. A code stops working when redeemed, after
  `claim_days`, when its citizen is banned, or when a case that earned them points that week has been voided.

Errors (all `rewards.errors`, with a code; nothing is written when one is raised):
  Invalid: invalid_week, reason_required, reason_too_long, invalid_rank, invalid_channel, unknown_action,
           case_required, case_not_of_entry, malformed_code, unknown_format
  NotFound: no_list, no_such_rank, no_such_version, objection_not_found, unknown_code, not_final (export of a
            week with no 定榜)
  Conflict: not_published, objections_closed, already_objected, objection_decided, week_final, review_raced,
            finalize_in_progress, code_used, code_expired, code_revoked, code_other_week, code_other_citizen,
            and CaseFlows' own errors for an illegal void (e.g. a case that is not filed)
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rewards.cases import lifecycle as lc
from rewards.cases import service as cases
from rewards.cases.commands import Actor, VoidCase
from rewards.cases.duplicates import find_duplicates
from rewards.cases.models import Case, Citizen
from rewards.clock import Clock, IsoWeek
from rewards.config import Settings
from rewards.db import Database
from rewards.errors import Conflict, Invalid, NotFound
from rewards.flows import CaseFlows
from rewards.leaderboard.ranking import Standing, rank
from rewards.leaderboard.snapshot import Snapshot, SnapshotRow
from rewards.leaderboard.weeks import load_closed_week, week_standings
from rewards.locks import Leases
from rewards.logs import get_logger
from rewards.masking import mask_name
from rewards.publish.models import PUBLISHED, Publication
from rewards.publish.port import FINAL, NOTICE
from rewards.publish.service import PublishService
from rewards.review import derive as d
from rewards.review.models import (
    ACTIONS,
    CLAIM_EXPIRED,
    CLAIM_LABELS,
    CLAIM_PENDING,
    CLAIM_REDEEMED,
    CLAIM_REVOKED,
    DISQUALIFY,
    MOOT,
    OBJECTION_LABELS,
    OPEN,
    REJECTED,
    UPHELD,
    VOID_CASE,
    Claim,
    Decision,
    FinalList,
    ListVersion,
    Objection,
    ReviewPool,
)
from rewards.review.schemas import (
    ChangeOut,
    ClaimOut,
    DecisionOut,
    DuplicateHintOut,
    EvidenceCaseOut,
    EvidenceOut,
    FinalizeOut,
    LedgerLineOut,
    ListRowOut,
    ListVersionOut,
    ObjectionOut,
    PayoutFile,
    ReviewStatusOut,
)
from rewards.scoring.ledger import LedgerEntry

log = get_logger("review")

CHANNELS = ("web", "api", "wechat", "demo")
NO_LIST, NOT_PUBLISHED, WINDOW_OPEN, REVIEWING, FINAL_PHASE = "no_list", "not_published", "open", "reviewing", "final"
PHASE_LABELS = {
    NO_LIST: "本周尚未结榜",
    NOT_PUBLISHED: "已结榜，等待发布公示",
    WINDOW_OPEN: "公示中，接受异议",
    REVIEWING: "公示期满，异议处理中",
    FINAL_PHASE: "已定榜",
}
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed from a phone screen
CODE_LENGTH = 12
RESERVE_MIN = 20  # the pool holds at least this many (else `places`) eligible citizens beyond the prize places
_CODE_INPUT = re.compile(r"[\s\-]+")
PAYOUT_FORMATS = ("csv", "xlsx")
PAYOUT_HEADER = ("周次", "获奖名次", "奖项", "奖金（元）", "姓名", "手机号", "领奖码", "领取状态", "领取时间", "经办人")


class SealedCorrupted(Exception):
    """A stored pool or list version no longer matches its canonical text or checksum."""


def new_code() -> str:
    """A fresh claim code (canonical form, no dashes): 12 characters drawn with `secrets`."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """A typed or scanned code in canonical form; Invalid (malformed_code) when it cannot be one."""
    code = _CODE_INPUT.sub("", text or "").upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise Invalid("领奖码格式不正确（应为12位字母数字）/ malformed claim code", code="malformed_code")
    return code


def display_code(code: str) -> str:
    """A canonical code grouped for reading: XXXX-XXXX-XXXX."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


@dataclass(frozen=True)
class _Week:
    """What one read of a week's review state found."""

    week: str
    closed: bool
    published_at: datetime | None
    deadline: datetime | None
    final: FinalList | None


class ReviewService:
    """The review use cases of published weeks (see the module docstring for the state machine and errors)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        flows: CaseFlows,
        publishing: PublishService,
        leases: Leases,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.flows = flows
        self.publishing = publishing
        self.leases = leases

    # ------------------------------------------------------------ status and versions (public reads)

    def status(self, week: str) -> ReviewStatusOut:
        """Where the week's review stands: phase, deadline, open objections, versions, final and claim deadline.

        Raises Invalid(invalid_week) for a malformed week; a week with no list is phase `no_list` (not an error).
        """
        label = str(IsoWeek.from_text(week))
        with self.db.read() as session:
            w = self._week(session, label)
            phase = self._phase(w)
            open_count = session.scalar(
                select(func.count()).select_from(Objection).where(Objection.week == label, Objection.status == OPEN)
            )
            latest = session.scalar(select(func.max(ListVersion.number)).where(ListVersion.week == label))
        current = latest if latest is not None else (1 if w.closed else None)
        return ReviewStatusOut(
            week=label,
            phase=phase,
            phase_label=PHASE_LABELS[phase],
            window_days=self.settings.objection_window_days,
            published_at=w.published_at,
            deadline=w.deadline,
            accepting_objections=phase == WINDOW_OPEN,
            open_objections=int(open_count or 0),
            current_version=current,
            final_version=w.final.version_number if w.final else None,
            finalized_at=w.final.finalized_at if w.final else None,
            announced_at=w.final.announced_at if w.final else None,
            claim_deadline=w.final.claim_deadline if w.final else None,
        )

    def current(self, week: str) -> ListVersionOut:
        """The week's current list version (the final one once final). Seals the pool and version 1 on first use.

        NotFound(no_list) when the week is not closed.
        """
        versions = self._versions(str(IsoWeek.from_text(week)))
        return versions[-1]

    def versions(self, week: str) -> list[ListVersionOut]:
        """Every sealed version of the week's list, oldest first (checksums verified). NotFound(no_list)."""
        return self._versions(str(IsoWeek.from_text(week)))

    def version(self, week: str, number: int) -> ListVersionOut:
        """One sealed version. NotFound(no_list) for an unclosed week, NotFound(no_such_version) for a bad number."""
        for v in self._versions(str(IsoWeek.from_text(week))):
            if v.number == number:
                return v
        raise NotFound(f"week {week} has no list version {number}", code="no_such_version")

    # ------------------------------------------------------------ objections

    def object(self, week: str, rank: int, openid: str, reason: str, channel: str = "web") -> ObjectionOut:
        """File a citizen's objection to the entry at `rank` of the week's current list version.

        `openid` is the signed-in citizen's (a citizen row is created on first use, inside the same transaction);
        `channel` is web | api | wechat | demo. Checks, in order: week format, channel, reason (required, at most
        `objection_reason_max` characters after trimming), rank >= 1, the week has a list (NotFound no_list),
        the 公示 has started (Conflict not_published), the window is open (Conflict objections_closed), the rank
        exists in the current version (NotFound no_such_rank), one objection per citizen per entry
        (Conflict already_objected). Rate limiting is the edge's job.
        """
        label = str(IsoWeek.from_text(week))
        if channel not in CHANNELS:
            raise Invalid(f"unknown channel {channel!r}", code="invalid_channel")
        text = self._reason(reason, self.settings.objection_reason_max, "异议理由")
        if rank < 1:
            raise Invalid("名次必须是正整数 / rank must be a positive integer", code="invalid_rank")
        with self.db.read() as session:
            w = self._week(session, label)
        phase = self._phase(w)
        if phase == NO_LIST:
            raise NotFound(f"{label} 尚无获奖名单 / week {label} has no list yet", code="no_list")
        if phase == NOT_PUBLISHED:
            raise Conflict(
                f"{label} 的公示尚未开始 / the notice of {label} has not been published", code="not_published"
            )
        if phase != WINDOW_OPEN:
            raise Conflict(
                f"{label} 的公示期已结束，不再接受异议 / the objection window of {label} has closed",
                code="objections_closed",
            )
        current = self._current_or_seal(label)
        now = self.clock.now()
        if rank > len(current.rows):
            raise NotFound(
                f"{label} 的获奖名单没有第{rank}名 / the list of {label} has no rank {rank}", code="no_such_rank"
            )
        row = current.rows[rank - 1]
        try:
            with self.db.uow() as uow:
                objector = cases.sign_in_citizen(uow.session, openid, now)
                uow.session.add(
                    Objection(
                        week=label,
                        objector_id=objector.id,
                        rank=rank,
                        version_number=current.number,
                        target_citizen_id=row.citizen_id,
                        target_name=row.display_name,
                        reason=text,
                        channel=channel,
                        status=OPEN,
                        created_at=now,
                    )
                )
                uow.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                "您已对该条目提出过异议 / you have already objected to this entry", code="already_objected"
            ) from exc
        with self.db.read() as session:
            found = session.scalars(
                select(Objection).where(
                    Objection.week == label,
                    Objection.target_citizen_id == row.citizen_id,
                    Objection.objector_id == select(Citizen.id).where(Citizen.openid == openid).scalar_subquery(),
                )
            ).one()
            return self._objection_out(session, found)

    def objections_of(self, openid: str) -> list[ObjectionOut]:
        """A citizen's own objections with status and outcome, newest first (empty for an unknown citizen)."""
        with self.db.read() as session:
            rows = session.scalars(
                select(Objection)
                .join(Citizen, Citizen.id == Objection.objector_id)
                .where(Citizen.openid == openid)
                .order_by(Objection.created_at.desc(), Objection.id.desc())
            ).all()
            return [self._objection_out(session, o) for o in rows]

    def objections(self, week: str | None = None, status: str | None = OPEN, limit: int = 200) -> list[ObjectionOut]:
        """Objections for the console, oldest first: of one week or all, of one status (None: every status)."""
        stmt = select(Objection).order_by(Objection.created_at, Objection.id).limit(limit)
        if week is not None:
            stmt = stmt.where(Objection.week == str(IsoWeek.from_text(week)))
        if status is not None:
            stmt = stmt.where(Objection.status == status)
        with self.db.read() as session:
            return [self._objection_out(session, o) for o in session.scalars(stmt).all()]

    def objection(self, objection_id: int) -> ObjectionOut:
        """One objection. NotFound(objection_not_found)."""
        with self.db.read() as session:
            return self._objection_out(session, self._get_objection(session, objection_id))

    def evidence(self, objection_id: int) -> EvidenceOut:
        """The objected entry's evidence for the console: its ledger lines in the week, the cases behind them (photos,
        duplicate hints) and the other objections on the same entry. NotFound(objection_not_found)."""
        with self.db.read() as session:
            o = self._get_objection(session, objection_id)
            lines = session.execute(
                select(LedgerEntry, Case)
                .join(Case, Case.id == LedgerEntry.case_pk)
                .where(LedgerEntry.week == o.week, LedgerEntry.citizen_id == o.target_citizen_id)
                .order_by(LedgerEntry.created_at, LedgerEntry.id)
            ).all()
            seen: dict[int, Case] = {}
            for _, case in lines:
                seen.setdefault(case.id, case)
            radius = self.settings.duplicate_radius_m
            window = timedelta(hours=self.settings.duplicate_window_hours)
            evidence_cases = [
                EvidenceCaseOut(
                    case_id=c.case_id,
                    category=c.category,
                    status=c.status,
                    verdict=c.verdict,
                    description=c.description,
                    address=c.address,
                    photos=list(c.photos or []),
                    reported_at=c.reported_at,
                    duplicate_of=c.duplicate_of,
                    duplicates=[
                        DuplicateHintOut(
                            case_id=h.case.case_id, distance_m=h.distance_m, earlier=h.earlier, status=h.case.status
                        )
                        for h in (
                            find_duplicates(session, c, radius, window)
                            if c.lat is not None and c.lon is not None
                            else []
                        )
                    ],
                )
                for c in seen.values()
            ]
            others = session.scalars(
                select(Objection)
                .where(
                    Objection.week == o.week,
                    Objection.target_citizen_id == o.target_citizen_id,
                    Objection.id != o.id,
                )
                .order_by(Objection.id)
            ).all()
            return EvidenceOut(
                objection=self._objection_out(session, o),
                target_citizen_id=o.target_citizen_id,
                target_points=sum(line.points for line, _ in lines),
                ledger=[
                    LedgerLineOut(
                        case_id=case.case_id,
                        rule=line.rule,
                        points=line.points,
                        reason=line.reason,
                        created_at=line.created_at,
                    )
                    for line, case in lines
                ],
                cases=evidence_cases,
                other_objections=[self._objection_out(session, x) for x in others],
            )

    # ------------------------------------------------------------ decisions

    def reject(self, objection_id: int, reason: str, actor: Actor) -> DecisionOut:
        """Reject an open objection with a reason (shown to the objector); audited as `objection_rejected`.

        Invalid(reason_required / reason_too_long), NotFound(objection_not_found), Conflict(objection_decided,
        week_final).
        """
        text = self._reason(reason, self.settings.objection_reason_max * 5, "处理理由")
        now = self.clock.now()
        with self.db.uow() as uow:
            o = self._open_objection(uow.session, objection_id)
            decision = Decision(
                objection_id=o.id,
                week=o.week,
                outcome=REJECTED,
                action=None,
                case_id=None,
                target_citizen_id=o.target_citizen_id,
                reason=text,
                actor=actor.name,
                decided_at=now,
            )
            uow.session.add(decision)
            uow.session.flush()
            o.status, o.decided_at, o.decision_id = REJECTED, now, decision.id
            cases.audit(uow.session, now, actor.name, "objection_rejected", f"objection:{o.id}", text)
            out = DecisionOut(
                objection_id=o.id,
                outcome=REJECTED,
                action=None,
                case_id=None,
                reason=text,
                actor=actor.name,
                decided_at=now,
                version=None,
                mooted=[],
            )
        return out

    def uphold(
        self, objection_id: int, action: str, reason: str, actor: Actor, case_id: str | None = None
    ) -> DecisionOut:
        """Uphold an open objection: the entry's citizen leaves the week's list and a new sealed version is derived.

        action `disqualify`: the citizen is disqualified for that week. action `void_case`: additionally voids
        `case_id` (which must have earned the entry's citizen points in that week) through CaseFlows.void with the
        reason, in the same transaction. Other open objections on the same entry become `moot`. Audited as
        `objection_upheld`. Invalid(unknown_action, reason_required, reason_too_long, case_required,
        case_not_of_entry), NotFound(objection_not_found), Conflict(objection_decided, week_final, review_raced,
        or CaseFlows' error for an illegal void).
        """
        if action not in ACTIONS:
            raise Invalid(f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}", code="unknown_action")
        text = self._reason(reason, self.settings.objection_reason_max * 5, "处理理由")
        if action == VOID_CASE and not (case_id and case_id.strip()):
            raise Invalid("作废上报时必须指明案件编号 / void_case needs the case id", code="case_required")
        with self.db.read() as session:
            o = self._get_objection(session, objection_id)
            week = o.week
        self._current_or_seal(week)  # the pool exists before any decision
        now = self.clock.now()
        try:
            with self.db.uow() as uow:
                s = uow.session
                o = self._open_objection(s, objection_id)
                if action == VOID_CASE:
                    assert case_id is not None
                    self._check_case_of_entry(s, o, case_id.strip())
                    self.flows.void(uow, VoidCase(case_id.strip(), text), actor)
                decision = Decision(
                    objection_id=o.id,
                    week=week,
                    outcome=UPHELD,
                    action=action,
                    case_id=case_id.strip() if action == VOID_CASE and case_id else None,
                    target_citizen_id=o.target_citizen_id,
                    reason=text,
                    actor=actor.name,
                    decided_at=now,
                )
                s.add(decision)
                s.flush()
                o.status, o.decided_at, o.decision_id = UPHELD, now, decision.id
                mooted = list(
                    s.scalars(
                        select(Objection).where(
                            Objection.week == week,
                            Objection.target_citizen_id == o.target_citizen_id,
                            Objection.status == OPEN,
                            Objection.id != o.id,
                        )
                    ).all()
                )
                for other in mooted:
                    other.status, other.decided_at, other.decision_id = MOOT, now, decision.id
                version = self._seal_next(s, week, now, decision.id)
                detail = {"action": action, "case_id": decision.case_id, "reason": text, "version": version.number}
                cases.audit(
                    s, now, actor.name, "objection_upheld", f"objection:{o.id}", json.dumps(detail, ensure_ascii=False)
                )
                out = DecisionOut(
                    objection_id=o.id,
                    outcome=UPHELD,
                    action=action,
                    case_id=decision.case_id,
                    reason=text,
                    actor=actor.name,
                    decided_at=now,
                    version=self._version_out(version, now, checksum=d.checksum(d.version_bytes(version))),
                    mooted=[m.id for m in mooted],
                )
        except IntegrityError as exc:  # another decision sealed the same version number first
            raise Conflict(
                "另一处理同时生成了新版本，请重试 / another decision raced this one", code="review_raced"
            ) from exc
        return out

    # ------------------------------------------------------------ 定榜

    def finalize(self, week: str) -> FinalizeOut:
        """Make the week's latest version final once its window has ended and no objection is open; then announce it
        (the 定榜 publication, kind "final") and notify the winners with their claim codes. Every step is idempotent:
        call it again after a crash (or let `run_due` do so) and it resumes where it stopped.

        Runs under the week's review lease: Conflict(finalize_in_progress) when another process holds it.
        Returns what was done; `waiting_for` says why nothing happened yet.
        """
        label = str(IsoWeek.from_text(week))
        lease = self.leases.lease(
            f"{self.settings.leaderboard_key_prefix}:review:{label}:lock", self.settings.publish_lock_seconds
        )
        if not lease.acquire():
            raise Conflict(f"week {label} is being finalized by another process", code="finalize_in_progress")
        try:
            return self._finalize(label)
        finally:
            lease.release()

    def run_due(self) -> list[FinalizeOut]:
        """Scheduler job: finalize (or resume finalizing) every published week whose window has ended and whose 定榜
        is not complete. A week another process holds is skipped; a failed publication waits for an operator.
        It also seals the candidate pool of every published week not sealed yet (else the first read seals it)."""
        now = self.clock.now()
        with self.db.read() as session:
            weeks = session.scalars(
                select(Publication.week)
                .where(Publication.kind == NOTICE, Publication.state == PUBLISHED)
                .order_by(Publication.week)
            ).all()
            done = {
                f.week
                for f in session.scalars(
                    select(FinalList).where(FinalList.announced_at.is_not(None), FinalList.notified_at.is_not(None))
                ).all()
            }
            sealed = set(session.scalars(select(ReviewPool.week)).all())
            due = []
            for wk in weeks:
                if wk in done:
                    continue
                w = self._week(session, wk)
                if w.deadline is not None and now >= w.deadline:
                    due.append(wk)
        for wk in weeks:
            if wk not in sealed:  # seal the candidate pool soon after publication: reserve eligibility as of then
                self._current_or_seal(wk)
        results = []
        for wk in due:
            try:
                results.append(self.finalize(wk))
            except Conflict as exc:
                log.warning("finalizing %s skipped: %s", wk, exc.message)
        return results

    def final(self, week: str) -> ListVersionOut | None:
        """The week's final list, or None while it is not final."""
        label = str(IsoWeek.from_text(week))
        with self.db.read() as session:
            f = session.scalars(select(FinalList).where(FinalList.week == label)).one_or_none()
        if f is None:
            return None
        return self.version(label, f.version_number)

    # ------------------------------------------------------------ claims

    def claims_of(self, openid: str) -> list[ClaimOut]:
        """A citizen's prize claims (codes included: show them to this citizen only), newest week first."""
        with self.db.read() as session:
            rows = session.scalars(
                select(Claim)
                .join(Citizen, Citizen.id == Claim.citizen_id)
                .where(Citizen.openid == openid)
                .order_by(Claim.week.desc())
            ).all()
            return [self._claim_out(session, c) for c in rows]

    def claims(self, week: str) -> list[ClaimOut]:
        """A week's prize claims by rank (console). Empty while the week is not final."""
        label = str(IsoWeek.from_text(week))
        with self.db.read() as session:
            rows = session.scalars(select(Claim).where(Claim.week == label).order_by(Claim.rank)).all()
            return [self._claim_out(session, c) for c in rows]

    def claim(self, code: str) -> ClaimOut:
        """Look a code up without redeeming it (the console shows it before handing the prize over).

        Invalid(malformed_code), NotFound(unknown_code)."""
        canonical = normalize_code(code)
        with self.db.read() as session:
            c = session.scalars(select(Claim).where(Claim.code == canonical)).one_or_none()
            if c is None:
                raise NotFound("领奖码不存在 / unknown claim code", code="unknown_code")
            return self._claim_out(session, c)

    def redeem(self, code: str, actor: Actor, *, week: str | None = None, openid: str | None = None) -> ClaimOut:
        """Redeem a claim code once, recording who handed the prize over and when; audited as `claim_redeemed`.

        `week` / `openid`, when given, must match the code's binding (the console redeeming for a given week, or a
        winner presenting it): else Conflict(code_other_week / code_other_citizen). Invalid(malformed_code),
        NotFound(unknown_code), Conflict(code_used, code_expired, code_revoked).
        """
        canonical = normalize_code(code)
        label = str(IsoWeek.from_text(week)) if week is not None else None
        now = self.clock.now()
        with self.db.uow() as uow:
            s = uow.session
            c = s.scalars(select(Claim).where(Claim.code == canonical)).one_or_none()
            if c is None:
                raise NotFound("领奖码不存在 / unknown claim code", code="unknown_code")
            if label is not None and c.week != label:
                raise Conflict("该领奖码不属于本周 / the code belongs to another week", code="code_other_week")
            if openid is not None:
                owner = s.get(Citizen, c.citizen_id)
                if owner is None or owner.openid != openid:
                    raise Conflict(
                        "该领奖码不属于此市民 / the code belongs to another citizen", code="code_other_citizen"
                    )
            state = self._claim_state(s, c, now)
            if state == CLAIM_REDEEMED:
                raise Conflict("该领奖码已使用 / the code has been used", code="code_used")
            if state == CLAIM_EXPIRED:
                raise Conflict("该领奖码已过期 / the claim deadline has passed", code="code_expired")
            if state == CLAIM_REVOKED:
                raise Conflict("该领奖码已失效 / the code no longer works", code="code_revoked")
            done = s.execute(
                update(Claim)
                .where(Claim.id == c.id, Claim.redeemed_at.is_(None))
                .values(redeemed_at=now, redeemed_by=actor.name)
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 0) != 1:
                raise Conflict("该领奖码已使用 / the code has been used", code="code_used")
            cases.audit(s, now, actor.name, "claim_redeemed", f"claim:{c.week}:{c.citizen_id}", f"rank {c.rank}")
            s.flush()
            s.refresh(c)
            out = self._claim_out(s, c)
        return out

    def export_payout(self, week: str, actor: Actor, fmt: str = "csv") -> PayoutFile:
        """The week's payout list for finance (CSV, UTF-8 with BOM, or XLSX): rank, tier, prize, REAL name and phone,
        code, claim state. Audited as `payout_export` (who, which format, how many rows). The caller checks role
        admin. Invalid(unknown_format), NotFound(not_final)."""
        label = str(IsoWeek.from_text(week))
        if fmt not in PAYOUT_FORMATS:
            raise Invalid(f"unknown format {fmt!r}: csv or xlsx", code="unknown_format")
        now = self.clock.now()
        with self.db.read() as session:
            if session.scalars(select(FinalList).where(FinalList.week == label)).one_or_none() is None:
                raise NotFound(f"{label} 尚未定榜 / week {label} has no final list", code="not_final")
            claims = session.scalars(select(Claim).where(Claim.week == label).order_by(Claim.rank)).all()
            people = {
                c.id: c
                for c in session.scalars(select(Citizen).where(Citizen.id.in_([c.citizen_id for c in claims]))).all()
            }
            table: list[list[object]] = []
            for c in claims:
                state = self._claim_state(session, c, now)
                who = people[c.citizen_id]
                table.append(
                    [
                        label,
                        c.rank,
                        c.tier,
                        c.prize,
                        who.name or "",
                        who.phone or "",
                        display_code(c.code),
                        CLAIM_LABELS[state],
                        c.redeemed_at.isoformat(timespec="seconds") if c.redeemed_at else "",
                        c.redeemed_by or "",
                    ]
                )
        content = _csv(table) if fmt == "csv" else _xlsx(label, table)
        with self.db.uow() as uow:
            cases.audit(uow.session, now, actor.name, "payout_export", f"week:{label}", f"{fmt}, {len(table)} rows")
        media = "text/csv; charset=utf-8" if fmt == "csv" else _XLSX_TYPE
        return PayoutFile(filename=f"payout-{label}.{fmt}", media_type=media, content=content, rows=len(table))

    # ------------------------------------------------------------ internals: state of a week

    def _week(self, session: Session, label: str) -> _Week:
        closed = load_closed_week(session, label) is not None
        pub = session.scalars(
            select(Publication).where(Publication.week == label, Publication.kind == NOTICE)
        ).one_or_none()
        published_at = pub.published_at if pub is not None and pub.state == PUBLISHED else None
        deadline = (
            published_at + timedelta(days=self.settings.objection_window_days) if published_at is not None else None
        )
        final = session.scalars(select(FinalList).where(FinalList.week == label)).one_or_none()
        return _Week(label, closed, published_at, deadline, final)

    def _phase(self, w: _Week) -> str:
        if w.final is not None:
            return FINAL_PHASE
        if not w.closed:
            return NO_LIST
        if w.deadline is None:
            return NOT_PUBLISHED
        return WINDOW_OPEN if self.clock.now() < w.deadline else REVIEWING

    @staticmethod
    def _reason(reason: str, limit: int, what: str) -> str:
        text = (reason or "").strip()
        if not text:
            raise Invalid(f"请填写{what} / a reason is required", code="reason_required")
        if len(text) > limit:
            raise Invalid(
                f"{what}最多{limit}个字（收到{len(text)}个）/ the reason is limited to {limit} characters",
                code="reason_too_long",
            )
        return text

    @staticmethod
    def _get_objection(session: Session, objection_id: int) -> Objection:
        o = session.get(Objection, objection_id)
        if o is None:
            raise NotFound(f"objection {objection_id} does not exist", code="objection_not_found")
        return o

    def _open_objection(self, session: Session, objection_id: int) -> Objection:
        o = session.get(Objection, objection_id, with_for_update=True)
        if o is None:
            raise NotFound(f"objection {objection_id} does not exist", code="objection_not_found")
        if o.status != OPEN:
            raise Conflict(f"objection {objection_id} has already been decided ({o.status})", code="objection_decided")
        if session.scalars(select(FinalList.id).where(FinalList.week == o.week)).first() is not None:
            raise Conflict(f"{o.week} 已定榜，不能再处理异议 / week {o.week} is final", code="week_final")
        return o

    @staticmethod
    def _check_case_of_entry(session: Session, o: Objection, case_id: str) -> None:
        earned = session.scalars(
            select(LedgerEntry.id)
            .join(Case, Case.id == LedgerEntry.case_pk)
            .where(
                Case.case_id == case_id,
                LedgerEntry.week == o.week,
                LedgerEntry.citizen_id == o.target_citizen_id,
                LedgerEntry.points > 0,
            )
        ).first()
        if earned is None:
            raise Invalid(
                f"案件 {case_id} 不是该条目本周的得分案件 / case {case_id} did not earn this entry points in {o.week}",
                code="case_not_of_entry",
            )

    # ------------------------------------------------------------ internals: pool and versions

    def _current_or_seal(self, label: str) -> d.Version:
        with self.db.read() as session:
            versions = self._load_versions(session, label)
            if versions:
                return versions[-1][0]
            if load_closed_week(session, label) is None:
                raise NotFound(f"{label} 尚无获奖名单 / week {label} has no list yet", code="no_list")
        self._seal_pool(label)
        with self.db.read() as session:
            versions = self._load_versions(session, label)
        return versions[-1][0]

    def _seal_pool(self, label: str) -> None:
        """Seal the pool and version 1 (one transaction; a concurrent sealer's rows win)."""
        with self.db.read() as session:
            closed = load_closed_week(session, label)
            if closed is None:
                raise NotFound(f"{label} 尚无获奖名单 / week {label} has no list yet", code="no_list")
            standings, entrants = week_standings(session, label)
        eligible = rank(s for s in standings if entrants[s.citizen_id].eligible)
        pool = build_pool(closed.snapshot, eligible, {cid: e.name for cid, e in entrants.items()})
        now = self.clock.now()
        first = d.derive(pool, ())[0]
        pool_text, first_text = d.pool_bytes(pool), d.version_bytes(first)
        try:
            with self.db.uow() as uow:
                uow.session.add(
                    ReviewPool(
                        week=label,
                        snapshot_checksum=closed.checksum,
                        created_at=now,
                        canonical=pool_text.decode("utf-8"),
                        checksum=d.checksum(pool_text),
                    )
                )
                uow.session.add(
                    ListVersion(
                        week=label,
                        number=1,
                        created_at=now,
                        decision_id=None,
                        canonical=first_text.decode("utf-8"),
                        checksum=d.checksum(first_text),
                    )
                )
        except IntegrityError:
            pass  # sealed concurrently: theirs is identical up to the reserve's eligibility, and it counts

    def _pool(self, session: Session, label: str) -> d.Pool:
        stored = session.scalars(select(ReviewPool).where(ReviewPool.week == label)).one_or_none()
        if stored is None:
            raise NotFound(f"{label} 尚无获奖名单 / week {label} has no list yet", code="no_list")
        data = stored.canonical.encode("utf-8")
        if d.checksum(data) != stored.checksum:
            raise SealedCorrupted(f"the candidate pool of {label} does not match its checksum")
        return d.pool_from_bytes(data)

    @staticmethod
    def _load_versions(session: Session, label: str) -> list[tuple[d.Version, ListVersion]]:
        out = []
        for row in session.scalars(
            select(ListVersion).where(ListVersion.week == label).order_by(ListVersion.number)
        ).all():
            data = row.canonical.encode("utf-8")
            if d.checksum(data) != row.checksum:
                raise SealedCorrupted(f"version {row.number} of {label} does not match its checksum")
            version = d.version_from_bytes(data)
            if d.version_bytes(version) != data:
                raise SealedCorrupted(f"version {row.number} of {label} is not in canonical form")
            out.append((version, row))
        return out

    def _seal_next(self, session: Session, label: str, now: datetime, decision_id: int) -> d.Version:
        """Derive and add the version that the decision just recorded (flushed) produces."""
        pool = self._pool(session, label)
        loaded = self._load_versions(session, label)
        removals = removals_of(session, label)
        version = d.next_version(pool, loaded[-1][0], removals)
        text = d.version_bytes(version)
        session.add(
            ListVersion(
                week=label,
                number=version.number,
                created_at=now,
                decision_id=decision_id,
                canonical=text.decode("utf-8"),
                checksum=d.checksum(text),
            )
        )
        session.flush()
        return version

    def _versions(self, label: str) -> list[ListVersionOut]:
        self._current_or_seal(label)
        with self.db.read() as session:
            loaded = self._load_versions(session, label)
            final = session.scalars(select(FinalList).where(FinalList.week == label)).one_or_none()
        final_number = final.version_number if final is not None else None
        out = []
        for i, (version, row) in enumerate(loaded):
            item = self._version_out(version, row.created_at, checksum=row.checksum)
            item.final = version.number == final_number
            item.latest = i == len(loaded) - 1
            out.append(item)
        return out

    @staticmethod
    def _version_out(version: d.Version, created_at: datetime, *, checksum: str) -> ListVersionOut:
        return ListVersionOut(
            week=version.week,
            number=version.number,
            checksum=checksum,
            created_at=created_at,
            final=False,
            latest=True,
            rows=[
                ListRowOut(
                    rank=r.rank,
                    citizen_id=r.citizen_id,
                    display_name=r.display_name,
                    points=r.points,
                    tier=r.tier,
                    prize=r.prize,
                )
                for r in version.rows
            ],
            changes=[
                ChangeOut(kind=c.kind, display_name=c.display_name, before=c.before, after=c.after, reason=c.reason)
                for c in version.changes
            ],
        )

    def _objection_out(self, session: Session, o: Objection) -> ObjectionOut:
        decision = session.get(Decision, o.decision_id) if o.decision_id is not None else None
        produced = None
        if decision is not None and o.status == UPHELD:
            produced = session.scalar(select(ListVersion.number).where(ListVersion.decision_id == decision.id))
        return ObjectionOut(
            id=o.id,
            week=o.week,
            rank=o.rank,
            version_number=o.version_number,
            target_name=o.target_name,
            reason=o.reason,
            channel=o.channel,
            status=o.status,
            status_label=OBJECTION_LABELS[o.status],
            created_at=o.created_at,
            decided_at=o.decided_at,
            decision_reason=decision.reason if decision is not None and o.status != MOOT else None,
            action=decision.action if decision is not None else None,
            produced_version=produced,
        )

    # ------------------------------------------------------------ internals: finalize

    def _finalize(self, label: str) -> FinalizeOut:
        with self.db.read() as session:
            w = self._week(session, label)
            open_count = session.scalar(
                select(func.count()).select_from(Objection).where(Objection.week == label, Objection.status == OPEN)
            )
        if w.final is None:
            waiting = None
            if w.deadline is None:
                waiting = NOT_PUBLISHED
            elif self.clock.now() < w.deadline:
                waiting = "window_open"
            elif open_count:
                waiting = "open_objections"
            if waiting is not None:
                return FinalizeOut(
                    week=label,
                    finalized=False,
                    version=None,
                    claims=0,
                    announced=False,
                    publication_state=None,
                    notified=False,
                    waiting_for=waiting,
                )
            self._make_final(label)
        self._current_or_seal(label)
        with self.db.read() as session:
            final = session.scalars(select(FinalList).where(FinalList.week == label)).one()
            claims = session.scalars(select(Claim).where(Claim.week == label).order_by(Claim.rank)).all()
            version = dict((v.number, v) for v, _ in self._load_versions(session, label))[final.version_number]
            snapshot = final_snapshot(version, self._pool(session, label).participants)
            remarks = {
                c.citizen_id: f"领奖码：{display_code(c.code)}，请于{self._local_date(c.expires_at)}前凭码领取奖励。"
                for c in claims
            }
        existing = self.publishing.get(label, FINAL)
        pub_state = existing.state if existing is not None else None
        if final.announced_at is not None and final.notified_at is not None:
            pass  # done (or a week announced before the review existed: migration 0006 marks those final)
        elif self.settings.objection_window_days > 0 or existing is not None:
            pub = self.publishing.publish_final(label, snapshot, remarks)
            pub_state = pub.state
            if pub.state == PUBLISHED:
                self._stamp(label, announced_at=final.announced_at or pub.published_at or self.clock.now())
                self._stamp(label, notified_at=final.notified_at or self.clock.now())
        else:
            # no 公示: the first publication announced the list; the winners still get their claim codes
            if final.announced_at is None:
                self._stamp(label, announced_at=w.published_at or self.clock.now())
            self.publishing.notify_final(label, snapshot, remarks)
            if final.notified_at is None:
                self._stamp(label, notified_at=self.clock.now())
        with self.db.read() as session:
            final = session.scalars(select(FinalList).where(FinalList.week == label)).one()
        return FinalizeOut(
            week=label,
            finalized=True,
            version=final.version_number,
            claims=len(claims),
            announced=final.announced_at is not None,
            publication_state=pub_state,
            notified=final.notified_at is not None,
            waiting_for=None,
        )

    def _make_final(self, label: str) -> None:
        """Record the final list and its claim codes in one transaction (once; a concurrent writer's record wins)."""
        self._current_or_seal(label)
        now = self.clock.now()
        try:
            with self.db.uow() as uow:
                s = uow.session
                version, _ = self._load_versions(s, label)[-1]
                expires = now + timedelta(days=self.settings.claim_days)
                s.add(
                    FinalList(
                        week=label,
                        version_number=version.number,
                        checksum=d.checksum(d.version_bytes(version)),
                        finalized_at=now,
                        claim_deadline=expires,
                        announced_at=None,
                        notified_at=None,
                    )
                )
                for row in version.rows:
                    s.add(
                        Claim(
                            week=label,
                            citizen_id=row.citizen_id,
                            code=new_code(),
                            rank=row.rank,
                            tier=row.tier,
                            prize=row.prize,
                            created_at=now,
                            expires_at=expires,
                        )
                    )
                cases.audit(
                    s,
                    now,
                    "system",
                    "week_finalized",
                    f"week:{label}",
                    f"version {version.number}, {len(version.rows)} winners",
                )
        except IntegrityError:
            pass  # finalized concurrently: the stored record counts
        log.info("week %s is final", label)

    def _stamp(self, label: str, **fields: datetime) -> None:
        with self.db.uow() as uow:
            uow.session.execute(
                update(FinalList)
                .where(FinalList.week == label)
                .values(**fields)
                .execution_options(synchronize_session=False)
            )

    def _local_date(self, instant: datetime) -> str:
        return instant.astimezone(self.settings.tz).strftime("%Y年%m月%d日")

    # ------------------------------------------------------------ internals: claims

    @staticmethod
    def _claim_state(session: Session, c: Claim, now: datetime) -> str:
        if c.redeemed_at is not None:
            return CLAIM_REDEEMED
        citizen = session.get(Citizen, c.citizen_id)
        if citizen is None or citizen.banned:
            return CLAIM_REVOKED
        voided = session.scalars(
            select(LedgerEntry.id)
            .join(Case, Case.id == LedgerEntry.case_pk)
            .where(
                LedgerEntry.citizen_id == c.citizen_id,
                LedgerEntry.week == c.week,
                LedgerEntry.points > 0,
                Case.status == lc.VOIDED,
            )
        ).first()
        if voided is not None:
            return CLAIM_REVOKED
        if now >= c.expires_at:
            return CLAIM_EXPIRED
        return CLAIM_PENDING

    def _claim_out(self, session: Session, c: Claim) -> ClaimOut:
        state = self._claim_state(session, c, self.clock.now())
        citizen = session.get(Citizen, c.citizen_id)
        return ClaimOut(
            week=c.week,
            citizen_id=c.citizen_id,
            display_name=mask_name(citizen.name if citizen else None),
            code=display_code(c.code),
            rank=c.rank,
            tier=c.tier,
            prize=c.prize,
            status=state,
            status_label=CLAIM_LABELS[state],
            expires_at=c.expires_at,
            redeemed_at=c.redeemed_at,
            redeemed_by=c.redeemed_by,
        )


# ------------------------------------------------------------ module helpers


def build_pool(snapshot: Snapshot, ranked: Sequence[Standing], names: Mapping[int, str | None]) -> d.Pool:
    """The candidate pool: the snapshot's winners in order, then up to `places` further eligible citizens of the
    week's ledger (`ranked`: eligible standings, best first, as leaderboard.ranking.rank returns them)."""
    winners = [d.Candidate(r.citizen_id, r.display_name, r.points, r.reached_at) for r in snapshot.rows]
    taken = {r.citizen_id for r in snapshot.rows}
    places = max((t.last for t in snapshot.tiers), default=0)
    reserve = [
        d.Candidate(s.citizen_id, mask_name(names.get(s.citizen_id)), s.points, s.reached_at)
        for s in ranked
        if s.citizen_id not in taken
    ][: max(places, RESERVE_MIN)]
    return d.Pool(snapshot.week, snapshot.tiers, snapshot.participants, tuple(winners + reserve))


def removals_of(session: Session, label: str) -> list[d.Removal]:
    """The week's upheld decisions in the order they were made, as removals."""
    return [
        d.Removal(dec.id, dec.target_citizen_id, dec.action or DISQUALIFY)
        for dec in session.scalars(
            select(Decision).where(Decision.week == label, Decision.outcome == UPHELD).order_by(Decision.id)
        ).all()
    ]


def final_snapshot(version: d.Version, participants: int) -> Snapshot:
    """A final version in the snapshot's shape, for the publication renderer and the winner notices."""
    return Snapshot(
        week=version.week,
        tiers=version.tiers,
        participants=participants,
        rows=tuple(
            SnapshotRow(r.rank, r.citizen_id, r.display_name, r.points, r.reached_at, r.tier, r.prize)
            for r in version.rows
        ),
    )


def _csv(table: list[list[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(PAYOUT_HEADER)
    for row in table:
        writer.writerow([_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Chinese correctly


def _cell(value: object) -> object:
    """Neutralize spreadsheet formulas in text cells (a name starting with = + - @ is shown, never evaluated)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


_XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(label: str, table: list[list[object]]) -> bytes:
    from openpyxl import Workbook  # imported on use: only the payout export needs openpyxl

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = label
    sheet.append(list(PAYOUT_HEADER))
    for row in table:
        sheet.append([_cell(v) for v in row])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
