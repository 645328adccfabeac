"""rewards.http.lean_route.LeanRoute answers every request as FastAPI's own handler of the same route does (status,
body, content type), takes its lean path for well-formed requests, and leaves any other route shape to FastAPI."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from rewards.http.lean_route import Handler, LeanRoute, lean_plan


class BodyIn(BaseModel):
    """A verdict-like body: an enum, optional bounded strings, a number, no unknown fields."""

    model_config = ConfigDict(extra="forbid")
    verdict: Literal["valid", "invalid", "duplicate"]
    duplicate_of: str | None = Field(default=None, max_length=8)
    reason: str | None = Field(default=None, max_length=12)
    n: int = 0


async def principal(request: Request) -> str:
    """A credential check: refuses a request without the header, and one naming nobody."""
    token = request.headers.get("x-token")
    if token is None:
        raise HTTPException(401, "missing token")
    if token == "nobody":
        raise HTTPException(403, "nobody may")
    return token


async def service(request: Request) -> str:
    """A read of the request; counted: FastAPI calls a dependency used twice once per request. Refuses case ids
    beginning with "z" (before `principal` runs: dependencies run in the order they are declared)."""
    request.scope["service_calls"] = request.scope.get("service_calls", 0) + 1
    if request.path_params.get("case_id", "").startswith("z"):
        raise HTTPException(409, "z is taken")
    return f"service of {request.url.path}"


async def constant() -> int:
    return 7


async def endpoint(
    case_id: str,
    k: int,
    body: BodyIn,
    same: Annotated[str, Depends(service)],
    svc: Annotated[str, Depends(service)],
    who: Annotated[str, Depends(principal)],
    seven: Annotated[int, Depends(constant)],
    request: Request,
) -> Response:
    calls = request.scope["service_calls"]
    return JSONResponse(
        {
            "case_id": case_id,
            "k": k,
            "body": body.model_dump(),
            "svc": svc,
            "who": who,
            "same": same == svc,
            "seven": seven,
            "path": request.url.path,
            "calls": calls,
        }
    )


LEAN_CALLS: list[str] = []  # paths the lean path answered (the fallback is FastAPI's handler)
GENERAL_CALLS: list[str] = []


class CountedLeanRoute(LeanRoute):
    """LeanRoute that notes which handler answered."""

    def general_handler(self) -> Handler:
        general = super().general_handler()

        async def counted(request: Request) -> Response:
            GENERAL_CALLS.append(request.url.path)
            return await general(request)

        return counted


def build(route_class: type[LeanRoute] | None) -> FastAPI:
    """The endpoint under an included router with a prefix, served by route_class (None: FastAPI's APIRoute)."""
    app = FastAPI()
    router = APIRouter(prefix="/api/cases")
    if route_class is None:
        router.add_api_route("/{case_id}/verdict/{k}", endpoint, methods=["POST"])
    else:
        router.add_api_route("/{case_id}/verdict/{k}", endpoint, methods=["POST"], route_class_override=route_class)
    app.include_router(router)
    return app


GENERAL = TestClient(build(None), raise_server_exceptions=False)
LEAN_APP = build(CountedLeanRoute)
LEAN = TestClient(LEAN_APP, raise_server_exceptions=False)

values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=14), st.sampled_from(["valid", "invalid", "dup"])
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"verdict": st.sampled_from(["valid", "invalid", "duplicate"])},
        optional={"duplicate_of": values, "reason": values, "n": values, "extra": values},
    ).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(st.sampled_from(["verdict", "reason", "n", "x"]), values, max_size=4).map(
        lambda d: json.dumps(d).encode()
    ),
    st.recursive(values, lambda inner: st.lists(inner, max_size=3), max_leaves=5).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"{", b'{"verdict": "valid",}', b"\xff\xfe", b"null", b'"valid"', b"verdict=valid"]),
    st.binary(max_size=12),
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/problem+json",
        "application/x-www-form-urlencoded",
        "APPLICATION/JSON",
    ]
)
tokens = st.sampled_from([None, "nobody", "desk-1"])
case_ids = st.text(alphabet="AZaz09-_.~", min_size=1, max_size=8)  # "z…" is refused by `service`
ks = st.one_of(st.integers(-3, 99).map(str), st.sampled_from(["x", "1.5", "", "00"]))


def answer(client: TestClient, path: str, body: bytes, content_type: str | None, token: str | None) -> Any:
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if token is not None:
        headers["x-token"] = token
    reply = client.post(path, content=body, headers=headers)
    return reply.status_code, reply.headers.get("content-type"), reply.content


@given(case_id=case_ids, k=ks, body=bodies, content_type=content_types, token=tokens)
def test_lean_and_general_answer_alike(
    case_id: str, k: str, body: bytes, content_type: str | None, token: str | None
) -> None:
    path = f"/api/cases/{case_id}/verdict/{k}"
    assert answer(LEAN, path, body, content_type, token) == answer(GENERAL, path, body, content_type, token)


def test_well_formed_requests_take_the_lean_path() -> None:
    GENERAL_CALLS.clear()
    status, _, content = answer(
        LEAN, "/api/cases/C1/verdict/3", b'{"verdict": "valid", "n": 2}', "application/json", "d"
    )
    assert status == 200 and GENERAL_CALLS == []
    assert json.loads(content) == {
        "case_id": "C1",
        "k": 3,
        "body": {"verdict": "valid", "duplicate_of": None, "reason": None, "n": 2},
        "svc": "service of /api/cases/C1/verdict/3",
        "who": "d",
        "same": True,
        "seven": 7,
        "path": "/api/cases/C1/verdict/3",
        "calls": 1,
    }
    # parameters and a body the endpoint refuses are answered on the lean path too, with FastAPI's 422 (every error),
    # and a dependency's refusal as FastAPI gives it (the first declared dependency that refuses)
    for path, body, token, status in [
        ("/api/cases/C1/verdict/x", b'{"verdict": "no", "n": "a", "more": 1}', "d", 422),
        ("/api/cases/C1/verdict/3", b'{"verdict": "valid"}', None, 401),
        ("/api/cases/zz/verdict/x", b'{"verdict": "no"}', None, 409),
    ]:
        lean = answer(LEAN, path, body, "application/json", token)
        assert lean[0] == status and lean == answer(GENERAL, path, body, "application/json", token)
    assert GENERAL_CALLS == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"{", "application/json"),
        (b"\xff", "application/json"),
        (b"{}", None),
        (b"{}", "text/plain"),
        (b"{}", "application/json; charset=utf-8"),
    ],
)
def test_bodies_the_lean_path_does_not_parse_go_to_fastapi(body: bytes, content_type: str | None) -> None:
    GENERAL_CALLS.clear()
    answer(LEAN, "/api/cases/C1/verdict/3", body, content_type, "d")
    assert GENERAL_CALLS == ["/api/cases/C1/verdict/3"]


def test_a_body_over_fastapis_limit_is_refused_alike() -> None:
    def capped(route_class: type[LeanRoute] | None) -> TestClient:
        app = FastAPI()
        kind = {} if route_class is None else {"route_class_override": route_class}
        app.router.add_api_route("/{case_id}/verdict/{k}", endpoint, methods=["POST"], max_body_size=16, **kind)
        return TestClient(app, raise_server_exceptions=False)

    def streamed(client: TestClient) -> tuple[int, bytes]:  # chunked, no length: refused while it is read
        body = json.dumps({"verdict": "valid", "reason": "long enough"}).encode()
        headers = {"content-type": "application/json", "x-token": "d"}
        reply = client.post("/C1/verdict/3", content=iter([body[:10], body[10:]]), headers=headers)
        return reply.status_code, reply.content

    lean = streamed(capped(LeanRoute))
    assert lean[0] == 413 and lean == streamed(capped(None))


def test_dependency_overrides_are_honoured() -> None:
    async def someone(request: Request) -> str:
        return "overridden"

    LEAN_APP.dependency_overrides[principal] = someone
    try:
        status, _, content = answer(LEAN, "/api/cases/C1/verdict/3", b'{"verdict": "valid"}', "application/json", None)
    finally:
        LEAN_APP.dependency_overrides.clear()
    assert status == 200 and json.loads(content)["who"] == "overridden"


def plan_of(function: Any, path: str = "/{case_id}") -> object:
    router = APIRouter()
    router.add_api_route(path, function, methods=["POST"], route_class_override=LeanRoute)
    route = router.routes[0]
    return lean_plan(route.dependant, route.body_field, route._embed_body_fields)  # type: ignore[attr-defined]


def test_other_shapes_keep_fastapis_handler() -> None:
    async def lean(case_id: str, body: BodyIn, who: Annotated[str, Depends(principal)]) -> Response:
        return Response()

    async def with_query(case_id: str, q: int = 0) -> Response:
        return Response()

    def plain_def(case_id: str, body: BodyIn) -> Response:
        return Response()

    async def model_answer(case_id: str, body: BodyIn) -> BodyIn:
        return body

    async def nested(case_id: str, who: Annotated[str, Depends(lambda who=Depends(principal): who)]) -> Response:
        return Response()

    async def sync_dependency(case_id: str, x: Annotated[int, Depends(lambda: 1)]) -> Response:
        return Response()

    async def two_bodies(case_id: str, a: BodyIn, b: BodyIn) -> Response:
        return Response()

    async def wants_response(case_id: str, response: Response) -> Response:
        return response

    assert plan_of(lean) is not None
    for function in (with_query, plain_def, model_answer, nested, sync_dependency, two_bodies, wants_response):
        assert plan_of(function) is None, function.__name__


def test_the_verdict_route_is_lean() -> None:
    from rewards.api.cases import router

    (route,) = [r for r in router.routes if getattr(r, "path", "").endswith("/verdict")]
    assert isinstance(route, LeanRoute)
    assert lean_plan(route.dependant, route.body_field, route._embed_body_fields) is not None
