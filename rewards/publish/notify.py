"""Optional winner notices by template message: one per (week, citizen), each with its own idempotency key.

The key is WeChat's `client_msg_id` (WeChat drops a repeat for the same openid + key within 10 minutes), and
our record says whether the notice went out, so a resumed run neither skips nor repeats a recipient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rewards.leaderboard.snapshot import SnapshotRow, load_closed_week
from rewards.logs import get_logger
from rewards.publish.models import Publication, WinnerNotice
from rewards.publish.port import Publisher, PublishError
from rewards.publish.render import leaderboard_url, week_label

if TYPE_CHECKING:
    from rewards.bootstrap import Container

log = get_logger("publish.notify")
T = TypeVar("T")
Caller = Callable[..., Any]
SENT, NOTICE_FAILED, NOTICE_PENDING = "sent", "failed", "pending"


def client_msg_id(week: str, citizen_id: int) -> str:
    """The per-recipient idempotency key: the same for every attempt at this week's notice to this citizen."""
    return hashlib.sha256(f"rewards:winner:{week}:{citizen_id}".encode()).hexdigest()[:32]


def notice_data(row: SnapshotRow, week: str) -> dict[str, Any]:
    """Template data of a winner notice (Simplified Chinese)."""
    return {
        "first": {"value": f"恭喜您在{week_label(week)}随手拍周榜中获奖！"},
        "keyword1": {"value": f"第{row.rank}名（{row.points}分）"},
        "keyword2": {"value": f"{row.tier} {row.prize}元"},
        "remark": {"value": "感谢您用随手拍守护城市，领奖方式将另行通知。"},
    }


def _notice(container: Container, week: str, citizen_id: int) -> WinnerNotice:
    with container.read() as session:
        found = session.scalars(
            select(WinnerNotice).where(WinnerNotice.week == week, WinnerNotice.citizen_id == citizen_id)
        ).one_or_none()
    if found is not None:
        return found
    now = container.clock.now()
    try:
        with container.uow() as uow:
            uow.session.add(
                WinnerNotice(
                    week=week,
                    citizen_id=citizen_id,
                    client_msg_id=client_msg_id(week, citizen_id),
                    state=NOTICE_PENDING,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        pass  # created concurrently
    return _notice(container, week, citizen_id)


def _mark(container: Container, notice_id: int, **fields: Any) -> None:
    with container.uow() as uow:
        notice = uow.session.get(WinnerNotice, notice_id)
        assert notice is not None
        for name, value in fields.items():
            setattr(notice, name, value)
        notice.updated_at = container.clock.now()


def notify_winners(container: Container, publisher: Publisher, pub: Publication, call: Caller) -> int:
    """Send each winner of a published week their notice once; return how many were sent in this run."""
    from rewards.cases.models import Citizen

    template_id = container.settings.wechat_winner_template_id
    assert template_id
    with container.read() as session:
        closed = load_closed_week(session, pub.week)
        if closed is None:
            return 0
        ids = [r.citizen_id for r in closed.snapshot.rows]
        openids = dict(session.execute(select(Citizen.id, Citizen.openid).where(Citizen.id.in_(ids))).all())
    url = leaderboard_url(container.settings, pub.week)
    sent = 0
    for row in closed.snapshot.rows:
        notice = _notice(container, pub.week, row.citizen_id)
        if notice.state != NOTICE_PENDING:
            continue
        openid, key, data = openids[row.citizen_id], notice.client_msg_id, notice_data(row, pub.week)
        try:
            msgid = call(
                "message/template/send",
                lambda o=openid, k=key, d=data: publisher.send_template(o, template_id, d, url, k),
            )
        except PublishError as exc:  # one recipient's failure (e.g. 43004 not following) is recorded, not fatal
            log.warning("winner notice %s/%s failed: %s", pub.week, row.citizen_id, exc)
            _mark(container, notice.id, state=NOTICE_FAILED, error_code=exc.code, error_message=exc.message)
            continue
        _mark(container, notice.id, state=SENT, msgid=msgid)
        sent += 1
    return sent
