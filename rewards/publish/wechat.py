"""The publisher port on the WeChat official-account API through wechatpy, plus the choice of publisher.

wechatpy's own token retry is off (a persistent 40001 would recurse without bound): the state machine in
service.py decides about retries. The access token lives in Redis and one process at a time refreshes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import redis
import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from rewards.config import Settings
from rewards.locks import Lease
from rewards.logs import install_redaction
from rewards.publish.outbox import OutboxPublisher
from rewards.publish.port import (
    AMBIGUOUS,
    PUBLISH_FAILED,
    PUBLISH_STATUS_TEXT,
    PUBLISHED,
    PUBLISHING,
    TERMINAL,
    TRANSIENT,
    Article,
    Publisher,
    PublishError,
    PublishStatus,
    classify,
)

T = TypeVar("T")
INVALID_MEDIA_ID = 40007
BATCH_PAGES = 5  # reconciliation looks at the 100 newest drafts / posts


class TokenClient(WeChatClient):  # type: ignore[misc]  # wechatpy ships no type information
    """wechatpy client on a configurable base URL, with the token cached in Redis and refreshed under a lock."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        prefix = f"{settings.leaderboard_key_prefix}:wechat"
        super().__init__(
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value() if settings.wechat_app_secret else None,
            session=RedisStorage(client, prefix=prefix),
            timeout=settings.wechat_timeout_seconds,
            auto_retry=False,
        )
        self.API_BASE_URL = settings.wechat_api_base.rstrip("/") + "/"
        self._redis = client
        self._lock_key = f"{prefix}:{settings.wechat_app_id}:token-lock"
        self._wait_seconds = max(2 * settings.wechat_timeout_seconds, 5.0)
        self._used = threading.local()

    @property
    def access_token(self) -> str:
        """The cached token (fetched when missing or about to expire); remembered as the one this call used."""
        self._used.judged = self.session.get(self.access_token_key)  # what wechatpy is about to find stale (or not)
        token: str = super().access_token
        self._used.token = token
        return token

    def fetch_access_token(self) -> None:
        """Called by wechatpy when the token it read is missing or about to expire: replace that one only (a token
        another process stored since then is fresh, so re-reading the cache here would fetch a second one)."""
        self.refresh(stale=getattr(self._used, "judged", None))

    def refresh_after_rejection(self) -> None:
        """Replace the token WeChat just refused (unless another process already did)."""
        self.refresh(stale=getattr(self._used, "token", None) or self.session.get(self.access_token_key))

    def refresh(self, stale: str | None) -> None:
        """Fetch a new token unless the cache already holds one other than `stale`; one process at a time."""
        lock = Lease(self._redis, self._lock_key, self._wait_seconds)
        deadline = time.monotonic() + self._wait_seconds
        while True:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return  # someone else refreshed meanwhile
            if lock.acquire():
                try:
                    current = self.session.get(self.access_token_key)
                    if not current or current == stale:
                        self._fetch_token()
                    return
                finally:
                    lock.release()
            if time.monotonic() > deadline:
                raise PublishError(TRANSIENT, None, "timed out waiting for another process to refresh the token")
            time.sleep(0.05)

    def _fetch_token(self) -> None:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        res = self._http.get(self.API_BASE_URL + "token", params=params, timeout=self.timeout)
        if res.status_code >= 400:
            raise PublishError(classify(None, res.status_code), None, f"token: HTTP {res.status_code}")
        result = res.json()
        if result.get("errcode"):
            code = int(result["errcode"])
            kind = TRANSIENT if classify(code) == TRANSIENT else TERMINAL  # a refused appid/secret is terminal
            raise PublishError(kind, code, f"token: {result.get('errmsg', '')}")
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self.access_token_key, result["access_token"], expires_in)
        self.expires_at = int(time.time()) + expires_in


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server (refused or timed out while connecting)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def call(what: str, fn: Callable[[], T]) -> T:
    """Run one API call and translate every failure into a PublishError of the right kind."""
    try:
        return fn()
    except PublishError:
        raise
    except WeChatClientException as exc:
        if exc.errcode is None:
            status = exc.response.status_code if exc.response is not None else None
            raise PublishError(classify(None, status), None, f"{what}: HTTP {status}") from exc
        raise PublishError(classify(int(exc.errcode)), int(exc.errcode), f"{what}: {exc.errmsg}") from exc
    except requests.RequestException as exc:
        kind = TRANSIENT if _never_sent(exc) else AMBIGUOUS
        raise PublishError(kind, None, f"{what}: {type(exc).__name__}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:  # a 200 answer without the fields WeChat documents
        raise PublishError(TRANSIENT, None, f"{what}: unexpected answer ({exc!r})") from exc


def _matches(item: dict[str, Any], article: Article) -> bool:
    return item.get("title") == article.title and item.get("content_source_url") == article.content_source_url


class WeChatPublisher:
    """The publisher port on the real (or stand-in) WeChat API."""

    channel = "wechat"

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.client = TokenClient(settings, client)

    def upload_content_image(self, filename: str, data: bytes) -> str:
        """media/uploadimg: an image URL usable inside the article body."""
        return str(call("media/uploadimg", lambda: self.client.media.upload_image((filename, data))))

    def add_cover(self, filename: str, data: bytes) -> str:
        """material/add_material type=thumb: the cover's permanent media_id."""
        return str(
            call("material/add_material", lambda: self.client.material.add("thumb", (filename, data)))["media_id"]
        )

    def add_draft(self, article: Article, thumb_media_id: str) -> str:
        """draft/add: the draft's media_id."""
        item = {
            "title": article.title,
            "author": article.author,
            "digest": article.digest,
            "content": article.content,
            "content_source_url": article.content_source_url,
            "thumb_media_id": thumb_media_id,
        }
        return str(call("draft/add", lambda: self.client.draft.add([item]))["media_id"])

    def _pages(self, what: str, fetch: Callable[[int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for page in range(BATCH_PAGES):
            result = call(what, lambda page=page: fetch(page * 20))  # type: ignore[misc]
            items = result.get("item") or []
            yield from items
            if len(items) < 20:
                return

    def find_draft(self, article: Article) -> str | None:
        """draft/batchget: the media_id of an existing draft of this article."""
        for item in self._pages("draft/batchget", lambda offset: self.client.draft.batchget(offset, 20, 1)):
            if any(_matches(n, article) for n in item.get("content", {}).get("news_item", [])):
                return str(item["media_id"])
        return None

    def draft_exists(self, media_id: str) -> bool:
        """draft/get: False once the draft has left the draft box (published or deleted)."""
        try:
            call("draft/get", lambda: self.client.draft.get(media_id))
        except PublishError as exc:
            if exc.code == INVALID_MEDIA_ID:
                return False
            raise
        return True

    def submit(self, media_id: str) -> str:
        """freepublish/submit: the publish_id."""
        return str(call("freepublish/submit", lambda: self.client.freepublish.submit(media_id))["publish_id"])

    def publish_status(self, publish_id: str) -> PublishStatus:
        """freepublish/get: publishing, published (article id and URL) or failed (publish_status and reason)."""
        result = call("freepublish/get", lambda: self.client.freepublish.get(publish_id))
        status = int(result["publish_status"])
        if status == 0:
            items = (result.get("article_detail") or {}).get("item") or [{}]
            return PublishStatus(PUBLISHED, str(result.get("article_id")), items[0].get("article_url"))
        if status == 1:
            return PublishStatus(PUBLISHING)
        text = PUBLISH_STATUS_TEXT.get(status, "发布失败")
        return PublishStatus(PUBLISH_FAILED, code=status, message=f"freepublish/get publish_status {status}: {text}")

    def find_published(self, article: Article) -> PublishStatus | None:
        """freepublish/batchget: this article among successful publications, if it is there."""
        for item in self._pages("freepublish/batchget", lambda offset: self.client.freepublish.batchget(offset, 20, 1)):
            for news in item.get("content", {}).get("news_item", []):
                if _matches(news, article) and not news.get("is_deleted"):
                    return PublishStatus(PUBLISHED, str(item["article_id"]), news.get("url"))
        return None

    def refresh_token(self) -> None:
        """Replace a token WeChat refused."""
        call("token", self.client.refresh_after_rejection)

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str, client_msg_id: str) -> str:
        """message/template/send with WeChat's per-recipient dedup key (client_msg_id)."""
        body = {"touser": openid, "template_id": template_id, "url": url, "data": data, "client_msg_id": client_msg_id}
        return str(call("message/template/send", lambda: self.client.post("message/template/send", data=body))["msgid"])


def make_publisher(settings: Settings, client: redis.Redis) -> Publisher:
    """WeChat when an app id and secret are configured, else the outbox folder (bare machine, demo)."""
    if settings.wechat_app_id and settings.wechat_app_secret:
        install_redaction()  # requests logs URLs at DEBUG, and the token URL carries the app secret
        return WeChatPublisher(settings, client)
    return OutboxPublisher(settings.outbox_dir)
