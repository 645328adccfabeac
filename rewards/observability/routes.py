"""/readyz and /metrics, and `install`: what create_app calls to add observability to an application.

/readyz is public (load balancers probe it): it names what is not ready and why, never a host, a credential or
an error message. /metrics needs `Authorization: Bearer <REWARDS_METRICS_TOKEN>` when that is set; without it,
only loopback clients may scrape (through a reverse proxy that sets X-Forwarded-For, the proxy's clients are not
loopback: uvicorn takes the client address from the header the proxy sets).
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from rewards.bootstrap import Container
from rewards.config import Settings
from rewards.errors import Forbidden, Unauthorized
from rewards.http.auth import bearer_token
from rewards.observability.metrics import BreakerOpenings, CommittedCounts, LiveState, Metrics, StoredState
from rewards.observability.multiproc import multiproc_dir
from rewards.observability.readiness import Readiness
from rewards.observability.requests import RequestContext


def install(app: FastAPI, container: Container) -> None:
    """Add /readyz, /metrics and the request middleware (call last: the middleware must be the outermost)."""
    metrics = Metrics(multiproc_dir())
    openings = BreakerOpenings(container.redis_breaker, metrics)
    metrics.read_on_scrape(LiveState(container.projector, container.redis_breaker, openings, time.monotonic))
    metrics.read_on_scrape(StoredState(container.db))
    CommittedCounts(metrics).install(container.db.sessions)
    readiness = Readiness(
        container.db, container.redis, container.redis_breaker, container.projector, container.settings
    )
    app.include_router(router(readiness, metrics, container.settings))
    app.add_middleware(RequestContext, metrics=metrics, routes=app.router.routes, after_request=openings.sync)


def router(readiness: Readiness, metrics: Metrics, settings: Settings) -> APIRouter:
    """The /readyz and /metrics routes."""
    ops = APIRouter(tags=["ops"])

    # not in the OpenAPI description: probes for load balancers and Prometheus, not part of the API
    @ops.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness probe: 200 when the database and Redis answer and the boards follow the ledger, else 503."""
        report = readiness.check()
        return JSONResponse(report.body(), status_code=report.status_code)

    @ops.get("/metrics", response_class=Response, include_in_schema=False)
    def prometheus(request: Request) -> Response:
        """Prometheus metrics (text exposition format); a bearer token or a loopback client (README)."""
        authorize_scrape(request, settings)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return ops


def authorize_scrape(request: Request, settings: Settings) -> None:
    """Let the scrape through with REWARDS_METRICS_TOKEN, or from loopback when no token is set; else refuse."""
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if expected:
        given = bearer_token(request)
        if given is None:
            raise Unauthorized("missing bearer token")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("invalid token")
        return
    if not is_loopback(request.client.host if request.client else ""):
        raise Forbidden("metrics are served to loopback clients only unless REWARDS_METRICS_TOKEN is set")


def is_loopback(host: str) -> bool:
    """Whether a client address is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
