"""Satisfaction ratings: the reporter rates the handling of a resolved or closed report once (ORM, service, figures).

One row per case (unique), written by `RatingService.rate` for every channel (我的, the API, a WeChat reply) after
the pure checks of `rating_rules.check_rateable`; a refused rating writes nothing. The district and department
are copied from the case when it is rated (the department whose handling was rated). A rating changes no points
unless an operator turns on `rating_award_points`: then `ScoringService.award_rating` writes one ledger line per
case (rule `rating_award`), capped per citizen per day. A 不满意 with a comment is a follow-up item for the
department in the console until staff mark it handled (audited).

`satisfaction_counts` is the one aggregate the public record (/stats) reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from rewards.cases import service as cases
from rewards.cases.models import Case, Citizen
from rewards.clock import Clock
from rewards.db import Base, Database, UTCDateTime, insert_or_ignore
from rewards.engagement import rating_rules as rules
from rewards.errors import Conflict, DomainError, NotFound
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import NoAward
from rewards.scoring.service import ScoringService

FOLLOWUP_HANDLED = "rating:followup-handled"  # audit action


class CaseRating(Base):
    """A reporter's rating of how their report was handled; one per case, never changed by the citizen."""

    __tablename__ = "case_ratings"
    __table_args__ = (
        UniqueConstraint("case_pk", name="uq_case_ratings_case_pk"),
        Index("ix_case_ratings_rated_at", "rated_at"),
        Index("ix_case_ratings_level_handled_at", "level", "handled_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))  # satisfied | basic | unsatisfied
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))  # me | api | wechat
    district: Mapped[str | None] = mapped_column(String(64))  # the case's, when rated
    department: Mapped[str | None] = mapped_column(String(128))  # the case's, when rated
    case_status: Mapped[str] = mapped_column(String(16))  # resolved | closed, when rated
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # follow-up marked handled by staff
    handled_by: Mapped[str | None] = mapped_column(String(128))
    handled_note: Mapped[str | None] = mapped_column(Text)


# --- figures ------------------------------------------------------------------------------------------------


class SatisfactionCounts(NamedTuple):
    """Ratings per level (unpacks as (satisfied, basic, unsatisfied))."""

    satisfied: int
    basic: int
    unsatisfied: int

    @property
    def total(self) -> int:
        """How many ratings."""
        return self.satisfied + self.basic + self.unsatisfied

    @property
    def rate(self) -> float | None:
        """(满意 + 基本满意) / all ratings, None when nobody rated."""
        return rules.satisfaction_rate(self.satisfied, self.basic, self.unsatisfied)


def _counts(rows: Iterable[tuple[str, int]]) -> SatisfactionCounts:
    found = dict.fromkeys(rules.LEVELS, 0)
    for level, n in rows:
        found[level] = found.get(level, 0) + int(n)
    return SatisfactionCounts(found[rules.SATISFIED], found[rules.BASIC], found[rules.UNSATISFIED])


def satisfaction_counts(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    district: str | None = None,
    department: str | None = None,
) -> SatisfactionCounts:
    """Ratings given in [since, until), optionally of one district's or one department's cases (SQL aggregate)."""
    stmt = (
        select(CaseRating.level, func.count(CaseRating.id))
        .where(CaseRating.rated_at >= since, CaseRating.rated_at < until)
        .group_by(CaseRating.level)
    )
    if district is not None:
        stmt = stmt.where(CaseRating.district == district)
    if department is not None:
        stmt = stmt.where(CaseRating.department == department)
    return _counts((level, n) for level, n in session.execute(stmt))


def satisfaction_by(
    session: Session, *, since: datetime, until: datetime, by: str
) -> dict[str | None, SatisfactionCounts]:
    """Ratings given in [since, until) per district (by="district") or per department (by="department")."""
    column = {"district": CaseRating.district, "department": CaseRating.department}[by]
    stmt = (
        select(column, CaseRating.level, func.count(CaseRating.id))
        .where(CaseRating.rated_at >= since, CaseRating.rated_at < until)
        .group_by(column, CaseRating.level)
    )
    grouped: dict[str | None, list[tuple[str, int]]] = {}
    for key, level, n in session.execute(stmt):
        grouped.setdefault(key, []).append((level, n))
    return {key: _counts(rows) for key, rows in grouped.items()}


# --- the service --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingResult:
    """What a citizen is told after rating."""

    case_id: str
    level: str
    label: str
    comment: str | None
    rated_at: datetime
    followup: bool
    points: int  # awarded for rating (0 when the award is off or capped)
    award_note: str | None  # why no points, when the award is on but none were given


@dataclass(frozen=True)
class RatingState:
    """How one of a citizen's reports stands for rating (for 我的)."""

    rated: CaseRating | None
    open_until: datetime | None  # set while the case may be rated


class RatingService:
    """Records ratings (every channel), answers what may still be rated, and closes follow-ups."""

    def __init__(self, db: Database, clock: Clock, scoring: ScoringService, window_days: int, comment_max: int) -> None:
        self.db = db
        self.clock = clock
        self.scoring = scoring
        self.window_days = window_days
        self.comment_max = comment_max

    def rate(self, openid: str, case_id: str, level: str, comment: str | None, channel: str) -> RatingResult:
        """Rate a case for its reporter; a DomainError with the reason (nothing written) when it may not be."""
        code = rules.parse_level(level)
        text = rules.clean_comment(comment, self.comment_max)
        if channel not in rules.CHANNELS:
            raise ValueError(f"unknown rating channel {channel!r}")
        with self.db.uow() as uow:
            session = uow.session
            case = cases.find_case(session, case_id)
            if case is None:
                raise NotFound(f"unknown case {case_id!r}", code="unknown_case")
            # the citizen row is locked: one citizen's ratings (and their daily award cap) are decided in turn
            citizen = session.scalar(select(Citizen).where(Citizen.openid == openid).with_for_update())
            own = citizen is not None and case.reporter_id == citizen.id
            already = own and session.scalar(select(CaseRating.id).where(CaseRating.case_pk == case.id)) is not None
            now = self.clock.now()
            rules.check_rateable(
                own=own,
                already_rated=already,
                status=case.status,
                status_at=case.status_at,
                now=now,
                window_days=self.window_days,
            )
            assert citizen is not None  # own implies a citizen
            values = {
                "case_pk": case.id,
                "citizen_id": citizen.id,
                "level": code,
                "comment": text,
                "channel": channel,
                "district": case.district,
                "department": case.department,
                "case_status": case.status,
                "rated_at": now,
            }
            if insert_or_ignore(session, CaseRating, values, ("case_pk",)) is None:  # a concurrent rating won
                raise Conflict("this case has already been rated; a rating is given once", code="already_rated")
            award = self.scoring.award_rating(uow, case, citizen.id)
        points = award.points if isinstance(award, LedgerEntry) else 0
        note = award.reason if isinstance(award, NoAward) and self.scoring.rules.rating_award_points > 0 else None
        return RatingResult(
            case_id=case_id,
            level=code,
            label=rules.LEVEL_LABELS[code],
            comment=text,
            rated_at=now,
            followup=rules.is_followup(code, text),
            points=points,
            award_note=note,
        )

    def reply_to_message(self, openid: str, text: str) -> str | None:
        """The WeChat reply to "评价 <案件号> <满意|基本满意|不满意> [意见]"; None when the text is no rating.

        WeChat retries a message it got no answer to: the same rating again is answered with the same thanks.
        """
        try:
            command = rules.parse_wechat_rating(text, self.comment_max)
        except DomainError as exc:
            return rules.refusal_text(exc.code, self.comment_max)
        if command is None:
            return None
        try:
            result = self.rate(openid, command.case_id, command.level, command.comment, rules.CHANNEL_WECHAT)
        except DomainError as exc:
            if exc.code == "already_rated" and self._same_rating(openid, command):
                return rules.thanks_text(
                    command.case_id, command.level, rules.is_followup(command.level, command.comment), 0
                )
            return "评价未提交：" + rules.refusal_text(exc.code, self.comment_max)
        return rules.thanks_text(result.case_id, result.level, result.followup, result.points)

    def _same_rating(self, openid: str, command: rules.RatingCommand) -> bool:
        with self.db.read() as session:
            found = session.execute(
                select(CaseRating.level, CaseRating.comment, CaseRating.channel)
                .join(Case, Case.id == CaseRating.case_pk)
                .join(Citizen, Citizen.id == CaseRating.citizen_id)
                .where(Case.case_id == command.case_id, Citizen.openid == openid)
            ).one_or_none()
        return found is not None and tuple(found) == (command.level, command.comment, rules.CHANNEL_WECHAT)

    def states(self, session: Session, citizen_id: int, case_ids: Sequence[str]) -> dict[str, RatingState]:
        """For each of a citizen's own cases (by case id): its rating, or until when it may still be rated."""
        if not case_ids:
            return {}
        reports = session.execute(
            select(Case.id, Case.case_id, Case.status, Case.status_at).where(
                Case.case_id.in_(list(case_ids)), Case.reporter_id == citizen_id
            )
        ).all()
        pks = [pk for pk, _, _, _ in reports]
        rated = {r.case_pk: r for r in session.scalars(select(CaseRating).where(CaseRating.case_pk.in_(pks)))}
        now = self.clock.now()
        found: dict[str, RatingState] = {}
        for pk, case_id, status, status_at in reports:
            mine = rated.get(pk)
            open_ = mine is None and rules.rateable_now(status, status_at, now, self.window_days)
            until = rules.window_closes(status_at, self.window_days) if open_ else None
            found[case_id] = RatingState(mine, until)
        return found

    def overview(self, session: Session, citizen_id: int, limit: int = 100) -> tuple[list[Case], list[CaseRating]]:
        """A citizen's reports that may be rated now (soonest closing first) and their ratings (newest first)."""
        now = self.clock.now()
        opened_after = now - timedelta(days=self.window_days)
        rated_pks = select(CaseRating.case_pk).where(CaseRating.citizen_id == citizen_id)
        open_cases = session.scalars(
            select(Case)
            .where(
                Case.reporter_id == citizen_id,
                Case.status.in_(sorted(rules.RATEABLE_STATES)),
                Case.status_at > opened_after,
                Case.status_at <= now,
                Case.id.not_in(rated_pks),
            )
            .order_by(Case.status_at, Case.id)
            .limit(limit)
        ).all()
        given = session.scalars(
            select(CaseRating)
            .where(CaseRating.citizen_id == citizen_id)
            .order_by(CaseRating.rated_at.desc(), CaseRating.id.desc())
            .limit(limit)
        ).all()
        return list(open_cases), list(given)

    def mark_handled(self, rating_id: int, who: str, note: str | None) -> CaseRating:
        """Staff mark a follow-up item handled (audited); 404 unknown, 409 not a follow-up or already handled."""
        with self.db.uow() as uow:
            session = uow.session
            rating = session.get(CaseRating, rating_id, with_for_update=True)
            if rating is None or not rules.is_followup(rating.level, rating.comment):
                raise NotFound(f"no follow-up item #{rating_id}", code="unknown_followup")
            if rating.handled_at is not None:
                raise Conflict(f"follow-up item #{rating_id} is already handled", code="already_handled")
            text = rules.clean_comment(note, 500)
            now = self.clock.now()
            rating.handled_at, rating.handled_by, rating.handled_note = now, who, text
            case_id = session.scalar(select(Case.case_id).where(Case.id == rating.case_pk)) or str(rating.case_pk)
            cases.audit(session, now, who, FOLLOWUP_HANDLED, case_id, text)
            session.flush()
            session.expunge(rating)
        return rating


def followups(
    session: Session, *, handled: bool, department: str | None = None, limit: int = 100
) -> list[tuple[CaseRating, Case]]:
    """Follow-up items (不满意 with a comment), open or handled, oldest open first / newest handled first."""
    stmt = (
        select(CaseRating, Case)
        .join(Case, Case.id == CaseRating.case_pk)
        .where(CaseRating.level == rules.UNSATISFIED, CaseRating.comment.is_not(None))
    )
    if handled:
        stmt = stmt.where(CaseRating.handled_at.is_not(None)).order_by(
            CaseRating.handled_at.desc(), CaseRating.id.desc()
        )
    else:
        stmt = stmt.where(CaseRating.handled_at.is_(None)).order_by(CaseRating.rated_at, CaseRating.id)
    if department is not None:
        stmt = stmt.where(CaseRating.department == department)
    return [(r, c) for r, c in session.execute(stmt.limit(limit))]
