"""create_app(): the FastAPI application, its routers and the one error handler."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError

from intake_adapter.routes import mount as mount_intake
from rewards.api import auth as auth_api
from rewards.api import cases, citizens, leaderboards, publications
from rewards.api import ratings as rating_api
from rewards.api import review as review_api
from rewards.api import stats as stats_api
from rewards.api_errors import ERROR_RESPONSES
from rewards.bootstrap import Container
from rewards.errors import DomainError, TooManyRequests
from rewards.http.headers import SecurityHeaders
from rewards.http.limits import BodyLimits
from rewards.logs import get_logger
from rewards.observability.routes import install as install_observability
from rewards.web import console, console_followups, console_review, docs, me_ratings, routes
from rewards.web import errors as web_errors
from rewards.web import review as review_pages
from rewards.web import stats as stats_page
from rewards.web.identity import install as install_identity

log = get_logger("app")


def error_body(code: str, message: str) -> dict[str, str]:
    """Return the JSON body every error response uses."""
    return {"error": code, "detail": message}


def create_app(container: Container) -> FastAPI:
    """Build the web application around a container."""
    app = FastAPI(
        title="rewards",
        summary="Incentive engine of the 随手拍 urban-management reporting program",
        version="0.1.0",
        responses=ERROR_RESPONSES,
        docs_url=None,  # /docs and /redoc are served with packaged assets by rewards.web.docs (no CDN)
        redoc_url=None,
        # our own metrics (/metrics) and request logs observe every request; FastAPI's OpenTelemetry layer would ask
        # the (unconfigured) global providers on every request whether it is on
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    app.state.http = container.http  # what the HTTP machinery (auth, rate limits, sessions) reads

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status in (401,):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer, but escaped to ASCII: it echoes each input, and a lone surrogate ("\ud800" is valid
        # JSON) cannot be encoded as UTF-8, which turned a 422 into a 500
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # the database refused a value the request carried (NUL in a path or query, a number out of range)
        log.warning("database refused a request's value: %s", type(exc.orig).__name__)
        message = "a value in the request cannot be stored or searched for (a NUL character, or out of range)"
        return JSONResponse(error_body("invalid_value", message), status_code=422)

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(error_body("unavailable", "the database is unavailable, please retry"), status_code=503)

    for api in (cases, citizens, leaderboards, publications):
        app.include_router(api.router)
    app.include_router(auth_api.router)  # the mini program's sign-in (POST /api/v1/auth/wxa)
    app.include_router(rating_api.router)  # a citizen rates a handled report (issue 14)
    app.include_router(stats_api.router)  # the public city-management record as JSON (issue 14)
    app.include_router(routes.router)
    app.include_router(stats_page.router)  # /stats: the same record as a page with SVG charts
    app.include_router(me_ratings.router)  # 我的: the rating form's POST
    app.include_router(review_api.router)  # 公示: review status, list versions, a citizen's objections and claims
    app.include_router(review_pages.router)  # 公示 on the week page: sealed versions, the objection form's POST
    # body caps and staff credentials before any body is read; inside the session middleware, which it reads
    app.add_middleware(BodyLimits, tokens=container.http.tokens)
    install_identity(app, container.http.codec)  # session middleware, sign-in routes, WeChat callback
    app.include_router(console.router)
    app.include_router(console_followups.router)  # 不满意 with a comment: follow-ups for departments
    app.include_router(console_review.router)  # objections with evidence, decisions, claim redemption, payouts
    routes.mount_static(app)
    docs.install(app)
    web_errors.install(app)  # browsers get HTML pages with the same status, API clients the JSON above
    mount_intake(app)
    app.add_middleware(SecurityHeaders)  # outermost of ours: pages, API answers and their errors all carry them

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok"}

    # /readyz (readiness) and /metrics beside it; the request-id and latency middleware, added last: the outermost
    install_observability(app, container)
    return app
