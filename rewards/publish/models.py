"""Publication records: one per week and kind, moving pending -> drafted -> submitted -> published | failed.

Kinds: `notice` is the week's first announcement (the 公示 list, as closed); `final` is the second one, the final
list (定榜) after the objection window (rewards.review drives it with the final version's rows).

Every id WeChat returns gets its own column and is committed before the next call, so a run that dies at any
point resumes from what is stored. `draft_requested_at` / `submit_requested_at` mark a call that may have
reached WeChat without its answer reaching us: the resume then looks the draft / post up before calling again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rewards.db import Base, UTCDateTime
from rewards.publish.port import FINAL, NOTICE

PENDING, DRAFTED, SUBMITTED, PUBLISHED, FAILED = "pending", "drafted", "submitted", "published", "failed"
STATES = (PENDING, DRAFTED, SUBMITTED, PUBLISHED, FAILED)
UNFINISHED = (PENDING, DRAFTED, SUBMITTED)
KINDS = (NOTICE, FINAL)
STATE_LABELS = {
    PENDING: "等待发布",
    DRAFTED: "已建草稿，等待提交",
    SUBMITTED: "已提交，等待微信发布",
    PUBLISHED: "已发布",
    FAILED: "发布失败",
}


class Publication(Base):
    """One announcement (kind notice or final) of one closed week on the official account (or the outbox)."""

    __tablename__ = "publications"
    __table_args__ = (
        CheckConstraint("state IN ('pending','drafted','submitted','published','failed')", name="state"),
        UniqueConstraint("week", "kind", name="uq_publications_week_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8), default=NOTICE, server_default=NOTICE)  # notice | final
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("weekly_snapshots.id"))
    channel: Mapped[str] = mapped_column(String(16))  # wechat | outbox
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    # two writers of one record: the stale one fails loudly
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs of the state machine
    content_image_url: Mapped[str | None] = mapped_column(Text)  # media/uploadimg
    thumb_media_id: Mapped[str | None] = mapped_column(String(128))  # material/add_material (thumb)
    title: Mapped[str | None] = mapped_column(String(64))  # the article as sent: rendered once, then reused
    digest: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(32))
    content: Mapped[str | None] = mapped_column(Text)
    content_source_url: Mapped[str | None] = mapped_column(Text)
    draft_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draft_media_id: Mapped[str | None] = mapped_column(String(128))  # draft/add
    submit_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_id: Mapped[str | None] = mapped_column(String(128))  # freepublish/submit
    article_id: Mapped[str | None] = mapped_column(String(128))  # freepublish/get
    article_url: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WinnerNotice(Base):
    """A template message telling one winner about their prize; one per (week, kind, citizen), sent at most once."""

    __tablename__ = "winner_notices"
    __table_args__ = (UniqueConstraint("week", "kind", "citizen_id", name="uq_winner_notices_week_kind_citizen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8), default=NOTICE, server_default=NOTICE)  # notice | final
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    client_msg_id: Mapped[str] = mapped_column(String(64), unique=True)  # WeChat's per-recipient dedup key
    state: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    msgid: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
