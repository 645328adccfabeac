"""Sign-in and sign-out: WeChat web OAuth (snsapi_base), the development sign-in, the console sign-in.

WeChat flow: /auth/wechat/login sets a short-lived signed cookie holding a nonce and the page to return to, and
redirects to WeChat's authorize URL with state = nonce + HMAC(nonce) (WeChat allows only [A-Za-z0-9], at most
128 bytes). WeChat redirects back to /auth/wechat/callback?code=&state=; the state must carry a valid HMAC AND
the nonce of this browser's cookie (login CSRF), the code is exchanged for the openid at
sns/oauth2/access_token, the citizen is upserted and the session cookie set.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from rewards.cases.service import audit, sign_in_citizen
from rewards.config import Settings
from rewards.deps import Codec, Services
from rewards.errors import BadRequest, Forbidden, NotFound, Unauthorized, Unavailable
from rewards.http.ratelimit import rate_limited
from rewards.http.session import (
    CitizenSession,
    clear_cookies,
    origin_of,
    same_origin,
    secure_cookies,
    set_citizen_cookie,
    set_console_cookie,
)
from rewards.logs import get_logger, install_redaction
from rewards.scoring.citizen_links import sign_in_linked

log = get_logger("oauth")
router = APIRouter(tags=["identity"])
C = Services
SignInLimit = Depends(rate_limited("sign_in", sign_in=True))

STATE_COOKIE = "rw_oauth"
STATE_MAX_AGE = 600  # seconds a citizen has to come back from WeChat's authorize page
DEFAULT_NEXT = "/me"
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def safe_next(value: str | None) -> str:
    """Return a same-site relative path to go to after sign-in; raise BadRequest for anything else."""
    if value is None or value == "":
        return DEFAULT_NEXT
    # Browsers treat "\" like "/" and drop tabs/newlines, so "/\evil.com" or "/\t/evil.com" mean "//evil.com".
    bad_char = any(ch == "\\" or ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    parts = urlsplit(value)
    if (
        len(value) > 512
        or bad_char
        or not value.startswith("/")
        or value.startswith("//")
        or parts.scheme
        or parts.netloc
    ):
        raise BadRequest("next must be a path on this site, e.g. /me", code="bad_redirect")
    return value


def make_state(secret: str, nonce: str) -> str:
    """Return the OAuth state for a nonce: nonce + HMAC, alphanumeric as WeChat requires."""
    mac = hmac.new(secret.encode(), b"oauth-state:" + nonce.encode(), hashlib.sha256).hexdigest()[:32]
    return nonce + mac


def state_matches(secret: str, state: str, nonce: str) -> bool:
    """Return True when state is the one made for this browser's nonce (constant-time comparison)."""
    return hmac.compare_digest(make_state(secret, nonce).encode(), state.encode())


def _state_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret.get_secret_value(), salt="rewards.oauth.state")


def authorize_url(settings: Settings, state: str) -> str:
    """Return WeChat's OAuth authorize URL (parameters in the order WeChat documents)."""
    if not settings.wechat_app_id:
        raise Unavailable("WeChat sign-in is not configured (REWARDS_WECHAT_APP_ID)", code="oauth_unconfigured")
    redirect_uri = settings.public_base_url.rstrip("/") + "/auth/wechat/callback"
    return (
        f"{settings.wechat_oauth_authorize_url}?appid={quote(settings.wechat_app_id, safe='')}"
        f"&redirect_uri={quote(redirect_uri, safe='')}&response_type=code&scope=snsapi_base"
        f"&state={state}#wechat_redirect"
    )


def exchange_code(settings: Settings, code: str) -> tuple[str, bool, str | None]:
    """Exchange an OAuth code for (openid, is_snapshotuser, unionid or None) at sns/oauth2/access_token."""
    if not settings.wechat_app_id or not settings.wechat_app_secret:
        raise Unavailable("WeChat sign-in is not configured (REWARDS_WECHAT_APP_SECRET)", code="oauth_unconfigured")
    install_redaction()
    params = {
        "appid": settings.wechat_app_id,
        "secret": settings.wechat_app_secret.get_secret_value(),
        "code": code,
        "grant_type": "authorization_code",
    }
    url = settings.wechat_sns_api_base.rstrip("/") + "/oauth2/access_token"
    try:
        with httpx.Client(timeout=settings.wechat_timeout_seconds) as http:
            response = http.get(url, params=params)
        body: Any = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("WeChat OAuth exchange failed: %s", type(exc).__name__)
        raise Unavailable("WeChat did not answer the sign-in, please retry", code="wechat_unavailable") from exc
    if not isinstance(body, dict):
        raise Unavailable("WeChat answered the sign-in with something unexpected", code="wechat_unavailable")
    if body.get("errcode"):
        # 40029 invalid code, 40163 code already used, 41008 missing code: the citizen should simply sign in again
        log.info("WeChat refused an OAuth code: errcode %s", body.get("errcode"))
        raise BadRequest("the sign-in code is invalid or was already used, please sign in again", code="bad_code")
    openid = body.get("openid")
    if not isinstance(openid, str) or not OPENID_RE.match(openid):
        raise Unavailable("WeChat answered the sign-in without an openid", code="wechat_unavailable")
    unionid = body.get("unionid")  # when the apps share an open-platform account: links the mini program's openid
    unionid = unionid if isinstance(unionid, str) and OPENID_RE.match(unionid) else None
    return openid, str(body.get("is_snapshotuser", "")) == "1", unionid


@router.get("/auth/wechat/login", dependencies=[SignInLimit])
def wechat_login(c: C, next: Annotated[str | None, Query(max_length=512)] = None) -> Response:
    """Start WeChat sign-in: remember where to return, redirect to WeChat's authorize page."""
    target = safe_next(next)
    nonce = secrets.token_hex(16)
    secret = c.settings.session_secret.get_secret_value()
    response = RedirectResponse(authorize_url(c.settings, make_state(secret, nonce)), 302)
    response.set_cookie(
        STATE_COOKIE,
        _state_serializer(c.settings).dumps({"n": nonce, "next": target}),
        max_age=STATE_MAX_AGE,
        path="/auth/wechat",
        httponly=True,
        samesite="lax",  # sent on WeChat's top-level redirect back to us
        secure=secure_cookies(c.settings),
    )
    return response


@router.get("/auth/wechat/callback", dependencies=[SignInLimit])
def wechat_callback(
    request: Request,
    c: C,
    codec: Codec,
    code: Annotated[str | None, Query(max_length=256)] = None,
    state: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Finish WeChat sign-in: check the state against this browser, exchange the code, set the session."""
    if not code or not CODE_RE.match(code):
        raise BadRequest("missing or malformed sign-in code", code="bad_code")
    cookie = request.cookies.get(STATE_COOKIE)
    remembered: Any = None
    if cookie and len(cookie) <= 2048:
        try:
            remembered = _state_serializer(c.settings).loads(cookie, max_age=STATE_MAX_AGE)
        except BadSignature:
            remembered = None
    nonce = remembered.get("n") if isinstance(remembered, dict) else None
    secret = c.settings.session_secret.get_secret_value()
    if not isinstance(nonce, str) or not state or not state_matches(secret, state, nonce):
        raise BadRequest("sign-in state does not match this browser (expired or forged), retry", code="bad_state")
    target = safe_next(remembered.get("next"))
    wechat_openid, snapshot, unionid = exchange_code(c.settings, code)
    with c.uow() as uow:  # the citizen this openid (or its unionid) is linked to; its canonical openid is the session's
        openid = sign_in_linked(uow.session, "mp", wechat_openid, unionid, c.clock.now(), snapshot_user=snapshot).openid
    response = RedirectResponse(target, 303)
    response.delete_cookie(
        STATE_COOKIE, path="/auth/wechat", httponly=True, samesite="lax", secure=secure_cookies(c.settings)
    )
    set_citizen_cookie(response, codec, CitizenSession(openid))
    return response


@router.get(
    "/auth/dev-login",
    dependencies=[SignInLimit],
    summary="DEVELOPMENT ONLY: sign in as any openid (404 unless REWARDS_DEV_LOGIN and environment=development)",
)
def dev_login(
    c: C,
    codec: Codec,
    openid: Annotated[str, Query(min_length=1, max_length=128)],
    next: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """DEVELOPMENT ONLY: sign in as any citizen without WeChat; the session is marked as a development one."""
    # Both conditions, checked here as well as in Settings, so no bypassed validation can enable it in production.
    if not (c.settings.dev_login is True and c.settings.environment == "development"):
        raise NotFound("not found")
    if not OPENID_RE.match(openid):
        raise BadRequest("openid must be 1-128 letters, digits, '_' or '-'", code="bad_openid")
    target = safe_next(next)
    with c.uow() as uow:
        sign_in_citizen(uow.session, openid, c.clock.now())
    log.warning("DEVELOPMENT sign-in used (REWARDS_DEV_LOGIN is on; never in production)")
    response = RedirectResponse(target, 303)
    set_citizen_cookie(response, codec, CitizenSession(openid, dev=True))
    return response


async def _posted_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            body = await request.json()
            token = body.get("token") if isinstance(body, dict) else None
        elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            token = (await request.form()).get("token")
        else:
            token = None
        if isinstance(token, str):
            token.encode("utf-8")  # JSON may carry "\ud800", which is not text (and no token)
    except (ValueError, UnicodeEncodeError) as exc:
        raise BadRequest("the body must be JSON or a form with a token field", code="bad_body") from exc
    return token.strip() if isinstance(token, str) and token.strip() else None


@router.post("/auth/console/login", dependencies=[SignInLimit])
async def console_login(request: Request, c: C, codec: Codec) -> Response:
    """Open a console session: post a validator's or admin's bearer token once (header, JSON or form `token`)."""
    token = await _posted_token(request)
    if token is None:
        raise Unauthorized("post a bearer token (Authorization header, or a `token` field)")
    session = codec.console_session_for(token)
    if session is None:
        raise Unauthorized("unknown token, or its role may not use the console")
    with c.uow() as uow:
        audit(uow.session, c.clock.now(), session.name, "console_sign_in", session.role)
    response: Response = JSONResponse({"name": session.name, "role": session.role})
    if _is_form(request):  # a browser's sign-in form: go to the console (POST/redirect/GET)
        response = RedirectResponse("/console", status_code=303)
    set_console_cookie(response, codec, session)
    return response


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )


def cross_site(request: Request, settings: Settings) -> bool:
    """Did a browser send this request from another origin (Origin, else Sec-Fetch-Site, else Referer)?

    Browsers send Origin with every POST (form posts included); a request with none of the three headers is not
    a browser's cross-site request (an API client, curl), so it is not refused.
    """
    if request.headers.get("origin") is not None:
        return not same_origin(request, settings)
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() not in ("same-origin", "none")
    referer = request.headers.get("referer")
    if not referer:
        return False
    return origin_of(referer) not in {origin_of(settings.public_base_url), origin_of(str(request.base_url))}


@router.post("/auth/logout", status_code=204)
def logout(request: Request, c: C) -> Response:
    """Sign out: clear the citizen and console session cookies (a browser form is sent back to 我的).

    A cross-origin sign-out (another site's form posting here) is refused with 403: SameSite keeps the cookies
    off such a request, but the cookie deletions in its answer would still apply.
    """
    if cross_site(request, c.settings):
        raise Forbidden("sign-out must come from this site", code="cross_site")
    response = RedirectResponse("/me", status_code=303) if _is_form(request) else Response(status_code=204)
    clear_cookies(response, c.settings)
    return response


@router.get("/auth/session")
def session_info(request: Request) -> dict[str, object]:
    """Who this browser is signed in as (the citizen's own openid is shown only to that citizen)."""
    principal = getattr(request.state, "console_principal", None)
    return {
        "citizen": request.state.citizen_openid,
        "dev": bool(request.state.citizen_dev),
        "console": {"name": principal.name, "role": principal.role} if principal is not None else None,
    }
