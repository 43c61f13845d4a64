"""Idempotency keys for GraphQL mutations, with the same claims as REST's
`Idempotency-Key` (api/core/idempotency.py), in the same per-caller key space.

A mutation takes an `idempotencyKey` argument. The fingerprint is the mutation's name and
its validated input, so the same key with the same input replays the stored answer; with
another input (or on another mutation, or on a REST route) it is refused (422,
`idempotency-key-reused`); while the first call runs, 409. Only an operation that commits
keeps its key: after an error the client may fix the input and retry with the same key.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.responses import Response

from api.core import idempotency
from api.core.errors import ValidationProblem
from api.graphql.context import Context

Out = TypeVar("Out", bound=BaseModel)


async def run_idempotent(
    context: Context,
    *,
    key: str,
    mutation: str,
    request: dict[str, Any],
    out_type: type[Out],
    run: Callable[[], Awaitable[Out]],
) -> Out:
    """`run()` once per (caller, key): a replay returns what the first call answered."""
    try:
        idempotency.validate_key(key)
    except ValidationProblem as problem:
        raise ValidationProblem(
            problem.detail,
            errors=[{"field": "idempotencyKey", "message": "1 to 255 printable characters"}],
        ) from None
    principal = context.principal
    body = json.dumps(request, sort_keys=True, default=str).encode()
    claim = idempotency.IdempotencyClaim(
        tenant_id=principal.tenant_id,
        principal_id=principal.id,
        key=key,
        fingerprint=idempotency.fingerprint("GRAPHQL", f"/graphql#{mutation}", body),
    )
    stored = await context.claim_idempotency_key(claim)
    if stored is not None:
        return out_type.model_validate_json(bytes(stored.body))
    out = await run()
    async with context.db() as session:
        await idempotency.complete(
            session,
            claim,
            Response(out.model_dump_json(), status_code=200, media_type="application/json"),
        )
    return out
