from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.dependencies import CurrentPrincipal
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import SessionDep, api_router
from api.tenancy import service
from api.tenancy.schemas import LocationOut, Me

router = api_router("identity")
locations_router = api_router("locations")


@router.get("/v1/me", summary="Who am I: tenant, caller, scopes and locations")
async def get_me(principal: CurrentPrincipal, session: SessionDep) -> Me:
    return await service.describe_principal(session, principal)


@locations_router.get("/v1/locations", summary="List the locations this caller may see")
async def list_locations(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[LocationOut]:
    items, cursor = await service.list_locations(session, principal, page)
    return Page(data=items, next_cursor=cursor)


@locations_router.get("/v1/locations/{location_id}", summary="One location")
async def get_location(
    location_id: str, principal: CurrentPrincipal, session: SessionDep
) -> LocationOut:
    return await service.get_location(session, principal, location_id)
