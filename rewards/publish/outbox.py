"""The publisher port without WeChat credentials: the article goes to an outbox folder (<week>.html + .json).

It walks the same state machine as WeChat (so the whole loop runs on a bare machine) and is idempotent by
construction: each step overwrites the same files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rewards.publish.port import NOTICE, PUBLISHED, Article, PublishError, PublishStatus
from rewards.publish.render import render_page

DRAFT, DONE = "draft", "published"


def name_of(article: Article) -> str:
    """The file stem of an article: the week for the first announcement, `<week>-final` for the 定榜 one."""
    return article.week if article.kind == NOTICE else f"{article.week}-{article.kind}"


def data_uri(data: bytes) -> str:
    """Inline an image so the outbox page is self-contained."""
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


class OutboxPublisher:
    """Writes the week's article to <outbox_dir>/<week>.html with its metadata in <week>.json."""

    channel = "outbox"

    def __init__(self, outbox_dir: Path) -> None:
        self.dir = Path(outbox_dir)

    def html_path(self, week: str) -> Path:
        """Where the week's article page is written (`week` may be a name_of(): `<week>-final`)."""
        return self.dir / f"{week}.html"

    def _meta_path(self, week: str) -> Path:
        return self.dir / f"{week}.json"

    def _meta(self, week: str) -> dict[str, Any] | None:
        path = self._meta_path(week)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    @staticmethod
    def _week_of(media_id: str) -> str:
        return media_id.rsplit(":", 1)[-1]

    def upload_content_image(self, filename: str, data: bytes) -> str:
        """Return the image inlined as a data: URI."""
        return data_uri(data)

    def add_cover(self, filename: str, data: bytes) -> str:
        """Store the cover image under covers/ and return an id naming it."""
        digest = hashlib.sha256(data).hexdigest()[:16]
        path = self.dir / "covers" / f"{digest}{Path(filename).suffix or '.jpg'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"outbox-cover:{path.name}"

    def add_draft(self, article: Article, thumb_media_id: str) -> str:
        """Write the article page and its metadata as a draft."""
        name = name_of(article)
        _write(self.html_path(name), render_page(article))
        meta = {
            "week": article.week,
            "kind": article.kind,
            "state": DRAFT,
            "title": article.title,
            "author": article.author,
            "digest": article.digest,
            "content_source_url": article.content_source_url,
            "thumb_media_id": thumb_media_id,
            "content_sha256": hashlib.sha256(article.content.encode("utf-8")).hexdigest(),
        }
        _write(self._meta_path(name), json.dumps(meta, ensure_ascii=False, indent=2))
        return f"outbox-draft:{name}"

    def find_draft(self, article: Article) -> str | None:
        """The draft of this article if its files exist."""
        name = name_of(article)
        meta = self._meta(name)
        if meta and meta.get("title") == article.title:
            return f"outbox-draft:{name}"
        return None

    def draft_exists(self, media_id: str) -> bool:
        """True while the week's metadata still says draft."""
        meta = self._meta(self._week_of(media_id))
        return bool(meta and meta.get("state") == DRAFT)

    def submit(self, media_id: str) -> str:
        """Mark the week's article published."""
        week = self._week_of(media_id)
        meta = self._meta(week)
        if meta is None:
            raise PublishError("terminal", None, f"outbox: no draft for {week}")
        meta["state"] = DONE
        _write(self._meta_path(week), json.dumps(meta, ensure_ascii=False, indent=2))
        return f"outbox-publish:{week}"

    def _status(self, week: str) -> PublishStatus | None:
        meta = self._meta(week)
        if not meta or meta.get("state") != DONE:
            return None
        return PublishStatus(PUBLISHED, f"outbox:{week}", str(self.html_path(week).resolve()))

    def publish_status(self, publish_id: str) -> PublishStatus:
        """Published, with the outbox file as its URL."""
        status = self._status(self._week_of(publish_id))
        if status is None:
            raise PublishError("terminal", None, f"outbox: {publish_id} was never submitted")
        return status

    def find_published(self, article: Article) -> PublishStatus | None:
        """The week's article if it was marked published."""
        return self._status(name_of(article))

    def refresh_token(self) -> None:
        """No token without WeChat."""

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str, client_msg_id: str) -> str:
        """Write the notice to notices/<client_msg_id>.json (same key, same file)."""
        body = {"touser": openid, "template_id": template_id, "url": url, "data": data}
        _write(self.dir / "notices" / f"{client_msg_id}.json", json.dumps(body, ensure_ascii=False, indent=2))
        return client_msg_id
