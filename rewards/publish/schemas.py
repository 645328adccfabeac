"""API shapes of the publish domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from rewards.publish.models import Publication


class PublicationOut(BaseModel):
    """A week's publication record as the console sees it (ids WeChat returned, state, last error)."""

    week: str
    channel: str
    state: str
    attempts: int
    thumb_media_id: str | None
    draft_media_id: str | None
    publish_id: str | None
    article_id: str | None
    article_url: str | None
    error_code: int | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @classmethod
    def of(cls, pub: Publication) -> PublicationOut:
        """Build from the ORM record."""
        return cls.model_validate(pub, from_attributes=True)
