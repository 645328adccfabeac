"""A stand-in for WeChat's web OAuth token endpoint (sns/oauth2/access_token): a real HTTP server on 127.0.0.1.

Codes are registered with the openid (and is_snapshotuser flag) WeChat would return; a code works once, like
WeChat's (40163 "code been used" the second time); unknown codes get 40029 "invalid code". Every request is
recorded so tests can check what the service sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http_server import start_server


@dataclass
class OAuthStandIn:
    """The server's state: codes it will accept, and the requests it saw."""

    app_id: str
    secret: str
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, code: str, openid: str, *, snapshot: bool = False) -> None:
        """Make WeChat hand out `code` for a user with this openid."""
        self.codes[code] = {"openid": openid, "snapshot": snapshot}

    def answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """Return WeChat's JSON answer to a request."""
        with self.lock:
            self.requests.append({"path": path, **query})
            if path != "/sns/oauth2/access_token":
                return {"errcode": 40001, "errmsg": "invalid path"}
            if query.get("appid") != self.app_id or query.get("secret") != self.secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            if query.get("grant_type") != "authorization_code":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            code = query.get("code", "")
            if code in self.used:
                return {"errcode": 40163, "errmsg": "code been used"}
            issued = self.codes.get(code)
            if issued is None:
                return {"errcode": 40029, "errmsg": "invalid code"}
            self.used.add(code)
        body: dict[str, Any] = {
            "access_token": "ACCESS_TOKEN_" + code,
            "expires_in": 7200,
            "refresh_token": "REFRESH_TOKEN_" + code,
            "openid": issued["openid"],
            "scope": "snsapi_base",
        }
        if issued["snapshot"]:
            body["is_snapshotuser"] = 1
        return body


def serve(state: OAuthStandIn) -> tuple[ThreadingHTTPServer, str]:
    """Start the stand-in on a free loopback port; return the server and its sns API base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            data = json.dumps(state.answer(parts.path, query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; encoding=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = start_server(Handler)
    return server, f"http://127.0.0.1:{server.server_address[1]}/sns/"
