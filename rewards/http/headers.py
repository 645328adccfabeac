"""Security headers on every response: a Content-Security-Policy, no framing, no MIME sniffing, no cross-site referrer.

The pages (rewards/web/templates) load their script-free markup, one stylesheet and photos: scripts may come from
this origin only, plus the one inline event handler the templates carry (the district picker of board.html),
allowed by its hash ('unsafe-hashes'); a test hashes every inline handler and <script> of the templates and
fails when one is not listed here. Styles may be inline (style attributes, the console's <style> block). Photos
are https URLs of the city's storage. The interactive API description (/docs, /redoc) loads Swagger UI and
ReDoc from jsDelivr with an inline bootstrap script, so it gets its own, looser policy.

A header the route set itself is kept. Responses of Starlette's last-resort 500 handler are sent outside the
application's middleware and carry none of these (the reverse proxy adds them: docs/deployment.md).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# sha256 of each inline event handler in the templates, as CSP source expressions
INLINE_HANDLER_HASHES = ("'sha256-5xJSenqv5/c3mC84sWfdvYMsnQXscNZb48J6svCWayA='",)  # board.html: district <select>

PAGE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-hashes' " + " ".join(INLINE_HANDLER_HASHES),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: https:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


def security_headers(path: str) -> list[tuple[str, str]]:
    """The headers every response to `path` carries."""
    csp = DOCS_CSP if path in DOCS_PATHS else PAGE_CSP
    return [("Content-Security-Policy", csp), *COMMON_HEADERS]


def with_security_headers(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Return raw ASGI headers with each security header added unless the response already has it."""
    present = {name.lower() for name, _ in headers}
    added = [
        (name.lower().encode(), value.encode())
        for name, value in security_headers(path)
        if name.lower().encode() not in present
    ]
    return [*headers, *added]


class SecurityHeaders:
    """ASGI middleware: adds the security headers to every HTTP response that passes through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, adding the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_security_headers(path, list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, send_with_headers)
