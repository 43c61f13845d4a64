"""GraphQL types and resolvers for campaigns and their results.

Thin: each resolver calls the same service function as its REST twin (`/v1/campaigns...`).
Reading needs `communications:review`; composing, submitting, pausing, resuming,
cancelling, duplicating and deleting need `communications:manage`. Message contents and
recipient sources travel as JSON, the same documents as REST, checked by the same schemas."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any, TypeVar, cast

import pydantic
import strawberry
from strawberry.scalars import JSON

from api.auth.scopes import Scope
from api.campaigns import results, service
from api.campaigns.models import Campaign as CampaignRow
from api.campaigns.repository import CampaignFilters
from api.campaigns.schemas import (
    CampaignCreate,
    CampaignUpdate,
    ExclusionsIn,
    PatientResultOut,
    RecipientCountRequest,
    RecipientOut,
)
from api.core.clock import utcnow
from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.permissions import requires_scopes

Info = strawberry.Info[Context, None]
T = TypeVar("T", bound=pydantic.BaseModel)
REVIEW = Scope.COMMUNICATIONS_REVIEW.value
MANAGE = Scope.COMMUNICATIONS_MANAGE.value


@strawberry.enum(description="Where a campaign is in its life.")
class CampaignStatus(Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@strawberry.type(description="A targeted SMS and/or email campaign to patients.")
class Campaign:
    id: strawberry.ID
    name: str
    status: CampaignStatus
    channels: list[str] = strawberry.field(description="sms and/or email")
    campaign_type: str = strawberry.field(description="instant or scheduled")
    scheduled_for: dt.datetime | None = strawberry.field(
        description="Local date and time (no offset), in each location's zone"
    )
    location_ids: list[str]
    sms: JSON | None = strawberry.field(description="The SMS content, as in REST")
    email: JSON | None = strawberry.field(description="The email content, as in REST")
    recipients: JSON | None = strawberry.field(
        description='{"kind": "filters" | "segment" | "custom_list", ...}'
    )
    created_by: str
    send_round: int
    send_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: CampaignRow) -> Campaign:
        out = service.campaign_out(row)
        return cls(
            id=strawberry.ID(out.id),
            name=out.name,
            status=CampaignStatus(out.status),
            channels=list(out.channels),
            campaign_type=out.campaign_type,
            scheduled_for=out.scheduled_for,
            location_ids=out.location_ids,
            sms=cast(JSON, out.sms.model_dump(mode="json")) if out.sms else None,
            email=cast(JSON, out.email.model_dump(mode="json")) if out.email else None,
            recipients=cast(JSON, row.recipients) if row.recipients else None,
            created_by=out.created_by,
            send_round=out.send_round,
            send_at=out.send_at,
            created_at=out.created_at,
            updated_at=out.updated_at,
            submitted_at=out.submitted_at,
            started_at=out.started_at,
            completed_at=out.completed_at,
            cancelled_at=out.cancelled_at,
        )


@strawberry.type(description="One page of campaigns, by id.")
class CampaignConnection:
    nodes: list[Campaign]
    next_cursor: str | None


@strawberry.type(description="Dashboard metrics for the same filters as the list.")
class CampaignCounts:
    active: int
    completed: int
    paused: int
    draft: int


@strawberry.type(description="A patient the campaign would reach, and whether excluded.")
class CampaignRecipient:
    patient_id: strawberry.ID
    first_name: str
    last_name: str
    location_id: str
    channel: str | None
    excluded: bool

    @classmethod
    def from_out(cls, out: RecipientOut) -> CampaignRecipient:
        return cls(**out.model_dump() | {"patient_id": strawberry.ID(out.patient_id)})


@strawberry.type(description="One page of recipients, by patient id.")
class CampaignRecipientConnection:
    nodes: list[CampaignRecipient]
    next_cursor: str | None


@strawberry.type(description="The review step: recipients after exclusions, by channel.")
class CampaignSummary:
    campaign: Campaign
    total_recipients: int
    excluded: int
    sms_recipients: int
    email_recipients: int


@strawberry.type(description="What happened on one channel of a send.")
class CampaignChannelResults:
    channel: str
    recipients: int
    pending: int
    queued: int
    held: int
    sent: int
    delivered: int
    failed: int
    suppressed: int
    frequency_capped: int
    replied: int
    opted_out: int


@strawberry.type(description="Results of one send round, per channel.")
class CampaignResults:
    campaign_id: strawberry.ID
    status: CampaignStatus
    send_round: int
    channels: list[CampaignChannelResults]


@strawberry.type(description="One patient's result: status, reason, replied, opted out.")
class CampaignPatientResult:
    patient_id: strawberry.ID
    first_name: str
    last_name: str
    location_id: str
    channel: str
    status: str = strawberry.field(
        description="pending, queued, held, sent, delivered, failed, suppressed"
    )
    failure_reason: str | None
    message_id: str | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    replied: bool
    opted_out: bool

    @classmethod
    def from_out(cls, out: PatientResultOut) -> CampaignPatientResult:
        return cls(**out.model_dump() | {"patient_id": strawberry.ID(out.patient_id)})


@strawberry.type(description="One page of per-patient results, by patient id.")
class CampaignPatientResultConnection:
    nodes: list[CampaignPatientResult]
    next_cursor: str | None


@strawberry.input(description="A new campaign (a draft only its creator may edit).")
class CampaignInput:
    name: str
    channels: list[str] | None = None
    campaign_type: str | None = None
    scheduled_for: dt.datetime | None = None
    location_ids: list[str] | None = None
    sms: JSON | None = None
    email: JSON | None = None
    recipients: JSON | None = None


@strawberry.input(description="Changes to a campaign; omitted fields stay as they are.")
class CampaignPatch:
    name: str | None = strawberry.UNSET
    channels: list[str] | None = strawberry.UNSET
    campaign_type: str | None = strawberry.UNSET
    scheduled_for: dt.datetime | None = strawberry.UNSET
    location_ids: list[str] | None = strawberry.UNSET
    sms: JSON | None = strawberry.UNSET
    email: JSON | None = strawberry.UNSET
    recipients: JSON | None = strawberry.UNSET


@strawberry.input(description="Dashboard filters (as the REST list's query parameters).")
class CampaignFilter:
    location_id: str | None = None
    name: str | None = None
    send_date_from: dt.date | None = None
    send_date_to: dt.date | None = None
    method: str | None = None
    campaign_type: str | None = None
    status: CampaignStatus | None = None


def _checked(model: type[T], values: dict[str, Any]) -> T:
    """Input checked by the REST schema; its errors become the same field problems."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "input", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise ValidationProblem("The input is not valid.", errors=errors) from exc


def _page(first: int, after: str | None) -> PageParams:
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationProblem(
            f"`first` must be between 1 and {MAX_LIMIT}.",
            errors=[{"field": "first", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    return PageParams(limit=first, cursor=after)


class _FilterModel(pydantic.BaseModel):
    location_id: str | None = pydantic.Field(default=None, max_length=40)
    name: str | None = pydantic.Field(default=None, max_length=200)
    send_date_from: dt.date | None = None
    send_date_to: dt.date | None = None
    method: str | None = pydantic.Field(default=None, pattern="^(sms|email)$")
    campaign_type: str | None = pydantic.Field(default=None, pattern="^(instant|scheduled)$")
    status: str | None = None


def _filters(given: CampaignFilter | None) -> CampaignFilters:
    if given is None:
        return CampaignFilters()
    values = {k: v.value if isinstance(v, Enum) else v for k, v in vars(given).items()}
    return CampaignFilters(**_checked(_FilterModel, values).model_dump())


@strawberry.type
class CampaignsQuery:
    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="One campaign.")
    async def campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.db() as session:
            row = await service.get_campaign(session, info.context.principal, str(id))
        return Campaign.from_row(row)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="The dashboard list.")
    async def campaigns(
        self,
        info: Info,
        filter: CampaignFilter | None = None,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> CampaignConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            rows, cursor = await service.list_campaigns(
                session, info.context.principal, _filters(filter), page
            )
        return CampaignConnection(nodes=[Campaign.from_row(r) for r in rows], next_cursor=cursor)

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)], description="Active, completed, paused, draft."
    )
    async def campaign_counts(
        self, info: Info, filter: CampaignFilter | None = None
    ) -> CampaignCounts:
        async with info.context.db() as session:
            out = await service.campaign_counts(session, info.context.principal, _filters(filter))
        return CampaignCounts(**out.model_dump())

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="How many patients recipients would reach (the body of "
        "POST /v1/campaigns/recipient-count, as JSON).",
    )
    async def campaign_recipient_count(self, info: Info, request: JSON) -> int:
        data = _checked(RecipientCountRequest, cast(dict[str, Any], request))
        async with info.context.db() as session:
            out = await service.count_recipients(session, info.context.principal, data, utcnow())
        return out.count

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="The review summary.")
    async def campaign_summary(self, info: Info, id: strawberry.ID) -> CampaignSummary:
        async with info.context.db() as session:
            out = await service.campaign_summary(session, info.context.principal, str(id), utcnow())
            row = await service.get_campaign(session, info.context.principal, str(id))
        return CampaignSummary(
            campaign=Campaign.from_row(row),
            total_recipients=out.total_recipients,
            excluded=out.excluded,
            sms_recipients=out.by_channel.get("sms", 0),
            email_recipients=out.by_channel.get("email", 0),
        )

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="The recipients it would reach, searchable by name or patient id.",
    )
    async def campaign_recipients(
        self,
        info: Info,
        id: strawberry.ID,
        search: str | None = None,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> CampaignRecipientConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            items, cursor = await service.list_recipients(
                session, info.context.principal, str(id), search, page, utcnow()
            )
        return CampaignRecipientConnection(
            nodes=[CampaignRecipient.from_out(i) for i in items], next_cursor=cursor
        )

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="Results per channel.")
    async def campaign_results(
        self, info: Info, id: strawberry.ID, send_round: int | None = None
    ) -> CampaignResults:
        async with info.context.db() as session:
            out = await results.campaign_results(
                session, info.context.principal, str(id), send_round
            )
        return CampaignResults(
            campaign_id=strawberry.ID(out.campaign_id),
            status=CampaignStatus(out.status),
            send_round=out.send_round,
            channels=[
                CampaignChannelResults(channel=c, **r.model_dump())
                for c, r in sorted(out.channels.items())
            ],
        )

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="Per-patient results.")
    async def campaign_patient_results(
        self,
        info: Info,
        id: strawberry.ID,
        send_round: int | None = None,
        status: str | None = None,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> CampaignPatientResultConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            items, cursor = await results.patient_results(
                session, info.context.principal, str(id), send_round, status, page
            )
        return CampaignPatientResultConnection(
            nodes=[CampaignPatientResult.from_out(i) for i in items], next_cursor=cursor
        )


@strawberry.type
class CampaignsMutation:
    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Create a campaign.")
    async def create_campaign(self, info: Info, input: CampaignInput) -> Campaign:
        given = {k: v for k, v in vars(input).items() if v is not None}
        data = _checked(CampaignCreate, given)
        async with info.context.db() as session:
            row = await service.create_campaign(session, info.context.principal, data, utcnow())
        return Campaign.from_row(row)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Edit a campaign.")
    async def update_campaign(
        self, info: Info, id: strawberry.ID, patch: CampaignPatch
    ) -> Campaign:
        given = {k: v for k, v in vars(patch).items() if v is not strawberry.UNSET}
        data = _checked(CampaignUpdate, given)
        async with info.context.db() as session:
            row = await service.update_campaign(
                session, info.context.principal, str(id), data, utcnow()
            )
        return Campaign.from_row(row)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Delete a campaign; returns its id."
    )
    async def delete_campaign(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.db() as session:
            await service.delete_campaign(session, info.context.principal, str(id))
        return id

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Copy a campaign as a new draft."
    )
    async def duplicate_campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.db() as session:
            row = await service.duplicate_campaign(
                session, info.context.principal, str(id), utcnow()
            )
        return Campaign.from_row(row)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)],
        description="Exclude patients (or put them back); returns how many were named.",
    )
    async def set_campaign_exclusions(
        self, info: Info, id: strawberry.ID, patient_ids: list[str], excluded: bool
    ) -> int:
        data = _checked(ExclusionsIn, {"patient_ids": patient_ids, "excluded": excluded})
        async with info.context.db() as session:
            await service.set_exclusions(session, info.context.principal, str(id), data)
        return len(data.patient_ids)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)],
        description="Submit a draft (or resend a completed campaign).",
    )
    async def submit_campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.db() as session:
            row = await service.submit_campaign(session, info.context.principal, str(id), utcnow())
        return Campaign.from_row(row)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Pause a campaign.")
    async def pause_campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.db() as session:
            row = await service.pause_campaign(session, info.context.principal, str(id), utcnow())
        return Campaign.from_row(row)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Resume a campaign.")
    async def resume_campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.db() as session:
            row = await service.resume_campaign(session, info.context.principal, str(id), utcnow())
        return Campaign.from_row(row)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Cancel a campaign.")
    async def cancel_campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.db() as session:
            row = await service.cancel_campaign(session, info.context.principal, str(id), utcnow())
        return Campaign.from_row(row)
