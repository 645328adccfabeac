"""Optional winner notices by template message: one per (week, kind, citizen), each with its own idempotency key.

Kind `notice` tells the winners of the week's first announcement; kind `final` tells the final list's winners
(定榜), with a per-winner remark (their claim code) that rewards.review passes in.

The key is WeChat's `client_msg_id` (WeChat drops a repeat for the same openid + key within 10 minutes), and
our record says whether the notice went out, so a resumed run neither skips nor repeats a recipient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.cases.models import Citizen
from rewards.clock import Clock, IsoWeek
from rewards.db import Database
from rewards.leaderboard.snapshot import Snapshot, SnapshotRow
from rewards.logs import get_logger
from rewards.publish.models import WinnerNotice
from rewards.publish.port import FINAL, NOTICE, Publisher, PublishError

log = get_logger("publish.notify")
T = TypeVar("T")
Caller = Callable[..., Any]
SENT, NOTICE_FAILED, NOTICE_PENDING = "sent", "failed", "pending"


def client_msg_id(week: str, citizen_id: int, kind: str = NOTICE) -> str:
    """The per-recipient idempotency key: the same for every attempt at this week's notice to this citizen."""
    scope = "winner" if kind == NOTICE else f"winner-{kind}"
    return hashlib.sha256(f"rewards:{scope}:{week}:{citizen_id}".encode()).hexdigest()[:32]


def notice_data(row: SnapshotRow, week: str) -> dict[str, Any]:
    """Template data of a winner notice (Simplified Chinese)."""
    return {
        "first": {"value": f"恭喜您入围{IsoWeek.parse(week).label()}随手拍周榜获奖名单！"},
        "keyword1": {"value": f"第{row.rank}名（{row.points}分）"},
        "keyword2": {"value": f"{row.tier} {row.prize}元"},
        # the notice list may still change after objections: the prize is promised by the 定榜 notice, not this one
        "remark": {"value": "名单定榜后将另行发送领奖码，请留意本公众号消息。感谢您用随手拍守护城市！"},
    }


def final_notice_data(row: SnapshotRow, week: str, remark: str) -> dict[str, Any]:
    """Template data of a final-list (定榜) winner notice, with the winner's remark (their claim code)."""
    return {
        "first": {"value": f"{IsoWeek.parse(week).label()}随手拍周榜已定榜，恭喜您获奖！"},
        "keyword1": {"value": f"第{row.rank}名（{row.points}分）"},
        "keyword2": {"value": f"{row.tier} {row.prize}元"},
        "remark": {"value": remark or "感谢您用随手拍守护城市！"},
    }


class WinnerNotices:
    """Sends each winner of a published week their template message once (one record per week and citizen)."""

    def __init__(self, db: Database, clock: Clock, publisher: Publisher, template_id: str, kind: str = NOTICE) -> None:
        self.db = db
        self.clock = clock
        self.publisher = publisher
        self.template_id = template_id
        self.kind = kind

    def _notice(self, week: str, citizen_id: int) -> WinnerNotice:
        with self.db.read() as session:
            found = session.scalars(
                select(WinnerNotice).where(
                    WinnerNotice.week == week, WinnerNotice.kind == self.kind, WinnerNotice.citizen_id == citizen_id
                )
            ).one_or_none()
        if found is not None:
            return found
        now = self.clock.now()
        try:
            with self.db.uow() as uow:
                uow.session.add(
                    WinnerNotice(
                        week=week,
                        kind=self.kind,
                        citizen_id=citizen_id,
                        client_msg_id=client_msg_id(week, citizen_id, self.kind),
                        state=NOTICE_PENDING,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # created concurrently
        return self._notice(week, citizen_id)

    def _mark(self, notice_id: int, **fields: Any) -> None:
        with self.db.uow() as uow:
            notice = uow.session.get(WinnerNotice, notice_id)
            assert notice is not None
            for name, value in fields.items():
                setattr(notice, name, value)
            notice.updated_at = self.clock.now()

    def send(self, snapshot: Snapshot, url: str, call: Caller, remarks: Mapping[int, str] | None = None) -> int:
        """Send each winner of the week their notice once; return how many were sent in this run.

        `remarks` (kind final): the per-citizen remark line, e.g. the claim code."""
        week = snapshot.week
        with self.db.read() as session:
            ids = [r.citizen_id for r in snapshot.rows]
            openids = dict(session.execute(select(Citizen.id, Citizen.openid).where(Citizen.id.in_(ids))).all())
        sent = 0
        publisher, template_id = self.publisher, self.template_id
        for row in snapshot.rows:
            notice = self._notice(week, row.citizen_id)
            if notice.state != NOTICE_PENDING:
                continue
            if self.kind == FINAL:
                data = final_notice_data(row, week, (remarks or {}).get(row.citizen_id, ""))
            else:
                data = notice_data(row, week)
            openid, key = openids[row.citizen_id], notice.client_msg_id
            try:
                msgid = call(
                    "message/template/send",
                    lambda o=openid, k=key, d=data: publisher.send_template(o, template_id, d, url, k),
                )
            except PublishError as exc:  # one recipient's failure (e.g. 43004 not following) is recorded, not fatal
                log.warning("winner notice %s/%s failed: %s", week, row.citizen_id, exc)
                self._mark(notice.id, state=NOTICE_FAILED, error_code=exc.code, error_message=exc.message)
                continue
            self._mark(notice.id, state=SENT, msgid=msgid)
            sent += 1
        return sent
