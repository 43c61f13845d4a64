"""GraphQL errors: expected ones pass through, everything else is masked.

Expected errors are the `Problem`s services raise (mapped to
`extensions {code, status, type, ...}`, e.g. `NOT_FOUND`, `VALIDATION_ERROR`), GraphQL
errors we raise on purpose (they already carry a `code`), and parse/validation errors of
the document. Anything else answers "Unexpected error." with the request id to quote; the
original exception is logged, never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from api.core.errors import PROBLEM_BASE, MissingScope, Problem, Unauthorized

log = structlog.get_logger("chairfill.graphql")

MASKED_MESSAGE = "Unexpected error."


def problem_code(problem: Problem) -> str:
    """`not-found` -> `NOT_FOUND`; authentication and scope problems use the names GraphQL
    clients know (`UNAUTHENTICATED`, `FORBIDDEN`)."""
    if isinstance(problem, Unauthorized):
        return "UNAUTHENTICATED"
    if isinstance(problem, MissingScope):
        return "FORBIDDEN"
    return problem.slug.upper().replace("-", "_")


def problem_extensions(problem: Problem, request_id: str | None) -> dict[str, Any]:
    extensions: dict[str, Any] = {
        "code": problem_code(problem),
        "status": problem.status,
        "type": PROBLEM_BASE + problem.slug,
    }
    if problem.errors:
        extensions["errors"] = [e.model_dump() for e in problem.errors]
    extensions.update(problem.extra)
    if request_id:
        extensions["request_id"] = request_id
    return extensions


def is_expected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, (Problem, GraphQLError))


def _request_id(execution_context: ExecutionContext) -> str | None:
    return getattr(execution_context.context, "request_id", None)


def public_error(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The error as the client may see it."""
    original = error.original_error
    if isinstance(original, Problem):
        return GraphQLError(
            original.detail or original.title,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=problem_extensions(original, request_id),
        )
    if is_expected(error):
        if not (error.extensions or {}).get("code"):
            # Parse, validation and variable errors of the document itself.
            error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
        return error
    return masked_error(error, request_id)


def masked_error(error: GraphQLError | None, request_id: str | None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": "INTERNAL_SERVER_ERROR"}
    if request_id:
        extensions["request_id"] = request_id
    if error is None:
        return GraphQLError(MASKED_MESSAGE, extensions=extensions)
    return GraphQLError(
        MASKED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def log_unexpected(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log what will be masked (expected errors are answers, not incidents)."""
    for error in errors:
        if is_expected(error):
            continue
        original = error.original_error
        log.error(
            "graphql_unexpected_error",
            path=list(error.path or []),
            operation=getattr(execution_context, "operation_name", None),
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )


class ProblemErrors(SchemaExtension):
    """Maps problems to coded errors and masks everything unexpected (after execution, so
    `Schema.process_errors` has logged the originals)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            request_id = _request_id(self.execution_context)
            result.errors = [public_error(e, request_id) for e in errors]
