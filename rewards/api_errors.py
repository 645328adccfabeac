"""OpenAPI declaration of error bodies: what a 422 really looks like, so the schema matches every answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """Every DomainError's body: a machine-readable code and the reason in words."""

    error: str
    detail: str


class FieldErrorOut(BaseModel):
    """One problem FastAPI found while validating a request (its location, message and kind)."""

    loc: list[str | int]
    msg: str
    type: str


class RequestValidationOut(BaseModel):
    """FastAPI's answer to a request that does not match the declared parameters or body."""

    detail: list[FieldErrorOut]


# A 422 is either FastAPI's validation answer or a DomainError (Invalid: an unknown category, a malformed week ...);
# FastAPI's default declaration only knows the former, so declare both for every operation.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorOut | RequestValidationOut,
        "description": "Invalid request: {error, detail} with the reason, or FastAPI's per-field list",
    },
}
