from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.tenancy.models import Location, StaffUser, Tenant


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def get_location(
    session: AsyncSession, tenant_id: str, location_id: str, visible: frozenset[str] | None
) -> Location | None:
    stmt = scoped(Location, tenant_id, visible).where(Location.id == location_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_locations(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None, page: PageParams
) -> list[Location]:
    stmt = keyset(scoped(Location, tenant_id, visible), [Location.id], page)
    return list((await session.execute(stmt)).scalars())


async def locations_by_ids(session: AsyncSession, tenant_id: str, ids: list[str]) -> list[Location]:
    stmt = scoped(Location, tenant_id).where(Location.id.in_(ids)).order_by(Location.id)
    return list((await session.execute(stmt)).scalars())


async def all_locations(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None
) -> list[Location]:
    stmt = scoped(Location, tenant_id, visible).order_by(Location.id)
    return list((await session.execute(stmt)).scalars())


async def get_staff_user(session: AsyncSession, tenant_id: str, user_id: str) -> StaffUser | None:
    stmt = scoped(StaffUser, tenant_id).where(StaffUser.id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.execute(select(Tenant).order_by(Tenant.id))).scalars())
