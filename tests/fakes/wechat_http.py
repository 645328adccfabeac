"""The HTTP side of the stand-in WeChat server: parse a request, apply an injected fault, answer JSON."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.wechat_rules import Call, error_body

if TYPE_CHECKING:
    from tests.fakes.wechat_server import WeChatServer


def multipart(body: bytes, ctype: str) -> bytes | None:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
    )
    for part in message.iter_parts():  # type: ignore[attr-defined]
        if part.get_param("name", header="content-disposition") == "media":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


class Handler(BaseHTTPRequestHandler):
    """One request to the stand-in."""

    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the call log is on the server."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        wx: WeChatServer = self.server.stand_in  # type: ignore[attr-defined]
        with wx.idle:
            wx.in_flight += 1
        try:
            self._process(wx)
        finally:
            with wx.idle:
                wx.in_flight -= 1
                wx.idle.notify_all()

    def _process(self, wx: WeChatServer) -> None:
        parts = urlsplit(self.path)
        endpoint = parts.path.removeprefix("/cgi-bin/")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = self.headers.get("Content-Type", "")
        call = Call(endpoint, query, body if ctype.startswith("multipart/") else _json(body))
        with wx.lock:
            wx.calls.append(call)
        fault = wx._fault(endpoint)
        if fault and fault.kind == "errcode":
            return self._answer(call, 200, error_body(int(fault.value)))
        if fault and fault.kind == "http":
            return self._answer(call, int(fault.value), {"error": "stand-in server error"})
        if fault and fault.kind == "drop":
            call.answer = "dropped"
            return  # no answer at all: the client sees the connection close
        if fault and fault.kind == "slow":
            time.sleep(fault.value)
        status, answer = wx.handle(endpoint, query, body, ctype)
        if fault and fault.kind == "drop_after":
            call.answer = ("dropped after", answer)
            return
        self._answer(call, status, answer)

    def _answer(self, call: Call, status: int, answer: Any) -> None:
        call.answer = answer
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout)
            self.wfile.write(data)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return body
