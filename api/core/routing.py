"""One unit of work per request.

Every router uses `UnitOfWorkRoute`: the request's session (tenant-bound, created on
first use by `SessionDep`) is committed once after the endpoint returned a success, and
rolled back on any error; jobs wait for the commit. Creating POSTs that depend on
`Idempotent` / `IdempotentOptional` store their response in that same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.responses import Response

from api.auth.dependencies import authenticate
from api.auth.principal import Principal
from api.core import idempotency
from api.core.db import bind_tenant, commit, rollback
from api.core.errors import IdempotencyKeyRequired


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def get_session(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> AsyncSession:
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    if session is None:
        session = request.app.state.chairfill.sessions()
        bind_tenant(session, principal.tenant_id)
        request.state.db_session = session
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_KEY_DESCRIPTION = (
    "A unique key per logical request (e.g. a UUID). Retrying with the same key and body "
    "replays the stored response for 24 hours; the same key with a different body answers "
    "422; while the first request runs, 409."
)


_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


async def _request_content(request: Request) -> bytes | list[list[str]]:
    """What the request says, for its fingerprint. A form is taken as its fields and files:
    the multipart boundary changes on every retry, and when the endpoint declares File/Form
    parameters FastAPI has already parsed the stream (Starlette caches the form, so both
    read the same one). Anything else is the raw body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _FORM_TYPES:
        return await request.body()
    fields: list[list[str]] = []
    for name, value in (await request.form()).multi_items():
        if isinstance(value, UploadFile):
            digest = hashlib.sha256()
            await value.seek(0)
            while chunk := await value.read(1 << 16):
                digest.update(chunk)
            await value.seek(0)
            fields.append([name, value.filename or "", digest.hexdigest()])
        else:
            fields.append([name, value])
    return fields


async def _request_fingerprint(request: Request, target: str) -> str:
    # FastAPI parses a JSON body before it runs the dependencies, and Starlette keeps the
    # value on the request: fingerprinted from it, not parsed a second time (a 10,000-row
    # sync batch spent ~9% of its request time parsing its body again).
    parsed = getattr(request, "_json", _NOT_PARSED)
    if parsed is not _NOT_PARSED:
        return idempotency.json_fingerprint(request.method, target, parsed)
    return idempotency.fingerprint(request.method, target, await _request_content(request))


_NOT_PARSED = object()


async def _claim_key(
    request: Request, principal: Principal, key: str | None, required: bool
) -> None:
    if key is None:
        if required:
            raise IdempotencyKeyRequired(
                "Send an `Idempotency-Key` header (e.g. a UUID) so a retry cannot do this twice."
            )
        return
    idempotency.validate_key(key)
    # The query is part of the request: the same key on another query is another request.
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    claim = idempotency.IdempotencyClaim(
        tenant_id=principal.tenant_id,
        principal_id=principal.id,
        key=key,
        fingerprint=await _request_fingerprint(request, target),
    )
    state = request.app.state.chairfill
    stored = await idempotency.claim(state.sessions, claim, state.settings.idempotency)
    if stored is not None:
        raise _Replay(stored)
    request.state.idempotency_claim = claim


async def _required_key(
    request: Request,
    principal: Annotated[Principal, Depends(authenticate)],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description=_KEY_DESCRIPTION)
    ] = None,
) -> None:
    await _claim_key(request, principal, idempotency_key, required=True)


async def _optional_key(
    request: Request,
    principal: Annotated[Principal, Depends(authenticate)],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description=_KEY_DESCRIPTION)
    ] = None,
) -> None:
    await _claim_key(request, principal, idempotency_key, required=False)


Idempotent = Depends(_required_key)
IdempotentOptional = Depends(_optional_key)


class UnitOfWorkRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run_in_unit_of_work(request: Request) -> Response:
            try:
                response = await handler(request)
            except _Replay as replay:
                # Nothing of this request may be written; close a session SessionDep opened.
                await _finish(request, None)
                return replay.response
            except BaseException:
                await _finish(request, None)
                raise
            await _finish(request, response)
            return response

        return run_in_unit_of_work


async def _finish(request: Request, response: Response | None) -> None:
    session: AsyncSession | None = getattr(request.state, "db_session", None)
    claim: idempotency.IdempotencyClaim | None = getattr(request.state, "idempotency_claim", None)
    succeeded = response is not None and response.status_code < 400
    try:
        if succeeded and response is not None:
            if claim is not None:
                if session is None:
                    session = request.app.state.chairfill.sessions()
                    bind_tenant(session, claim.tenant_id)
                    request.state.db_session = session
                await idempotency.complete(session, claim, response)
            if session is not None:
                await commit(session)
        elif session is not None:
            await rollback(session)
    except BaseException:
        succeeded = False
        if session is not None:
            await rollback(session)
        raise
    finally:
        if session is not None:
            await session.close()
            request.state.db_session = None
        if not succeeded and claim is not None:
            await idempotency.release(request.app.state.chairfill.sessions, claim)


def api_router(tag: str, **kwargs: object) -> APIRouter:
    """A router whose routes run in one unit of work and document problem responses."""
    from api.core.errors import PROBLEM_RESPONSES

    return APIRouter(
        tags=[tag],
        route_class=UnitOfWorkRoute,
        responses=PROBLEM_RESPONSES,
        **kwargs,  # type: ignore[arg-type]
    )


def operation_id(route: APIRoute) -> str:
    """Stable operation ids (`locations-get_location`) for readable generated clients."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"
