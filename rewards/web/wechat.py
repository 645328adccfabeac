"""The WeChat official account's message callback: URL verification, plain and safe (AES) mode messages.

Text "排名", "积分" or "rank" and the menu CLICK key MY_RANK answer with the citizen's standing; subscribe gets a
welcome with the rules link; other messages and clicks get a short help text; other events (unsubscribe, VIEW,
LOCATION, job-finished notices) get the empty "success" WeChat expects. Every signature is compared in constant
time (wechatpy's own checks use ==, so they only run after ours has passed). Replies never contain the openid.
Once safe mode is configured (REWARDS_WECHAT_AES_KEY) plain messages are refused, and every signed message URL
is admitted once within its timestamp window (rewards/http/replay.py: the same body again is WeChat's retry).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from xml.parsers.expat import ExpatError

import xmltodict
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply

from rewards.bootstrap import Container
from rewards.clock import IsoWeek
from rewards.config import Settings
from rewards.deps import Services
from rewards.engagement.milestone_rules import mention_text
from rewards.engagement.rating_rules import WECHAT_WORD
from rewards.errors import BadRequest, DomainError, Forbidden, NotFound, TooManyRequests, Unavailable
from rewards.http.limits import WECHAT_MAX_BYTES, too_large
from rewards.http.ratelimit import Limit, client_ip, limiter_of
from rewards.leaderboard.schemas import StandingOut
from rewards.logs import get_logger
from rewards.web.review import is_objection_message, objection_reply

log = get_logger("wechat")
router = APIRouter(tags=["wechat"])
C = Services
T = TypeVar("T")
Param = Annotated[str | None, Query(max_length=256)]

MAX_BODY = WECHAT_MAX_BYTES  # WeChat messages are a few KB; also enforced while streaming (rewards/http/limits.py)
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # also keeps the reply's ToUserName CDATA well-formed
RANK_WORDS = frozenset({"排名", "积分", "rank"})
RATE_WORD = WECHAT_WORD  # "评价 <案件号> <满意|基本满意|不满意> [意见]" rates a handled report
MY_RANK_KEY = "MY_RANK"
SILENT_EVENTS = frozenset(
    {
        "unsubscribe",
        "view",
        "view_miniprogram",
        "location",
        "scan",
        "templatesendjobfinish",
        "masssendjobfinish",
        "publishjobfinish",
        "subscribe_msg_popup_event",
        "subscribe_msg_change_event",
        "subscribe_msg_sent_event",
    }
)


# --- signatures ---------------------------------------------------------------------------------------------


def wechat_signature(*parts: str) -> str:
    """Return WeChat's signature: SHA-1 of the sorted parts concatenated (token, timestamp, nonce[, encrypt])."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_ok(signature: str | None, token: str, *parts: str | None) -> bool:
    """Return True when `signature` is WeChat's signature of the token and parts (constant-time comparison)."""
    if not signature or any(p is None for p in parts):
        return False
    expected = wechat_signature(token, *(p for p in parts if p is not None))
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def _verify(request: Request, c: Container, ok: bool, timestamp: str | None) -> None:
    """403 on a bad signature (counted per IP: guessing gets 429) or a timestamp outside the allowed skew."""
    if not ok:
        limiter = limiter_of(request)
        limiter.hit("wechat_bad", [Limit("ip", client_ip(request), c.settings.rate_limit_sign_in_per_ip)])
        raise Forbidden("bad WeChat signature", code="bad_signature")
    skew = c.settings.wechat_callback_max_skew_seconds
    if skew and (
        timestamp is None or not timestamp.isdigit() or abs(c.clock.now().timestamp() - int(timestamp)) > skew
    ):
        raise Forbidden("WeChat timestamp is too far from now (replayed or clock skew)", code="stale_timestamp")


# --- replies (pure) -----------------------------------------------------------------------------------------


def rules_url(settings: Settings) -> str:
    """Return the public rules page."""
    return settings.public_base_url.rstrip("/") + "/rules"


def help_text(rules: str) -> str:
    """The short help text for anything the account does not understand."""
    return (
        f"您好，这里是“随手拍”城市管理有奖举报。\n回复“排名”或“积分”查看您本周的排名和积分。\n"
        f"举报处置完成后，回复“评价 案件号 满意”（或 基本满意、不满意，可附意见）评价处置结果。\n活动规则：{rules}"
    )


def welcome_text(rules: str, places: int) -> str:
    """The welcome a new follower receives."""
    return (
        "感谢关注“随手拍”！\n发现路灯损坏、垃圾满溢、占道经营等城市管理问题，随手拍照举报，"
        f"经指挥中心立案即可获得积分，每周积分前 {places} 名可获奖励。\n"
        f"回复“排名”查看您的积分和排名。\n活动规则：{rules}"
    )


def not_ranked_text(rules: str, places: int) -> str:
    """The answer for a citizen without points (or unknown to us)."""
    return (
        "您暂未上榜。\n通过“随手拍”举报城市管理问题，经指挥中心立案即可获得积分，"
        f"积分越多排名越靠前，每周前 {places} 名可获奖励。\n活动规则：{rules}"
    )


def rank_text(s: StandingOut | None, rules: str, places: int) -> str:
    """Return the reply to "排名": this week's and all-time points and rank, and the way to the prize list."""
    if s is None or (s.weekly.rank is None and s.all_time.rank is None):
        return not_ranked_text(rules, places)
    week = f"本周积分：{s.weekly.points} 分，" + (
        f"排名第 {s.weekly.rank} 名" if s.weekly.rank is not None else "本周暂未上榜"
    )
    total = f"累计积分：{s.all_time.points} 分，" + (
        f"排名第 {s.all_time.rank} 名" if s.all_time.rank is not None else "暂未上榜"
    )
    if s.eligibility_note is not None:
        prize = f"{s.eligibility_note}。"
    elif s.prize_rank is not None and s.prize_rank <= s.prize_places:
        tier = f"（{s.tier.name}）" if s.tier is not None else ""
        prize = f"您已进入本周获奖名单：第 {s.prize_rank} 名{tier}，请继续保持！"
    else:
        prize = f"距本周获奖名单（前 {s.prize_places} 名）还差 {s.points_to_prize} 分，加油！"
    return f"【我的积分】{IsoWeek.parse(s.week).label()}\n{week}\n{total}\n{prize}\n活动规则：{rules}"


# --- the callback -------------------------------------------------------------------------------------------


def _crypto(settings: Settings) -> WeChatCrypto:
    if not settings.wechat_aes_key or not settings.wechat_app_id:
        raise Unavailable("safe mode needs REWARDS_WECHAT_AES_KEY and _APP_ID", code="wechat_unconfigured")
    token, key = settings.wechat_token.get_secret_value(), settings.wechat_aes_key.get_secret_value()
    return WeChatCrypto(token, key, settings.wechat_app_id)


def _xml_dict(text: str) -> dict[str, Any]:
    try:
        doc = xmltodict.parse(text, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise BadRequest("malformed WeChat XML", code="bad_message") from exc
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise BadRequest("a WeChat message has an <xml> root", code="bad_message")
    return root


def _field(root: dict[str, Any], name: str) -> str:
    value = root.get(name)
    return value.strip() if isinstance(value, str) else ""


def _answer(c: Container, request: Request, root: dict[str, Any], openid: str) -> str | None:
    """Return the reply text for a message, or None for the empty reply."""
    rules, places = rules_url(c.settings), c.program.prizes.places
    kind, event = _field(root, "MsgType").lower(), _field(root, "Event").lower()
    if kind == "event":
        if event == "subscribe":
            return welcome_text(rules, places)
        wants_rank = event == "click" and _field(root, "EventKey") == MY_RANK_KEY
        if not wants_rank and event != "click":
            return None  # unsubscribe, VIEW, LOCATION, job-finished notices and other events: nobody to answer
    else:
        wants_rank = kind == "text" and _field(root, "Content").casefold() in RANK_WORDS
        if kind == "text" and is_objection_message(_field(root, "Content")):  # "异议 <名次> <理由>": 公示 objections
            return objection_reply(c, request, _field(root, "Content"), openid)
        if kind == "text" and _field(root, "Content").startswith(RATE_WORD):
            return _rate(c, request, _field(root, "Content"), openid)
    if not wants_rank:
        return help_text(rules)
    try:
        limiter_of(request).hit("wechat", [Limit("citizen", openid, c.settings.rate_limit_per_citizen)])
    except TooManyRequests:
        return "操作太频繁，请稍后再试。"
    try:
        found: StandingOut | None = c.leaderboard.standing(openid, neighbours=0)
    except NotFound:
        found = None
    except (SQLAlchemyError, DomainError) as exc:  # answer within WeChat's 5 seconds rather than fail the message
        log.warning("standing unavailable for a WeChat reply: %s", type(exc).__name__)
        return "系统繁忙，请稍后再试。"
    return rank_text(found, rules, places) + _milestone_news(c, request, root, openid)


def _milestone_news(c: Container, request: Request, root: dict[str, Any], openid: str) -> str:
    """The line mentioning milestones reached since the last reply (each once); "" when none or unavailable.

    WeChat retries a message with the same signed URL: its key makes a retry's reply mention the same news.
    """
    q = request.query_params
    message = f"{q.get('timestamp')}:{q.get('nonce')}:{_field(root, 'MsgId')}:{_field(root, 'CreateTime')}"
    try:
        return mention_text(c.milestones.announce(openid, hashlib.sha256(message.encode()).hexdigest()))
    except (SQLAlchemyError, DomainError) as exc:  # the rank reply matters more than the news: answer without it
        log.warning("milestones unavailable for a WeChat reply: %s", type(exc).__name__)
        return ""


def _rate(c: Container, request: Request, text: str, openid: str) -> str:
    """Reply to "评价 <案件号> <满意|基本满意|不满意> [意见]" (rewards/engagement/ratings.py): thanks or the reason."""
    try:
        limiter_of(request).hit("wechat", [Limit("citizen", openid, c.settings.rate_limit_per_citizen)])
    except TooManyRequests:
        return "操作太频繁，请稍后再试。"
    try:
        return c.ratings.reply_to_message(openid, text) or help_text(rules_url(c.settings))
    except SQLAlchemyError as exc:  # answer within WeChat's 5 seconds rather than fail the message
        log.warning("rating unavailable for a WeChat reply: %s", type(exc).__name__)
        return "系统繁忙，请稍后再试。"


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise too_large(MAX_BODY)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise too_large(MAX_BODY)
    return raw


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("a WeChat message is UTF-8 XML", code="bad_message") from exc


def _is_safe_mode(settings: Settings, encrypt_type: str | None) -> bool:
    """Safe (AES) or plain mode; once REWARDS_WECHAT_AES_KEY is set, plain messages are refused (403).

    In plain mode the signature covers the URL only (token, timestamp, nonce), never the body.
    """
    kind = (encrypt_type or "raw").lower()
    if kind not in ("raw", "aes"):
        raise BadRequest(f"unknown encrypt_type {encrypt_type!r}", code="bad_message")
    if kind == "raw" and settings.wechat_aes_key is not None:
        raise Forbidden("safe mode is configured: plain (unencrypted) messages are refused", code="plain_refused")
    return kind == "aes"


def replay_window_seconds(settings: Settings) -> float:
    """How long a signed (timestamp, nonce) stays valid: the timestamp is accepted within ±skew of now."""
    skew = settings.wechat_callback_max_skew_seconds
    return 2 * skew + 1 if skew else 86_400.0  # skew 0 accepts any timestamp: remember nonces for a day


def _admit_once(c: Container, timestamp: str | None, nonce: str | None, raw: bytes) -> None:
    """403 when this signed (timestamp, nonce) was already used with another body (a replayed URL)."""
    key = f"{timestamp}:{nonce}"
    if not c.replay.admit("wechat", key, raw, replay_window_seconds(c.settings)):
        raise Forbidden("this signed callback URL was already used (replay)", code="replayed")


@router.get("/wechat/callback", response_class=PlainTextResponse)
def verify_url(
    request: Request, c: C, signature: Param = None, timestamp: Param = None, nonce: Param = None, echostr: Param = None
) -> PlainTextResponse:
    """WeChat's server-URL check: echo `echostr` when the signature is right, 403 otherwise."""
    _verify(
        request, c, signature_ok(signature, c.settings.wechat_token.get_secret_value(), timestamp, nonce), timestamp
    )
    if not echostr:
        raise BadRequest("missing echostr", code="bad_request")
    return PlainTextResponse(echostr)


@router.post("/wechat/callback")
async def receive(
    request: Request,
    c: C,
    signature: Param = None,
    timestamp: Param = None,
    nonce: Param = None,
    encrypt_type: Param = None,
    msg_signature: Param = None,
) -> Response:
    """Receive a message or event (plain or AES safe mode) and answer with a passive reply."""
    await _in_thread(
        _verify,
        request,
        c,
        signature_ok(signature, c.settings.wechat_token.get_secret_value(), timestamp, nonce),
        timestamp,
    )
    safe = _is_safe_mode(c.settings, encrypt_type)  # before the body is read
    raw = await _body(request)
    text = _utf8(raw)
    crypto = _crypto(c.settings) if safe else None
    encrypted = _field(_xml_dict(text), "Encrypt") if crypto is not None else ""
    if crypto is not None:
        # the body is authenticated by msg_signature; 403 before any decryption is attempted
        token = c.settings.wechat_token.get_secret_value()
        signed = signature_ok(msg_signature, token, timestamp, nonce, encrypted)
        await _in_thread(_verify, request, c, signed, timestamp)
    await _in_thread(_admit_once, c, timestamp, nonce, raw)  # signed, so a replayed URL is what is left
    if crypto is not None:
        try:
            text = crypto.decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
        except Exception as exc:  # base64, padding, length or app-id errors of a corrupt payload
            raise BadRequest("the encrypted WeChat message cannot be decrypted", code="bad_message") from exc
    root = _xml_dict(text)
    openid = _field(root, "FromUserName")
    if not OPENID_RE.match(openid) or not _field(root, "ToUserName") or not _field(root, "MsgType"):
        raise BadRequest("a WeChat message needs ToUserName, an openid FromUserName and MsgType", code="bad_message")
    try:
        message = parse_message(text)
    except (ExpatError, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise BadRequest("malformed WeChat message", code="bad_message") from exc
    answer = await _in_thread(_answer, c, request, root, openid)
    if answer is None:
        return PlainTextResponse("success")
    reply = TextReply(message=message, content=answer, time=int(c.clock.now().timestamp())).render()
    if crypto is not None:
        reply = crypto.encrypt_message(reply, nonce, str(int(c.clock.now().timestamp())))
    return Response(reply, media_type="application/xml")


async def _in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run blocking work (SQL, Redis) off the event loop."""
    return await run_in_threadpool(fn, *args)
