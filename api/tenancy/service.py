"""Tenants, locations and staff users."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.auth.scopes import ALL_SCOPES
from api.core.errors import NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, page_of
from api.core.security import hash_password
from api.tenancy import repository
from api.tenancy.models import Location, StaffRight, StaffUser, Tenant
from api.tenancy.schemas import Address, LocationCreate, LocationOut, Me, TenantCreate, TenantOut


def location_out(location: Location) -> LocationOut:
    return LocationOut(
        id=location.id,
        name=location.name,
        timezone=location.timezone,
        sms_registration_complete=location.sms_registration_complete,
        phone=location.phone,
        address=Address(
            line1=location.address_line1,
            line2=location.address_line2,
            city=location.city,
            region=location.region,
            postal_code=location.postal_code,
            country=location.country,
        ),
    )


async def create_tenant(session: AsyncSession, data: TenantCreate) -> Tenant:
    tenant = Tenant(
        id=new_id("tenant"), name=data.name, kind=data.kind, stale_data_threshold_minutes=24 * 60
    )
    session.add(tenant)
    await session.flush()
    return tenant


async def create_location(session: AsyncSession, tenant_id: str, data: LocationCreate) -> Location:
    if await repository.get_tenant(session, tenant_id) is None:
        raise NotFound(f"There is no tenant {tenant_id}.")
    location = Location(
        tenant_id=tenant_id,
        id=new_id("location"),
        name=data.name,
        timezone=data.timezone,
        sms_registration_complete=data.sms_registration_complete,
        address_line1=data.address.line1,
        address_line2=data.address.line2,
        city=data.address.city,
        region=data.address.region,
        postal_code=data.address.postal_code,
        country=data.address.country,
        phone=data.phone,
    )
    session.add(location)
    await session.flush()
    return location


async def create_staff_user(
    session: AsyncSession,
    tenant_id: str,
    *,
    email: str,
    name: str,
    password: str,
    rights: dict[str, list[str]],
) -> StaffUser:
    """`rights` maps a location id to the rights the user holds there."""
    unknown = sorted({r for rs in rights.values() for r in rs} - set(ALL_SCOPES))
    if unknown:
        raise ValidationProblem(
            f"Unknown rights: {', '.join(unknown)}",
            errors=[{"field": "rights", "message": "unknown right"}],
        )
    known = {loc.id for loc in await repository.locations_by_ids(session, tenant_id, list(rights))}
    missing = sorted(set(rights) - known)
    if missing:
        raise NotFound(f"No such location in this tenant: {', '.join(missing)}")
    user = StaffUser(
        tenant_id=tenant_id,
        id=new_id("staff_user"),
        email=email.lower(),
        name=name,
        password_hash=hash_password(password),
        is_active=True,
    )
    session.add(user)
    await session.flush()
    for location_id, location_rights in rights.items():
        for right in sorted(set(location_rights)):
            session.add(
                StaffRight(
                    tenant_id=tenant_id, user_id=user.id, location_id=location_id, right=right
                )
            )
    await session.flush()
    return user


async def describe_principal(session: AsyncSession, principal: Principal) -> Me:
    tenant = await repository.get_tenant(session, principal.tenant_id)
    if tenant is None:  # the token outlived its tenant
        raise NotFound("The tenant of this token no longer exists.")
    locations = await repository.all_locations(session, principal.tenant_id, principal.location_ids)
    return Me(
        tenant=TenantOut(id=tenant.id, name=tenant.name, kind=tenant.kind),
        principal_type=principal.kind,
        client_id=principal.client_id,
        user_id=principal.user_id,
        scopes=sorted(principal.scopes),
        locations=[location_out(loc) for loc in locations],
        all_locations=principal.location_ids is None,
    )


async def get_location(
    session: AsyncSession, principal: Principal, location_id: str
) -> LocationOut:
    location = await repository.get_location(
        session, principal.tenant_id, location_id, principal.location_ids
    )
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    return location_out(location)


async def list_locations(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[LocationOut], str | None]:
    rows = await repository.list_locations(
        session, principal.tenant_id, principal.location_ids, page
    )
    items, cursor = page_of(rows, ["id"], page)
    return [location_out(loc) for loc in items], cursor


async def get_tenant_out(session: AsyncSession, tenant_id: str) -> TenantOut:
    tenant = await repository.get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound(f"There is no tenant {tenant_id}.")
    return TenantOut(id=tenant.id, name=tenant.name, kind=tenant.kind)
