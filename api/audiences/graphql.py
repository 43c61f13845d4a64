"""GraphQL types and resolvers for audiences and the do-not-contact list.

Thin: each resolver calls the same service function as its REST twin
(`/v1/audiences...`, `/v1/do-not-contact`), with the same scopes: counts and previews
need `communications:review`; members and changes (contact details) `audiences:read`;
creating, deleting, rebuilding and the list's changes `communications:manage`."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from api.audiences import do_not_contact, service
from api.audiences.models import Audience as AudienceRow
from api.audiences.models import DoNotContactEntry as DoNotContactRow
from api.audiences.schemas import (
    AudienceCreate,
    AudiencePreviewOut,
    AudiencePreviewRequest,
    ChangesPage,
    DoNotContactCreate,
    MembersPage,
)
from api.auth.scopes import Scope
from api.core.clock import utcnow
from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.permissions import requires_scopes
from api.segments.graphql import checked_input, page_params

Info = strawberry.Info[Context, None]
REVIEW = Scope.COMMUNICATIONS_REVIEW.value
MANAGE = Scope.COMMUNICATIONS_MANAGE.value
READ = Scope.AUDIENCES_READ.value


@strawberry.enum(description="The channel an audience is for.")
class AudienceChannel(Enum):
    SMS = "sms"
    EMAIL = "email"


@strawberry.type(description="Which suppressions apply (after the rule).")
class Suppression:
    do_not_contact: bool
    opted_out: bool
    inactive: bool
    in_collections: bool
    no_contact: bool
    seen_today: bool
    contacted_recently: bool
    contacted_within_days: int


@strawberry.input(description="Which suppressions apply; omitted ones are on (14 days).")
class SuppressionInput:
    do_not_contact: bool = True
    opted_out: bool = True
    inactive: bool = True
    in_collections: bool = True
    no_contact: bool = True
    seen_today: bool = True
    contacted_recently: bool = True
    contacted_within_days: int = 14


@strawberry.type(
    description="A segment materialised into numbered versions after suppression "
    "(created from a segment; a segment may have several audiences)."
)
class Audience:
    id: strawberry.ID
    segment_id: strawberry.ID
    name: str
    channel: AudienceChannel
    suppression: Suppression
    version: int = strawberry.field(description="The latest built version (0: never built).")
    total: int
    data_as_of: dt.datetime | None
    built_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: AudienceRow) -> Audience:
        return cls(
            id=strawberry.ID(row.id),
            segment_id=strawberry.ID(row.segment_id),
            name=row.name,
            channel=AudienceChannel(row.channel),
            suppression=Suppression(**row.suppression),
            version=row.version,
            total=row.total,
            data_as_of=row.data_as_of,
            built_at=row.built_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="One page of audiences, by id.")
class AudienceConnection:
    nodes: list[Audience]
    next_cursor: str | None


@strawberry.type(description="Matches each suppression removes (null: switched off).")
class SuppressedCounts:
    do_not_contact: int | None
    opted_out: int | None
    inactive: int | None
    in_collections: int | None
    no_contact: int | None
    seen_today: int | None
    contacted_recently: int | None


@strawberry.type(description="Who would be in the audience now, and who suppression removes.")
class AudiencePreview:
    matched: int
    suppressed: SuppressedCounts
    count: int
    location_ids: list[str]
    data_as_of: dt.datetime | None

    @classmethod
    def from_out(cls, out: AudiencePreviewOut) -> AudiencePreview:
        return cls(
            matched=out.matched,
            suppressed=SuppressedCounts(**out.suppressed.model_dump()),
            count=out.count,
            location_ids=out.location_ids,
            data_as_of=out.data_as_of,
        )


@strawberry.type(description="A member with contact details from the mirror.")
class AudienceMember:
    patient_id: strawberry.ID
    location_id: str
    first_name: str | None
    last_name: str | None
    preferred_name: str | None
    email: str | None
    mobile: str | None
    communication_preference: str | None
    member_since_version: int


@strawberry.type(description="One page of an audience version's members, by patient id.")
class AudienceMemberConnection:
    nodes: list[AudienceMember]
    next_cursor: str | None
    version: int
    data_as_of: dt.datetime | None

    @classmethod
    def from_out(cls, out: MembersPage) -> AudienceMemberConnection:
        return cls(
            nodes=[
                AudienceMember(**m.model_dump() | {"patient_id": strawberry.ID(m.patient_id)})
                for m in out.data
            ],
            next_cursor=out.next_cursor,
            version=out.version,
            data_as_of=out.data_as_of,
        )


@strawberry.type(description="A patient who joined or left, and why.")
class AudienceChange:
    patient_id: strawberry.ID
    location_id: str
    change: str = strawberry.field(description="`added` or `removed`")
    reason: str
    version: int
    first_name: str | None
    last_name: str | None
    email: str | None
    mobile: str | None


@strawberry.type(description="Changes since a version, by patient id.")
class AudienceChangeConnection:
    nodes: list[AudienceChange]
    next_cursor: str | None
    since_version: int
    to_version: int
    added: int
    removed: int
    data_as_of: dt.datetime | None

    @classmethod
    def from_out(cls, out: ChangesPage) -> AudienceChangeConnection:
        return cls(
            nodes=[
                AudienceChange(**c.model_dump() | {"patient_id": strawberry.ID(c.patient_id)})
                for c in out.data
            ],
            next_cursor=out.next_cursor,
            since_version=out.since_version,
            to_version=out.to_version,
            added=out.added,
            removed=out.removed,
            data_as_of=out.data_as_of,
        )


@strawberry.type(description="A queued rebuild.")
class AudienceRebuild:
    audience_id: strawberry.ID
    job_id: str
    status: str
    location_ids: list[str]


@strawberry.type(description="An entry of the do-not-contact list.")
class DoNotContactEntry:
    id: strawberry.ID
    patient_id: strawberry.ID | None
    phone: str | None
    email: str | None
    note: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: DoNotContactRow) -> DoNotContactEntry:
        return cls(
            id=strawberry.ID(row.id),
            patient_id=strawberry.ID(row.patient_id) if row.patient_id else None,
            phone=row.phone,
            email=row.email,
            note=row.note,
            created_at=row.created_at,
        )


@strawberry.type(description="One page of the do-not-contact list, by id.")
class DoNotContactConnection:
    nodes: list[DoNotContactEntry]
    next_cursor: str | None


@strawberry.input(description="A new audience made from a segment.")
class AudienceInput:
    segment_id: strawberry.ID
    channel: AudienceChannel
    name: str | None = None
    suppression: SuppressionInput | None = None


@strawberry.input(description="A do-not-contact entry: a patient, a phone and/or an email.")
class DoNotContactInput:
    patient_id: strawberry.ID | None = None
    phone: str | None = None
    email: str | None = None
    note: str | None = None


def _audience_values(input: AudienceInput) -> dict[str, object]:
    values: dict[str, object] = {
        "segment_id": str(input.segment_id),
        "channel": input.channel.value,
    }
    if input.name is not None:
        values["name"] = input.name
    if input.suppression is not None:
        values["suppression"] = vars(input.suppression)
    return values


First = Annotated[int, strawberry.argument(description="Items per page (max 1000).")]


@strawberry.type
class AudiencesQuery:
    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="One audience.")
    async def audience(self, info: Info, id: strawberry.ID) -> Audience:
        async with info.context.db() as session:
            row = await service.get_audience(session, info.context.principal, str(id))
        return Audience.from_row(row)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="Audiences, by id.")
    async def audiences(
        self,
        info: Info,
        first: First = DEFAULT_LIMIT,
        after: str | None = None,
        segment_id: strawberry.ID | None = None,
    ) -> AudienceConnection:
        page = page_params(first, after)
        async with info.context.db() as session:
            rows, cursor = await service.list_audiences(
                session, info.context.principal, page, str(segment_id) if segment_id else None
            )
        return AudienceConnection(nodes=[Audience.from_row(r) for r in rows], next_cursor=cursor)

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="Preview a saved audience (`id`) or a segment as one (`input`).",
    )
    async def preview_audience(
        self, info: Info, id: strawberry.ID | None = None, input: AudienceInput | None = None
    ) -> AudiencePreview:
        if (id is None) == (input is None):
            raise ValidationProblem(
                "Pass either `id` or `input`.",
                errors=[{"field": "id", "message": "either id or input"}],
            )
        principal = info.context.principal
        async with info.context.db() as session:
            if id is not None:
                out = await service.preview_audience(session, principal, str(id), utcnow())
            else:
                assert input is not None
                values = _audience_values(input)
                values.pop("name", None)
                data = checked_input(AudiencePreviewRequest, values)
                out = await service.preview(session, principal, data, utcnow())
        return AudiencePreview.from_out(out)

    @strawberry.field(
        extensions=[requires_scopes(READ)],
        description="Members of a version (default the latest) with contact details.",
    )
    async def audience_members(
        self,
        info: Info,
        id: strawberry.ID,
        first: First = DEFAULT_LIMIT,
        after: str | None = None,
        version: int | None = None,
    ) -> AudienceMemberConnection:
        page = page_params(first, after)
        async with info.context.db() as session:
            out = await service.members(session, info.context.principal, str(id), page, version)
        return AudienceMemberConnection.from_out(out)

    @strawberry.field(
        extensions=[requires_scopes(READ)],
        description="Who joined and left since `sinceVersion`, with reasons.",
    )
    async def audience_changes(
        self,
        info: Info,
        id: strawberry.ID,
        since_version: int,
        first: First = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> AudienceChangeConnection:
        page = page_params(first, after)
        async with info.context.db() as session:
            out = await service.changes(
                session, info.context.principal, str(id), since_version, page
            )
        return AudienceChangeConnection.from_out(out)

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)], description="The do-not-contact list, by id."
    )
    async def do_not_contact_entries(
        self, info: Info, first: First = DEFAULT_LIMIT, after: str | None = None
    ) -> DoNotContactConnection:
        page: PageParams = page_params(first, after)
        async with info.context.db() as session:
            rows, cursor = await do_not_contact.list_entries(session, info.context.principal, page)
        return DoNotContactConnection(
            nodes=[DoNotContactEntry.from_row(r) for r in rows], next_cursor=cursor
        )


@strawberry.type
class AudiencesMutation:
    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Create an audience from a segment."
    )
    async def create_audience(self, info: Info, input: AudienceInput) -> Audience:
        data = checked_input(AudienceCreate, _audience_values(input))
        async with info.context.db() as session:
            row = await service.create_audience(session, info.context.principal, data, utcnow())
        return Audience.from_row(row)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Delete an audience; returns its id."
    )
    async def delete_audience(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.db() as session:
            await service.delete_audience(session, info.context.principal, str(id))
        return id

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)],
        description="Queue a rebuild of every location (stale PMS data: a stale-data error).",
    )
    async def rebuild_audience(self, info: Info, id: strawberry.ID) -> AudienceRebuild:
        async with info.context.db() as session:
            out = await service.request_rebuild(session, info.context.principal, str(id), utcnow())
        return AudienceRebuild(
            audience_id=strawberry.ID(out.audience_id),
            job_id=out.job_id,
            status=out.status,
            location_ids=out.location_ids,
        )

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Add a do-not-contact entry."
    )
    async def add_do_not_contact(self, info: Info, input: DoNotContactInput) -> DoNotContactEntry:
        values = {k: (str(v) if k == "patient_id" and v else v) for k, v in vars(input).items()}
        data = checked_input(DoNotContactCreate, values)
        async with info.context.db() as session:
            row = await do_not_contact.add_entry(session, info.context.principal, data, utcnow())
        return DoNotContactEntry.from_row(row)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)],
        description="Remove a do-not-contact entry; returns its id.",
    )
    async def remove_do_not_contact(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.db() as session:
            await do_not_contact.remove_entry(session, info.context.principal, str(id))
        return id
