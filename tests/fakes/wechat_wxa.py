"""A stand-in for WeChat's sign-in endpoints of both apps, a real HTTP server on 127.0.0.1.

- `/sns/jscode2session` (the mini program's code2Session): codes are issued for an openid, with a session_key
  and optionally a unionid; a code works once (40163 "code been used" the second time), an unknown code gets
  40029 "invalid code", and `limit(n)` makes the next n calls answer 45011 (WeChat's per-minute quota) without
  using the code, `busy(n)` answers -1 "system error".
- `/sns/oauth2/access_token` (the official account's web OAuth), the same way, with an optional unionid.
- `/cgi-bin/token`: answered, and counted (code2Session needs no access token: tests check none is fetched).

The two apps have their own AppID and AppSecret, checked as WeChat checks them. Every request is recorded.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http_server import start_server

WXA_APP_ID = "wxminiprogram0001"
WXA_SECRET = "stand-in-wxa-secret-91c3"
MP_APP_ID = "wxofficialacct001"
MP_SECRET = "stand-in-mp-secret-7d20"


@dataclass
class Issued:
    """A code WeChat handed out and the person it stands for."""

    openid: str
    unionid: str | None
    session_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))


@dataclass
class WxaStandIn:
    """The server's state: codes per app, used codes, injected refusals, and the requests it saw."""

    wxa_codes: dict[str, Issued] = field(default_factory=dict)
    mp_codes: dict[str, Issued] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    limited: int = 0
    busy_left: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget every code, refusal and request."""
        with self.lock:
            self.wxa_codes.clear()
            self.mp_codes.clear()
            self.used.clear()
            self.limited = self.busy_left = 0
            self.requests.clear()

    def issue_wxa(self, code: str, openid: str, unionid: str | None = None) -> Issued:
        """Make wx.login hand out `code` for a mini-program user."""
        issued = Issued(openid, unionid)
        self.wxa_codes[code] = issued
        return issued

    def issue_mp(self, code: str, openid: str, unionid: str | None = None) -> Issued:
        """Make the official account's OAuth hand out `code` for a user."""
        issued = Issued(openid, unionid)
        self.mp_codes[code] = issued
        return issued

    def limit(self, times: int = 1) -> None:
        """Answer the next `times` code2Session calls with 45011 (rate limited)."""
        self.limited = times

    def busy(self, times: int = 1) -> None:
        """Answer the next `times` code2Session calls with -1 (system busy)."""
        self.busy_left = times

    def calls(self, path: str) -> list[dict[str, str]]:
        """The recorded requests to one path."""
        return [r for r in self.requests if r["path"] == path]

    def answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """Return WeChat's JSON answer to a request."""
        with self.lock:
            self.requests.append({"path": path, **query})
            if path == "/cgi-bin/token":
                return {"access_token": "stand-in-token", "expires_in": 7200}
            if path == "/sns/jscode2session":
                return self._code2session(query)
            if path == "/sns/oauth2/access_token":
                return self._oauth(query)
            return {"errcode": 40066, "errmsg": "invalid url"}

    def _code2session(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("appid") != WXA_APP_ID or query.get("secret") != WXA_SECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if self.limited > 0:
            self.limited -= 1
            return {"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"}
        if self.busy_left > 0:
            self.busy_left -= 1
            return {"errcode": -1, "errmsg": "system error"}
        return self._spend(query.get("js_code", ""), self.wxa_codes, wxa=True)

    def _oauth(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("appid") != MP_APP_ID or query.get("secret") != MP_SECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        return self._spend(query.get("code", ""), self.mp_codes, wxa=False)

    def _spend(self, code: str, codes: dict[str, Issued], *, wxa: bool) -> dict[str, Any]:
        if code in self.used:
            return {"errcode": 40163, "errmsg": "code been used"}
        issued = codes.get(code)
        if issued is None:
            return {"errcode": 40029, "errmsg": "invalid code"}
        self.used.add(code)
        body: dict[str, Any] = {"openid": issued.openid}
        if wxa:
            body["session_key"] = issued.session_key
        else:
            body.update(access_token="ACCESS_" + code, expires_in=7200, refresh_token="REFRESH_" + code)
            body["scope"] = "snsapi_base"
        if issued.unionid is not None:
            body["unionid"] = issued.unionid
        return body


def serve(state: WxaStandIn) -> tuple[ThreadingHTTPServer, str]:
    """Start the stand-in on a free loopback port; return the server and its host base URL (ends in '/')."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            data = json.dumps(state.answer(parts.path, query)).encode()
            self.send_response(200)  # WeChat answers its refusals with HTTP 200 and an errcode
            self.send_header("Content-Type", "application/json; encoding=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = start_server(Handler)
    return server, f"http://127.0.0.1:{server.server_address[1]}/"
