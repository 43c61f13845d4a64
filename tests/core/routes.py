"""Test-only routes, mounted on a separate app instance: a creating POST that writes
through the request's session, a scope-protected read, a crash and typed parameters."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import File, Form, Query, Security, UploadFile
from pydantic import BaseModel

from api.auth.dependencies import CurrentPrincipal, authorize
from api.auth.principal import Principal
from api.core.errors import ValidationProblem
from api.core.routing import Idempotent, SessionDep, api_router
from api.practice.ingest_sql import driver_connection
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, LocationOut

router = api_router("core-tests")

# Named gates for the in-flight test: the handler announces it entered, then waits.
ENTERED: dict[str, asyncio.Event] = {}
RELEASE: dict[str, asyncio.Event] = {}


class NewLocation(BaseModel):
    name: str
    timezone: str = "America/Chicago"
    # Write the row, then refuse the request: nothing may stay behind.
    fail_after_write: bool = False
    wait_for: str | None = None


@router.post("/v1/_test/locations", status_code=201, dependencies=[Idempotent])
async def create_test_location(
    body: NewLocation, principal: CurrentPrincipal, session: SessionDep
) -> LocationOut:
    location = await tenancy_service.create_location(
        session, principal.tenant_id, LocationCreate(name=body.name, timezone=body.timezone)
    )
    if body.wait_for:
        ENTERED[body.wait_for].set()
        await RELEASE[body.wait_for].wait()
    if body.fail_after_write:
        raise ValidationProblem(
            "Refused after writing.", errors=[{"field": "fail_after_write", "message": "set"}]
        )
    return tenancy_service.location_out(location)


@router.post("/v1/_test/uploads", status_code=201, dependencies=[Idempotent])
async def upload_test_file(
    principal: CurrentPrincipal,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    name: Annotated[str, Form()],
) -> dict[str, str | int]:
    """A multipart endpoint declaring File/Form parameters: writes a Location named `name`."""
    location = await tenancy_service.create_location(
        session, principal.tenant_id, LocationCreate(name=name, timezone="America/Chicago")
    )
    return {"id": location.id, "name": name, "size": len(await file.read())}


@router.get("/v1/_test/schedule")
async def read_test_schedule(
    principal: Annotated[Principal, Security(authorize, scopes=["schedule:read"])],
) -> dict[str, str]:
    return {"tenant_id": principal.tenant_id}


@router.get("/v1/_test/boom")
async def explode(principal: CurrentPrincipal) -> dict[str, str]:
    raise RuntimeError("secret internals: password=hunter2")


@router.get("/v1/_test/driver/{failure}")
async def fail_in_the_driver(
    failure: Literal["nul", "missing-table"], principal: CurrentPrincipal, session: SessionDep
) -> dict[str, str]:
    """A statement sent on the asyncpg connection itself, as the bulk paths do."""
    connection = await driver_connection(session)
    if failure == "nul":
        await connection.fetchval("SELECT $1::text", "a\x00b")
    else:
        await connection.fetchval("SELECT count(*) FROM no_such_table")
    return {}


@router.get("/v1/_test/items/{item_id}")
async def read_test_item(
    item_id: int, count: Annotated[int, Query(ge=1)], principal: CurrentPrincipal
) -> dict[str, int]:
    return {"item_id": item_id, "count": count}
