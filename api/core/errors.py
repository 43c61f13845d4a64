"""RFC 9457 problem details for every error the API returns.

Services raise the `Problem` subclasses below (they know nothing of HTTP beyond a status
number); one set of handlers turns them, request-validation errors, unknown routes and
anything unexpected into `application/problem+json`. Unexpected errors are masked: the
client sees a request id to quote, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://chairfill.dev/problems/"

log = structlog.get_logger(__name__)


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    request_id: str | None = None


class Problem(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError | dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = [e if isinstance(e, FieldError) else FieldError(**e) for e in errors or []]
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
        }
        if self.errors:
            body["errors"] = [e.model_dump() for e in self.errors]
        if request_id:
            body["request_id"] = request_id
        body.update(self.extra)
        return body


class ValidationProblem(Problem):
    status = 422
    slug = "validation-error"
    title = "The request is not valid"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="chairfill"'})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class MissingScope(Forbidden):
    slug = "insufficient-scope"
    title = "The token lacks a required scope"

    def __init__(self, scopes: Sequence[str]) -> None:
        needed = " or ".join(scopes)
        super().__init__(
            f"This operation needs the scope {needed}.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
            extra={"required_scopes": list(scopes)},
        )


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict"


class IdempotencyKeyInFlight(Conflict):
    slug = "idempotency-key-in-flight"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyReused(Problem):
    status = 422
    slug = "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyKeyRequired(Problem):
    status = 400
    slug = "idempotency-key-required"
    title = "This operation requires an Idempotency-Key header"


class RateLimited(Problem):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(Problem):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"


class InternalError(Problem):
    status = 500
    slug = "internal-error"
    title = "Internal server error"


class HTTPStatusProblem(Problem):
    """A bare HTTP status from the framework (unknown route, wrong method) or a library."""

    def __init__(self, status: int, detail: str | None, path: str, method: str, **kw: Any) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        self.status = status
        self.title = phrase
        self.slug = phrase.lower().replace(" ", "-")
        # Starlette fills a missing detail with the status phrase: that says nothing new.
        specific = detail if detail and detail != phrase else None
        if specific is None and status == 404:
            specific = f"There is no resource at {path}."
        elif specific is None and status == 405:
            allowed = (kw.get("headers") or {}).get("Allow")
            specific = f"{method} is not allowed on {path}." + (
                f" Allowed: {allowed}." if allowed else ""
            )
        super().__init__(specific, **kw)


def _field_path(err: dict[str, Any]) -> str:
    # ("body", "address", "city") -> "address.city"; ("query", "limit") -> "limit"
    if err.get("type") == "json_invalid":
        # The location is a character offset into the body; the field is the body itself.
        return "body"
    parts = [str(p) for p in err.get("loc", ())]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts) if parts else "body"


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    body = problem.body(request_id)
    body.setdefault("instance", request.url.path)
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def internal_error() -> InternalError:
    return InternalError(
        "Something went wrong on our side. Quote the request id when reporting it."
    )


def validation_problem(exc: RequestValidationError) -> ValidationProblem:
    errors = []
    for err in exc.errors():
        message = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            message = "The body is not valid JSON"
        errors.append(FieldError(field=_field_path(err), message=message))
    fields = ", ".join(sorted({e.field for e in errors}))
    return ValidationProblem(f"Check these fields: {fields}.", errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(request, validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = HTTPStatusProblem(
            exc.status_code,
            exc.detail,
            request.url.path,
            request.method,
            headers=dict(exc.headers or {}),
        )
        return problem_response(request, problem)

    def _database_problem(request: Request, sqlstate: str) -> JSONResponse:
        # SQLSTATE class 22 ("data exception": a NUL character in text, a number or date out
        # of range) is bad input that slipped past validation: answer 422, never a 500.
        if sqlstate.startswith("22"):
            return problem_response(
                request,
                ValidationProblem(
                    "A value in the request cannot be stored (for example a NUL character, "
                    "or a number or date out of range)."
                ),
            )
        log.exception("database_error", path=request.url.path, sqlstate=sqlstate)
        return problem_response(request, internal_error())

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", "") or "")
        return _database_problem(request, sqlstate)

    # The bulk paths (sync COPY, raw reads) talk to asyncpg directly, past SQLAlchemy.
    @app.exception_handler(asyncpg.PostgresError)
    async def _driver(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        return _database_problem(request, str(exc.sqlstate or ""))

    # The request middleware masks unexpected errors first (so the 500 carries the request
    # id header); this handler is the last resort for anything raised outside it.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(request, internal_error())


# Documented once in OpenAPI and reused on every route.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        "description": HTTPStatus(status).phrase,
    }
    for status in (400, 401, 403, 404, 409, 422, 429)
}
