"""What the stand-in WeChat server checks in an article, and WeChat's error messages (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40009: "invalid image size",
    40013: "invalid appid",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41005: "media data missing",
    42001: "access_token expired",
    44003: "empty news data",
    45002: "content size out of limit",
    45003: "title size out of limit",
    45004: "description size out of limit",
    45009: "reach max api daily quota limit",
    45110: "author size out of limit",
    45166: "invalid content_source_url",
    48001: "api unauthorized",
    53503: "该草稿未通过发布检查",
}


def validate_article(article: dict[str, Any], materials: dict[str, str]) -> int:
    """Return WeChat's errcode for an invalid draft article, 0 when it is acceptable."""
    title = article.get("title") or ""
    if not title or len(title) > 32:
        return 45003
    if len(article.get("author") or "") > 16:
        return 45110
    if len(article.get("digest") or "") > 128:
        return 45004
    content = article.get("content") or ""
    if not content or len(content) >= 20_000 or len(content.encode("utf-8")) >= 1_000_000:
        return 45002
    if len((article.get("content_source_url") or "").encode("utf-8")) >= 1024:
        return 45166
    if article.get("thumb_media_id") not in materials:
        return 40007  # must be a permanent material
    return 0


def error_body(code: int) -> dict[str, Any]:
    """WeChat's error answer (sent with HTTP 200)."""
    return {"errcode": code, "errmsg": f"{ERRMSG.get(code, 'error')} rid: stand-in"}


@dataclass
class Fault:
    """An injected failure: errcode (HTTP 200 + errcode), http (status), drop (no answer), drop_after (the call
    is carried out but the answer is dropped), slow (carried out after `value` seconds)."""

    kind: str
    value: float = 0
    times: int = 1  # -1: forever


@dataclass
class Call:
    """One request as the server saw it, and what it answered."""

    endpoint: str
    query: dict[str, str]
    body: Any
    answer: Any = None
