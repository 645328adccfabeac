"""The mini program's sign-in: POST /api/v1/auth/wxa exchanges a `wx.login` code for a citizen session.

The code goes to WeChat's code2Session (sns/jscode2session, through wechatpy's WeChatWxa) with the mini program's
AppID and AppSecret; WeChat answers with the mini program's openid, a session_key (never stored, never logged) and,
when the apps share an open-platform account, the person's unionid. The openid is linked to a citizen
(rewards.scoring.citizen_links: a unionid joins the official account's citizen; two citizens who both have points
are never joined without an administrator), and the answer is the same signed session the citizen API accepts
from the official account's sign-in: the `rw_session` cookie value, which the mini program sends back as
`Cookie: rw_session=<token>` on every call (wx.request keeps no cookies by itself), valid `expires_in` seconds.
The session names the citizen's canonical openid, so /api/v1/citizens/{openid}/… works unchanged.

WeChat's refusals are the caller's answer, and nothing is written for them: an invalid code (40029) or one used
already (40163) is a 400 with the reason, WeChat's rate limit (45011) a 429 with Retry-After, a blocked user
(40226) a 403, WeChat being down or busy a 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from fastapi import APIRouter, Depends, Response
from pydantic import AwareDatetime, BaseModel, Field
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from rewards.config import Settings
from rewards.deps import Codec, Services
from rewards.errors import BadRequest, DomainError, Forbidden, NotFound, TooManyRequests, Unavailable
from rewards.http.ratelimit import rate_limited
from rewards.http.session import CITIZEN_COOKIE, CitizenSession, set_citizen_cookie
from rewards.logs import get_logger, install_redaction
from rewards.scoring.citizen_links import sign_in_linked

log = get_logger("auth.wxa")
router = APIRouter(prefix="/api/v1/auth", tags=["identity"])

APP = "wxa"
INVALID_CODE = 40029
CODE_USED = 40163
RATE_LIMITED = 45011
HIGH_RISK_USER = 40226
SYSTEM_BUSY = -1
RATE_LIMIT_RETRY_SECONDS = 60  # 45011 is WeChat's per-minute quota: "retry next minute"


class WxaClient(WeChatClient):  # type: ignore[misc]  # wechatpy ships no type information
    """wechatpy on configurable base URLs, no automatic retries; code2Session needs no access token.

    code2Session authenticates with the AppSecret, so no access token is fetched or sent (wechatpy would fetch one
    for every call first). Should another mini-program call ever need one, it is fetched from the configured base
    (wechatpy's own fetch URL is hard-coded), as the publisher does.
    """

    def __init__(self, settings: Settings) -> None:
        secret = settings.wxa_app_secret.get_secret_value() if settings.wxa_app_secret else None
        super().__init__(settings.wxa_app_id, secret, timeout=settings.wechat_timeout_seconds, auto_retry=False)
        base = settings.wxa_api_base.rstrip("/") + "/"
        self.API_BASE_URL = base + "cgi-bin/"
        self.wxa.API_BASE_URL = base  # WeChatWxa's paths are relative to the host ("sns/jscode2session")

    @property
    def access_token(self) -> None:
        """None: code2Session takes the AppSecret instead (requests leaves a None parameter out)."""
        return None

    def fetch_access_token(self) -> Any:
        """Fetch an access token from the configured base (wechatpy's own URL is hard-coded)."""
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        return self._fetch_access_token(url=self.API_BASE_URL + "token", params=params)


@dataclass(frozen=True)
class WxaIdentity:
    """What code2Session says about the person (the session_key is dropped at once)."""

    openid: str
    unionid: str | None


def refusal(errcode: int | None) -> DomainError:
    """The answer to a caller whose code WeChat refused with `errcode` (None: no usable answer at all)."""
    if errcode == INVALID_CODE:
        return BadRequest("the wx.login code is invalid or expired: call wx.login again", code="bad_code")
    if errcode == CODE_USED:
        return BadRequest("the wx.login code was already used: call wx.login again", code="code_used")
    if errcode == RATE_LIMITED:
        message = "WeChat is limiting sign-ins right now, retry shortly"
        limited = TooManyRequests(message, retry_after=RATE_LIMIT_RETRY_SECONDS)
        limited.code = "wechat_rate_limited"
        return limited
    if errcode == HIGH_RISK_USER:
        return Forbidden("WeChat refused this user's sign-in (flagged as high risk)", code="wechat_refused_user")
    if errcode == SYSTEM_BUSY:
        return Unavailable("WeChat is busy, please retry", code="wechat_busy")
    return Unavailable("WeChat did not complete the sign-in, please retry", code="wechat_unavailable")


def wechat_id_ok(value: str) -> bool:
    """An openid or unionid as WeChat writes them: 1-128 ASCII letters, digits, '_' or '-'."""
    return 1 <= len(value) <= 128 and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in value)


def code_to_session(settings: Settings, code: str) -> WxaIdentity:
    """Exchange a wx.login code at code2Session; raise the caller's answer when WeChat refuses or fails."""
    if not settings.wxa_app_id or not settings.wxa_app_secret:
        # like any route a deployment does not offer: 404 (the development sign-in does the same)
        raise NotFound("mini-program sign-in is not configured (REWARDS_WXA_APP_ID)", code="wxa_unconfigured")
    install_redaction()  # urllib3 logs the URL, which carries the AppSecret and the code
    client = WxaClient(settings)
    try:
        answer: Any = client.wxa.code_to_session(code)
    except WeChatClientException as exc:
        errcode = exc.errcode if isinstance(exc.errcode, int) else None
        log.info("WeChat refused a code2Session call: errcode %s", errcode)  # the exception holds the secret URL
        raise refusal(errcode) from None
    except (requests.RequestException, ValueError) as exc:
        log.warning("code2Session failed: %s", type(exc).__name__)
        raise refusal(None) from None
    finally:
        client._http.close()  # wechatpy's requests.Session: one per exchange, its connection closed here
    if not isinstance(answer, dict):
        raise refusal(None)
    openid, unionid = answer.get("openid"), answer.get("unionid")
    if not isinstance(openid, str) or not wechat_id_ok(openid):
        raise Unavailable("WeChat answered the sign-in without an openid", code="wechat_unavailable")
    return WxaIdentity(openid, unionid if isinstance(unionid, str) and wechat_id_ok(unionid) else None)


class WxaSignInIn(BaseModel):
    """The code the mini program got from wx.login."""

    code: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$", description="wx.login's code")


class WxaSessionOut(BaseModel):
    """A citizen session for the mini program."""

    token: str = Field(description="send as `Cookie: rw_session=<token>` with every citizen API call")
    cookie: str = Field(description="the cookie name the token goes in (rw_session)")
    expires_in: int = Field(description="seconds the session is valid")
    expires_at: AwareDatetime
    openid: str = Field(description="the citizen's own openid, as /api/v1/citizens/{openid}/… expects it")
    linked: bool = Field(description="the mini program joined an existing citizen through the unionid")
    link_pending: bool = Field(description="another citizen holds this person's unionid; an administrator decides")


@router.post("/wxa", response_model=WxaSessionOut, dependencies=[Depends(rate_limited("sign_in", sign_in=True))])
def wxa_sign_in(body: WxaSignInIn, c: Services, codec: Codec, response: Response) -> WxaSessionOut:
    """Sign in from the mini program: exchange a wx.login code for the session the citizen API accepts."""
    person = code_to_session(c.settings, body.code)
    now = c.clock.now()
    with c.uow() as uow:
        signed = sign_in_linked(uow.session, APP, person.openid, person.unionid, now)
    outcome = signed.decision.outcome.value
    session = CitizenSession(signed.openid)
    set_citizen_cookie(response, codec, session)
    max_age = c.settings.session_max_age_seconds
    return WxaSessionOut(
        token=codec.dump_citizen(session),
        cookie=CITIZEN_COOKIE,
        expires_in=max_age,
        expires_at=now + timedelta(seconds=max_age),
        openid=signed.openid,
        linked=outcome in ("link", "absorb"),
        link_pending=outcome == "pending",
    )
