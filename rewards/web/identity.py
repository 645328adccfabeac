"""Citizen identity wiring: the session middleware, the sign-in routes and the WeChat message callback."""

from __future__ import annotations

from fastapi import FastAPI

from rewards.http.session import SessionCodec, SessionMiddleware
from rewards.logs import install_redaction
from rewards.web.oauth import router as oauth_router
from rewards.web.wechat import router as wechat_router


def install(app: FastAPI, codec: SessionCodec) -> None:
    """Add the session middleware and the identity and WeChat routers to the app."""
    install_redaction()
    app.add_middleware(SessionMiddleware, codec=codec)
    app.include_router(oauth_router)
    app.include_router(wechat_router)
