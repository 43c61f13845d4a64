"""GraphQL types and resolvers for the caller, its tenant and locations.

Thin: each resolver calls the same service function as its REST twin
(`GET /v1/me`, `GET /v1/locations`, `GET /v1/locations/{id}`).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from api.graphql.context import Context
from api.tenancy import service
from api.tenancy.schemas import Address as AddressOut
from api.tenancy.schemas import LocationOut, Me

Info = strawberry.Info[Context, None]


@strawberry.enum(description="A single practice, or a dental service organization (DSO).")
class TenantKind(Enum):
    PRACTICE = "practice"
    DSO = "dso"


@strawberry.enum(description="How the caller authenticated.")
class PrincipalType(Enum):
    CLIENT = strawberry.enum_value("client", description="An OAuth client acting as itself.")
    USER = strawberry.enum_value("user", description="An app acting for a staff user.")
    PUBLISHABLE_KEY = strawberry.enum_value(
        "publishable_key", description="A booking widget's publishable key."
    )


@strawberry.type(description="A postal address.")
class Address:
    line1: str | None = strawberry.field(description="First address line.")
    line2: str | None = strawberry.field(description="Second address line.")
    city: str | None = strawberry.field(description="City or locality.")
    region: str | None = strawberry.field(description="State, province or region.")
    postal_code: str | None = strawberry.field(description="Postal or ZIP code.")
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2 country code.")

    @classmethod
    def from_out(cls, address: AddressOut) -> Address:
        return cls(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            region=address.region,
            postal_code=address.postal_code,
            country=address.country,
        )


@strawberry.type(description="One office of the practice (or of the DSO).")
class Location:
    id: strawberry.ID = strawberry.field(description="Opaque location id (`location_...`).")
    name: str = strawberry.field(description="The name staff use for the office.")
    timezone: str = strawberry.field(
        description="IANA time zone that gives the location's dates and hours meaning."
    )
    sms_registration_complete: bool = strawberry.field(
        description="True once the office's SMS sender registration (10DLC) is complete."
    )
    phone: str | None = strawberry.field(description="The office's phone number.")
    address: Address = strawberry.field(description="The office's postal address.")

    @classmethod
    def from_out(cls, location: LocationOut) -> Location:
        return cls(
            id=strawberry.ID(location.id),
            name=location.name,
            timezone=location.timezone,
            sms_registration_complete=location.sms_registration_complete,
            phone=location.phone,
            address=Address.from_out(location.address),
        )


@strawberry.type(description="A practice or a DSO: the owner of all data a token can see.")
class Tenant:
    id: strawberry.ID = strawberry.field(description="Opaque tenant id (`tenant_...`).")
    name: str = strawberry.field(description="The practice's or DSO's name.")
    kind: TenantKind = strawberry.field(description="Practice or DSO.")


@strawberry.type(description="Who is calling: tenant, caller, scopes and locations.")
class Viewer:
    tenant: Tenant = strawberry.field(description="The tenant the token belongs to.")
    principal_type: PrincipalType = strawberry.field(description="How the caller authenticated.")
    client_id: str = strawberry.field(
        description="The OAuth client id, or the publishable key's id."
    )
    user_id: str | None = strawberry.field(
        description="The staff user an app acts for (null for clients and keys)."
    )
    scopes: list[str] = strawberry.field(description="The scopes the token holds, sorted.")
    locations: list[Location] = strawberry.field(description="The locations this token may touch.")
    all_locations: bool = strawberry.field(
        description="True when the token is not limited to a list of locations."
    )

    @classmethod
    def from_out(cls, me: Me) -> Viewer:
        return cls(
            tenant=Tenant(
                id=strawberry.ID(me.tenant.id), name=me.tenant.name, kind=TenantKind(me.tenant.kind)
            ),
            principal_type=PrincipalType(me.principal_type),
            client_id=me.client_id,
            user_id=me.user_id,
            scopes=me.scopes,
            locations=[Location.from_out(loc) for loc in me.locations],
            all_locations=me.all_locations,
        )


@strawberry.type(description="One page of locations, in a stable order.")
class LocationConnection:
    nodes: list[Location] = strawberry.field(description="The locations on this page.")
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null at the end."
    )


def _page(first: int, after: str | None) -> PageParams:
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationProblem(
            f"`first` must be between 1 and {MAX_LIMIT}.",
            errors=[{"field": "first", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    if after is not None and len(after) > 500:
        raise ValidationProblem(
            "The cursor is not one this API returned.",
            errors=[{"field": "after", "message": "invalid cursor"}],
        )
    return PageParams(limit=first, cursor=after)


@strawberry.type
class TenancyQuery:
    @strawberry.field(description="Who is calling (the same answer as `GET /v1/me`).")
    async def viewer(self, info: Info) -> Viewer:
        async with info.context.db() as session:
            me = await service.describe_principal(session, info.context.principal)
        return Viewer.from_out(me)

    @strawberry.field(
        description="One location this caller may see; any other id answers null with a "
        "NOT_FOUND error."
    )
    async def location(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A location id.")],
    ) -> Location | None:
        async with info.context.db() as session:
            location = await service.get_location(session, info.context.principal, str(id))
        return Location.from_out(location)

    @strawberry.field(description="The locations this caller may see, ordered by id.")
    async def locations(
        self,
        info: Info,
        first: Annotated[
            int, strawberry.argument(description=f"Items per page (1 to {MAX_LIMIT}).")
        ] = DEFAULT_LIMIT,
        after: Annotated[
            str | None, strawberry.argument(description="`nextCursor` of the previous page.")
        ] = None,
    ) -> LocationConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            try:
                items, cursor = await service.list_locations(session, info.context.principal, page)
            except ValidationProblem as problem:
                # The service names its REST parameter; GraphQL calls it `after`.
                for error in problem.errors:
                    if error.field == "cursor":
                        error.field = "after"
                raise
        return LocationConnection(
            nodes=[Location.from_out(loc) for loc in items], next_cursor=cursor
        )
