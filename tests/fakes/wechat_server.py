"""A stand-in for the WeChat official-account API: a real threaded HTTP server on 127.0.0.1 for tests.

It answers like WeChat (HTTP 200 with {"errcode", "errmsg"} on errors), validates what WeChat validates
(token, title <= 32 characters, author <= 16, digest <= 128, content < 20,000 characters and < 1 MB, a
permanent thumb_media_id, JPEG thumbs <= 64 KB), records every call and injects faults on demand.
A draft leaves the draft box when it is submitted (WeChat removes published drafts), and a publish job
completes after `publish_ticks` polls of freepublish/get or freepublish/batchget (time passing).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from tests.fakes.wechat_http import Handler, multipart
from tests.fakes.wechat_rules import Call, Fault, error_body, validate_article


@dataclass
class Job:
    """A freepublish job."""

    publish_id: str
    articles: list[dict[str, Any]]
    ticks_left: int
    outcome: int  # publish_status once done: 0 success, 2..6 failures
    article_id: str = ""
    done: bool = False


@dataclass
class State:
    """Everything the stand-in remembers."""

    tokens: dict[str, float] = field(default_factory=dict)  # token -> expires (monotonic)
    images: set[str] = field(default_factory=set)
    materials: dict[str, str] = field(default_factory=dict)  # media_id -> type
    drafts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    sends: dict[tuple[str, str], int] = field(default_factory=dict)  # (touser, client_msg_id) -> msgid
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    drafts_created: int = 0
    submits: int = 0
    token_fetches: int = 0
    filtered_images: list[str] = field(default_factory=list)


class WeChatServer:
    """Start with `with WeChatServer() as wx:`; point Settings.wechat_api_base at `wx.base_url`."""

    def __init__(self, appid: str = "wx-test-app", secret: str = "wx-test-secret", publish_ticks: int = 1) -> None:
        self.appid, self.secret, self.publish_ticks = appid, secret, publish_ticks
        self.template_ids = {"tpl-winner"}
        self.state = State()
        self.calls: list[Call] = []
        self.faults: dict[str, list[Fault]] = {}
        self.next_outcome = 0
        self.lock = threading.Lock()
        self.idle = threading.Condition()
        self.in_flight = 0
        self._ids = itertools.count(1000)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.stand_in = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        """The API base URL to configure (Settings.wechat_api_base)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/cgi-bin/"

    def __enter__(self) -> WeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------ test controls

    def inject(self, endpoint: str, kind: str, value: float = 0, times: int = 1) -> None:
        """Queue a fault for an endpoint ("draft/add", ... or "*" for every endpoint but token)."""
        with self.lock:
            self.faults.setdefault(endpoint, []).append(Fault(kind, value, times))

    def expire_tokens(self) -> None:
        """Make every issued token expired (42001 on next use)."""
        with self.lock:
            self.state.tokens = dict.fromkeys(self.state.tokens, 0.0)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being processed (a slow call has landed)."""
        with self.idle:
            self.idle.wait_for(lambda: self.in_flight == 0, timeout)

    def calls_to(self, endpoint: str) -> list[Call]:
        """Calls received for an endpoint."""
        return [c for c in self.calls if c.endpoint == endpoint]

    def posts(self) -> list[Job]:
        """Publications carried out (done successfully)."""
        return [j for j in self.state.jobs.values() if j.done and j.outcome == 0]

    def _fault(self, endpoint: str) -> Fault | None:
        with self.lock:
            for key in (endpoint, "*" if endpoint != "token" else ""):
                queue = self.faults.get(key) or []
                if queue:
                    fault = queue[0]
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            queue.pop(0)
                    return fault
        return None

    # ------------------------------------------------------------ the API

    def handle(self, endpoint: str, query: dict[str, str], body: bytes, ctype: str) -> tuple[int, Any]:
        """Answer one call: (HTTP status, JSON body)."""
        if endpoint == "token":
            return 200, self._token(query)
        token = query.get("access_token", "")
        with self.lock:
            expires = self.state.tokens.get(token)
        if not token:
            return 200, error_body(41001)
        if expires is None:
            return 200, error_body(40001)
        if expires < time.monotonic():
            return 200, error_body(42001)
        handler = getattr(self, "_" + endpoint.replace("/", "_"), None)
        if handler is None:
            return 404, {"errcode": 404, "errmsg": "unknown endpoint"}
        media = multipart(body, ctype) if ctype.startswith("multipart/") else None
        payload = media if media is not None else (json.loads(body or b"{}") if body else {})
        with self.lock:
            return 200, handler(query, payload)

    def _token(self, q: dict[str, str]) -> dict[str, Any]:
        if q.get("grant_type") != "client_credential":
            return error_body(40002)
        if q.get("appid") != self.appid:
            return error_body(40013)
        if q.get("secret") != self.secret:
            return error_body(40125)
        with self.lock:
            self.state.token_fetches += 1
            token = f"TOKEN-{next(self._ids)}"
            self.state.tokens[token] = time.monotonic() + 7200
        return {"access_token": token, "expires_in": 7200}

    def _media_uploadimg(self, q: dict[str, str], media: Any) -> dict[str, Any]:
        if not isinstance(media, bytes):
            return error_body(41005)
        if not (media.startswith(b"\x89PNG") or media.startswith(b"\xff\xd8")):
            return error_body(40005)
        if len(media) >= 1024 * 1024:
            return error_body(40009)
        url = f"http://mmbiz.qpic.cn/mmbiz_png/{next(self._ids)}/0"
        self.state.images.add(url)
        return {"url": url}

    def _material_add_material(self, q: dict[str, str], media: Any) -> dict[str, Any]:
        kind = q.get("type", "")
        if kind not in ("image", "voice", "video", "thumb"):
            return error_body(40004)
        if not isinstance(media, bytes):
            return error_body(41005)
        if kind == "thumb" and not media.startswith(b"\xff\xd8"):
            return error_body(40005)  # thumbs are JPEG only
        if kind == "thumb" and len(media) > 64 * 1024:
            return error_body(40009)
        media_id = f"MATERIAL-{next(self._ids)}"
        self.state.materials[media_id] = kind
        return {"media_id": media_id, "url": f"http://mmbiz.qpic.cn/{media_id}/0"}

    def _draft_add(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        articles = body.get("articles") or []
        if not articles:
            return error_body(44003)
        for article in articles:
            code = validate_article(article, self.state.materials)
            if code:
                return error_body(code)
        for article in articles:  # WeChat drops images that did not come from media/uploadimg
            for src in re.findall(r'<img[^>]*src="([^"]*)"', article["content"]):
                if src not in self.state.images:
                    self.state.filtered_images.append(src)
        media_id = f"DRAFT-{next(self._ids)}"
        self.state.drafts[media_id] = articles
        self.state.drafts_created += 1
        return {"media_id": media_id}

    def _draft_get(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        articles = self.state.drafts.get(body.get("media_id", ""))
        return error_body(40007) if articles is None else {"news_item": articles}

    def _page(self, body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
        offset, count = int(body.get("offset", 0)), int(body.get("count", 0))
        if not 1 <= count <= 20 or offset < 0:
            return error_body(40005)
        page = items[offset : offset + count]
        return {"total_count": len(items), "item_count": len(page), "item": page}

    def _draft_batchget(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        strip = bool(body.get("no_content"))
        items = [
            {"media_id": mid, "content": {"news_item": [_strip(a, strip) for a in arts]}, "update_time": 0}
            for mid, arts in reversed(self.state.drafts.items())
        ]
        return self._page(body, items)

    def _freepublish_submit(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        articles = self.state.drafts.pop(body.get("media_id", ""), None)
        if articles is None:
            return error_body(40007)
        job = Job(f"{next(self._ids)}", articles, self.publish_ticks, self.next_outcome)
        self.state.jobs[job.publish_id] = job
        self.state.submits += 1
        return {"errcode": 0, "errmsg": "ok", "publish_id": job.publish_id, "msg_data_id": next(self._ids)}

    def _tick(self, job: Job) -> None:
        if job.done:
            return
        if job.ticks_left > 0:
            job.ticks_left -= 1
            return
        job.done = True
        job.article_id = f"ARTICLE-{job.publish_id}"

    def _freepublish_get(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        job = self.state.jobs.get(str(body.get("publish_id", "")))
        if job is None:
            return error_body(40007)
        self._tick(job)
        if not job.done:
            return {"publish_id": job.publish_id, "publish_status": 1}
        if job.outcome:
            return {"publish_id": job.publish_id, "publish_status": job.outcome, "fail_idx": [1]}
        url = f"https://mp.weixin.qq.com/s/{job.article_id}"
        detail = {"count": 1, "item": [{"idx": 1, "article_url": url}]}
        done = {"publish_id": job.publish_id, "publish_status": 0, "article_id": job.article_id}
        return {**done, "article_detail": detail}

    def _freepublish_batchget(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        for job in self.state.jobs.values():
            self._tick(job)
        strip = bool(body.get("no_content"))
        items = [
            {
                "article_id": j.article_id,
                "content": {
                    "news_item": [
                        {**_strip(a, strip), "url": f"https://mp.weixin.qq.com/s/{j.article_id}", "is_deleted": False}
                        for a in j.articles
                    ]
                },
                "update_time": 0,
            }
            for j in reversed(self.posts())
        ]
        return self._page(body, items)

    def _message_template_send(self, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("touser"):
            return error_body(40003)
        if body.get("template_id") not in self.template_ids:
            return error_body(40037)
        key = (body["touser"], str(body.get("client_msg_id") or next(self._ids)))
        if key not in self.state.sends:  # the same openid + client_msg_id is sent once
            self.state.sends[key] = next(self._ids)
            self.state.deliveries.append(body)
        return {"errcode": 0, "errmsg": "ok", "msgid": self.state.sends[key]}


def _strip(article: dict[str, Any], no_content: bool) -> dict[str, Any]:
    return {k: v for k, v in article.items() if not (no_content and k == "content")}
