"""Intake webhook and Open311 routes, mounted by the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from intake_adapter import auth, inbox
from intake_adapter import open311 as o311
from intake_adapter.open311_submit import (
    case_id_for,
    check_api_key,
    form_api_key,
    parse_submission,
    service_notice,
    single_values,
)
from intake_adapter.service import IntakeService
from rewards.cases import service as cases
from rewards.cases.commands import Actor, ReportCase
from rewards.db import Database
from rewards.deps import PUBLIC, ClockDep, Db, Flows, Services, SettingsDep
from rewards.errors import DomainError
from rewards.flows import CaseFlows
from rewards.http.limits import INTAKE_MAX_BYTES, too_large

MAX_BODY_BYTES = INTAKE_MAX_BYTES  # also enforced while streaming, before the route runs (rewards/http/limits.py)

intake_router = APIRouter(prefix="/intake/v1", tags=["intake"])
open311_router = APIRouter(prefix="/open311/v2", tags=["open311"])
Public = PUBLIC  # the GETs are public: per IP (and per signed-in citizen), 429 with Retry-After


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large(MAX_BODY_BYTES)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large(MAX_BODY_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


@intake_router.post("/events", summary="Signed events from the city's case system (see docs/intake.md)")
async def receive_events(request: Request, c: Services) -> JSONResponse:
    """Verify the signature, store every event in the inbox and apply it; per-event results in the body."""
    # an unsigned request is refused before its body is read; the signature itself needs the body
    auth.check_headers(request.headers.get(auth.TIMESTAMP_HEADER), request.headers.get(auth.SIGNATURE_HEADER))
    body = await _read_body(request)
    auth.verify(
        secret=c.settings.intake_secret.get_secret_value(),
        window_seconds=c.settings.intake_replay_window_seconds,
        now=c.clock.now(),
        timestamp=request.headers.get(auth.TIMESTAMP_HEADER),
        signature_header=request.headers.get(auth.SIGNATURE_HEADER),
        body=body,
    )
    events = inbox.parse_body(body)
    outcome = await run_in_threadpool(IntakeService.of(c).receive, events)
    return JSONResponse(outcome.body(), status_code=outcome.status_code)


# -- Open311 GeoReport v2 --------------------------------------------------------------------------------------


@contextmanager
def _spec_errors(fmt: str) -> Iterator[None]:
    """Report every failure inside an Open311 route in the spec's error format and the URL's format."""
    if fmt not in o311.FORMATS:
        raise o311.Open311Error(404, f"unknown format {fmt!r}: use .json or .xml", "json")
    try:
        yield
    except o311.Open311Error as exc:
        exc.fmt = exc.fmt or fmt
        raise
    except DomainError as exc:
        status = 400 if exc.status == 422 else exc.status  # the spec's "required field missing or invalid"
        raise o311.Open311Error(status, exc.message, fmt) from exc


def _reply(fmt: str, data: Any, root: str, item: str | None = None, status: int = 200) -> Response:
    return Response(o311.render(fmt, data, root, item), status_code=status, media_type=o311.MEDIA_TYPES[fmt])


@open311_router.get("/discovery.{fmt}", dependencies=Public, summary="Open311 service discovery")
def discovery(fmt: str, settings: SettingsDep) -> Response:
    """Where the endpoint is and which formats it speaks."""
    with _spec_errors(fmt):
        return _reply(fmt, o311.discovery(settings), "discovery")


@open311_router.get("/services.{fmt}", dependencies=Public, summary="Open311 service list (the report categories)")
def services(fmt: str, request: Request, settings: SettingsDep) -> Response:
    """The category table as Open311 services."""
    with _spec_errors(fmt):
        o311.check_jurisdiction(request.query_params.get("jurisdiction_id"), settings, fmt)
        return _reply(fmt, [o311.service_view(cat) for cat in settings.categories], "services", "service")


@open311_router.get("/services/{service_code}.{fmt}", dependencies=Public, summary="Open311 service definition")
def service_definition(service_code: str, fmt: str, request: Request, settings: SettingsDep) -> Response:
    """One service's definition (no extra attributes)."""
    with _spec_errors(fmt):
        o311.check_jurisdiction(request.query_params.get("jurisdiction_id"), settings, fmt)
        cat = settings.category(service_code)
        if cat is None:
            raise o311.Open311Error(404, f"service_code {service_code!r} was not found")
        return _reply(fmt, o311.service_definition(cat), "service_definition")


@open311_router.get("/requests.{fmt}", dependencies=Public, summary="Open311 service requests (spec filters)")
def list_requests(fmt: str, request: Request, db: Db, settings: SettingsDep, clock: ClockDep) -> Response:
    """Requests by id, or by service_code, date range (90 days at most) and open/closed status."""
    with _spec_errors(fmt):
        params = {k: request.query_params.getlist(k) for k in request.query_params}
        o311.check_jurisdiction(request.query_params.get("jurisdiction_id"), settings, fmt)
        query = o311.parse_query(params, settings, clock.now())
        with db.read() as session:
            rows = [o311.request_view(case, settings) for case in o311.find_requests(session, query)]
        return _reply(fmt, rows, "service_requests", "request")


@open311_router.get("/requests/{service_request_id}.{fmt}", dependencies=Public, summary="Open311 one service request")
def show_request(service_request_id: str, fmt: str, request: Request, db: Db, settings: SettingsDep) -> Response:
    """One request, as a one-element list (as the spec renders it)."""
    with _spec_errors(fmt):
        o311.check_jurisdiction(request.query_params.get("jurisdiction_id"), settings, fmt)
        with db.read() as session:
            case = cases.find_case(session, service_request_id)
            if case is None:
                raise o311.Open311Error(404, f"service_request_id {service_request_id!r} was not found")
            row = o311.request_view(case, settings)
        return _reply(fmt, [row], "service_requests", "request")


@open311_router.post("/requests.{fmt}", summary="Open311 create a service request (a citizen's report)")
async def create_request(
    fmt: str, request: Request, db: Db, flows: Flows, settings: SettingsDep, clock: ClockDep
) -> Response:
    """Register a report; the Idempotency-Key header makes a retried POST return the same request.

    The api_key is checked before the form is parsed: from the query string (GeoReport allows it there) before
    the body is even read, else from the urlencoded body before any other field is decoded. A multipart form is
    parsed first (within the route's 64 KiB body cap, rewards/http/limits.py), then its key checked.
    """
    with _spec_errors(fmt):
        query_key = request.query_params.get("api_key")
        key_index = check_api_key(query_key, settings.open311_api_keys) if query_key is not None else None
        raw = await request.body()  # at most OPEN311_MAX_BYTES: the body-limit middleware refuses more (413)
        if key_index is None and _urlencoded(request):
            key_index = check_api_key(form_api_key(raw), settings.open311_api_keys)
        form = await _parsed_form(request)
        if key_index is None:
            key_index = check_api_key(form.get("api_key"), settings.open311_api_keys)
        elif "api_key" in form and query_key is not None:
            raise o311.Open311Error(400, "api_key was sent both in the query string and in the form")
        o311.check_jurisdiction(form.get("jurisdiction_id"), settings, fmt)
        case_id = case_id_for(key_index, request.headers.get("idempotency-key"))
        report = parse_submission(form, settings, case_id, clock.now())
        actor = Actor(f"open311-key-{key_index + 1}", "open311")
        created = await run_in_threadpool(_register, db, flows, report, actor)
        body = [{"service_request_id": case_id, "service_notice": service_notice(report), "account_id": None}]
        return _reply(fmt, body, "service_requests", "request", status=201 if created else 200)


def _urlencoded(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")


async def _parsed_form(request: Request) -> dict[str, str]:
    try:
        form_data = await request.form()
    except Exception as exc:  # malformed multipart/urlencoded bodies surface as assorted parser errors
        raise o311.Open311Error(400, f"the form could not be read: {exc}") from exc
    return single_values([(k, v) for k, v in form_data.multi_items() if isinstance(v, str)])


def _register(db: Database, flows: CaseFlows, report: ReportCase, actor: Actor) -> bool:
    with db.uow() as uow:
        _, created = flows.report(uow, report, actor)
    return created


def _open311_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, o311.Open311Error)
    fmt = exc.fmt or "json"
    return _reply(fmt, o311.errors(exc.status, exc.description), "errors", "error", status=exc.status)


def mount(app: FastAPI) -> None:
    """Attach the intake adapter's routers to the app."""
    app.include_router(intake_router)
    app.include_router(open311_router)
    handler: Callable[[Request, Exception], Response] = _open311_error_handler
    app.add_exception_handler(o311.Open311Error, handler)
