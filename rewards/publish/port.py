"""The publisher port: what the exactly-once state machine needs from WeChat (or the outbox), and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Kind = Literal["token", "transient", "ambiguous", "terminal"]
TOKEN: Kind = "token"  # the access token is expired/invalid: refresh once, then retry
TRANSIENT: Kind = "transient"  # nothing happened on WeChat's side: retry with backoff, a bounded number of times
AMBIGUOUS: Kind = "ambiguous"  # the request may have been carried out (dropped reply, timeout): look before retrying
TERMINAL: Kind = "terminal"  # retrying cannot help (no permission, draft check failed, bad request)

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
TRANSIENT_ERRCODES = frozenset({-1, 45009})  # system busy, API rate limit reached

PUBLISHING, PUBLISHED, PUBLISH_FAILED = "publishing", "published", "failed"
NOTICE, FINAL = "notice", "final"  # the week's first announcement (公示 list) and its final list (定榜)
PUBLISH_STATUS_TEXT = {
    2: "原创声明失败",
    3: "常规失败",
    4: "平台审核不通过",
    5: "成功后用户删除所有文章",
    6: "成功后系统封禁所有文章",
}


def classify(errcode: int | None, http_status: int | None = None) -> Kind:
    """Sort a WeChat errcode (or an HTTP status when there was no JSON answer) into what to do about it."""
    if errcode is None:
        if http_status is None or http_status >= 500 or http_status == 429:
            return TRANSIENT
        return TERMINAL
    if errcode in TOKEN_ERRCODES:
        return TOKEN
    if errcode in TRANSIENT_ERRCODES:
        return TRANSIENT
    return TERMINAL


@dataclass(frozen=True)
class Article:
    """One WeChat news article as sent to draft/add (and written to the outbox)."""

    week: str
    title: str
    author: str
    digest: str
    content: str
    content_source_url: str
    kind: str = NOTICE  # notice (the week's first announcement) | final (the 定榜 announcement)


class PublishError(Exception):
    """A failed call to the publishing channel, with WeChat's errcode when it gave one."""

    def __init__(self, kind: Kind, code: int | None, message: str) -> None:
        super().__init__(f"{message} (errcode {code})" if code is not None else message)
        self.kind = kind
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PublishStatus:
    """Where a freepublish job stands."""

    state: str  # publishing | published | failed
    article_id: str | None = None
    url: str | None = None
    code: int | None = None
    message: str = ""


class Publisher(Protocol):
    """The calls the publication state machine makes, in order; each returns the id to store."""

    channel: str  # "wechat" | "outbox"

    def upload_content_image(self, filename: str, data: bytes) -> str:
        """Upload an image for the article body (media/uploadimg); return its URL."""
        ...

    def add_cover(self, filename: str, data: bytes) -> str:
        """Add the cover as permanent material (material/add_material, thumb); return its media_id."""
        ...

    def add_draft(self, article: Article, thumb_media_id: str) -> str:
        """Create the draft (draft/add); return its media_id."""
        ...

    def find_draft(self, article: Article) -> str | None:
        """Find a draft of this article created earlier (draft/batchget); return its media_id or None."""
        ...

    def draft_exists(self, media_id: str) -> bool:
        """Whether the draft is still in the draft box (it leaves it once published)."""
        ...

    def submit(self, media_id: str) -> str:
        """Submit the draft for publication (freepublish/submit); return the publish_id."""
        ...

    def publish_status(self, publish_id: str) -> PublishStatus:
        """Poll a publication job (freepublish/get)."""
        ...

    def find_published(self, article: Article) -> PublishStatus | None:
        """Find this article among published posts (freepublish/batchget); None when it is not there."""
        ...

    def refresh_token(self) -> None:
        """Replace the access token after WeChat refused it (one process refreshes; others reuse its token)."""
        ...

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str, client_msg_id: str) -> str:
        """Send a template message (message/template/send) deduplicated by client_msg_id; return the msgid."""
        ...
