"""REST: campaigns (compose, review, submit, pause, resume, cancel, duplicate, delete),
the dashboard, recipient counts, custom lists and results. Reading needs
`communications:review`, writing `communications:manage`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, File, Path, Query, Response, Security, UploadFile

from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.campaigns import results, service
from api.campaigns.repository import CampaignFilters
from api.campaigns.schemas import (
    CampaignCounts,
    CampaignCreate,
    CampaignOut,
    CampaignResults,
    CampaignStatus,
    CampaignSummary,
    CampaignType,
    CampaignUpdate,
    Channel,
    CustomListOut,
    ExclusionsIn,
    PatientResultOut,
    RecipientCountOut,
    RecipientCountRequest,
    RecipientOut,
    ResultStatus,
)
from api.core.clock import utcnow
from api.core.errors import FieldError, ValidationProblem
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import Idempotent, IdempotentOptional, SessionDep, api_router

router = api_router("campaigns")

CommunicationsReview = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_REVIEW.value])
]
CommunicationsManage = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_MANAGE.value])
]
Pages = Annotated[PageParams, Depends(page_params)]
CampaignId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
IdQuery = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
MAX_CSV_BYTES = 5 * 1024 * 1024


def _filters(
    location_id: IdQuery = None,
    name: Annotated[str | None, Query(max_length=200, description="Name contains")] = None,
    send_date_from: Annotated[
        dt.date | None, Query(description="Send date on or after (the location's calendar)")
    ] = None,
    send_date_to: Annotated[dt.date | None, Query(description="Send date on or before")] = None,
    method: Annotated[Channel | None, Query(description="`sms` or `email`")] = None,
    campaign_type: Annotated[CampaignType | None, Query()] = None,
    status: Annotated[CampaignStatus | None, Query()] = None,
) -> CampaignFilters:
    if send_date_from and send_date_to and send_date_from > send_date_to:
        raise ValidationProblem(
            "The date range ends before it starts.",
            errors=[FieldError(field="send_date_to", message="before send_date_from")],
        )
    return CampaignFilters(
        location_id=location_id,
        name=name,
        send_date_from=send_date_from,
        send_date_to=send_date_to,
        method=method,
        campaign_type=campaign_type,
        status=status,
    )


Filters = Annotated[CampaignFilters, Depends(_filters)]


@router.post(
    "/v1/campaigns",
    status_code=201,
    summary="Create a campaign (a draft only its creator may edit)",
    dependencies=[IdempotentOptional],
)
async def create_campaign(
    data: CampaignCreate, principal: CommunicationsManage, session: SessionDep
) -> CampaignOut:
    campaign = await service.create_campaign(session, principal, data, utcnow())
    return service.campaign_out(campaign)


@router.get("/v1/campaigns", summary="The campaign dashboard list")
async def list_campaigns(
    principal: CommunicationsReview, session: SessionDep, page: Pages, filters: Filters
) -> Page[CampaignOut]:
    items, cursor = await service.list_campaigns(session, principal, filters, page)
    return Page(data=[service.campaign_out(c) for c in items], next_cursor=cursor)


@router.get(
    "/v1/campaigns/counts",
    summary="Dashboard metrics: active, completed, paused and draft campaigns (same filters)",
)
async def campaign_counts(
    principal: CommunicationsReview, session: SessionDep, filters: Filters
) -> CampaignCounts:
    return await service.campaign_counts(session, principal, filters)


@router.post(
    "/v1/campaigns/recipient-count",
    summary="How many patients recipients would reach, while composing (nothing saved)",
)
async def count_recipients(
    data: RecipientCountRequest, principal: CommunicationsReview, session: SessionDep
) -> RecipientCountOut:
    return await service.count_recipients(session, principal, data, utcnow())


@router.get(
    "/v1/campaigns/custom-list-template",
    summary="The CSV template of a custom recipient list",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def custom_list_template(principal: CommunicationsReview) -> Response:
    return Response(
        service.custom_list_template(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="custom-list-template.csv"'},
    )


@router.get("/v1/campaigns/{campaign_id}", summary="One campaign")
async def get_campaign(
    campaign_id: CampaignId, principal: CommunicationsReview, session: SessionDep
) -> CampaignOut:
    return service.campaign_out(await service.get_campaign(session, principal, campaign_id))


@router.patch(
    "/v1/campaigns/{campaign_id}",
    summary="Edit a draft (its creator only), scheduled, paused or completed campaign",
)
async def update_campaign(
    campaign_id: CampaignId,
    data: CampaignUpdate,
    principal: CommunicationsManage,
    session: SessionDep,
) -> CampaignOut:
    campaign = await service.update_campaign(session, principal, campaign_id, data, utcnow())
    return service.campaign_out(campaign)


@router.delete("/v1/campaigns/{campaign_id}", status_code=204, summary="Delete a campaign")
async def delete_campaign(
    campaign_id: CampaignId, principal: CommunicationsManage, session: SessionDep
) -> Response:
    await service.delete_campaign(session, principal, campaign_id)
    return Response(status_code=204)


@router.post(
    "/v1/campaigns/{campaign_id}/duplicate",
    status_code=201,
    summary="Copy a campaign (every parameter and the message contents) as a new draft",
    dependencies=[IdempotentOptional],
)
async def duplicate_campaign(
    campaign_id: CampaignId, principal: CommunicationsManage, session: SessionDep
) -> CampaignOut:
    campaign = await service.duplicate_campaign(session, principal, campaign_id, utcnow())
    return service.campaign_out(campaign)


@router.get(
    "/v1/campaigns/{campaign_id}/summary",
    summary="The review summary: recipients after exclusions, by channel",
)
async def campaign_summary(
    campaign_id: CampaignId, principal: CommunicationsReview, session: SessionDep
) -> CampaignSummary:
    return await service.campaign_summary(session, principal, campaign_id, utcnow())


@router.get(
    "/v1/campaigns/{campaign_id}/recipients",
    summary="The recipients it would reach, searchable by name or patient id",
)
async def list_recipients(
    campaign_id: CampaignId,
    principal: CommunicationsReview,
    session: SessionDep,
    page: Pages,
    search: Annotated[str | None, Query(max_length=200, description="Name or id")] = None,
) -> Page[RecipientOut]:
    items, cursor = await service.list_recipients(
        session, principal, campaign_id, search, page, utcnow()
    )
    return Page(data=items, next_cursor=cursor)


@router.post(
    "/v1/campaigns/{campaign_id}/exclusions",
    status_code=204,
    summary="Exclude patients from the campaign (or put them back)",
)
async def set_exclusions(
    campaign_id: CampaignId,
    data: ExclusionsIn,
    principal: CommunicationsManage,
    session: SessionDep,
) -> Response:
    await service.set_exclusions(session, principal, campaign_id, data)
    return Response(status_code=204)


@router.post(
    "/v1/campaigns/{campaign_id}/custom-list",
    summary="Upload a custom recipient list (CSV: First Name, Last Name, Email, Mobile)",
    description="Only for a campaign with exactly one location. Rows are matched to that "
    "location's patients by name and email or mobile; unmatched lines are listed. All or "
    "nothing: a bad row answers 422 naming it and saves nothing.",
    dependencies=[IdempotentOptional],
)
async def upload_custom_list(
    campaign_id: CampaignId,
    principal: CommunicationsManage,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="The CSV, first line the headers")],
) -> CustomListOut:
    content = await file.read(MAX_CSV_BYTES + 1)
    if len(content) > MAX_CSV_BYTES:
        raise ValidationProblem(
            "The file is too large.",
            errors=[FieldError(field="file", message=f"at most {MAX_CSV_BYTES} bytes")],
        )
    return await service.upload_custom_list(
        session, principal, campaign_id, file.filename, content, utcnow()
    )


_ACTION_KEY = "Requires `Idempotency-Key`: a retried submit never sends twice."


@router.post(
    "/v1/campaigns/{campaign_id}/submit",
    summary="Submit a draft (or resend a completed campaign): sent now or at its time",
    description=_ACTION_KEY,
    dependencies=[Idempotent],
)
async def submit_campaign(
    campaign_id: CampaignId, principal: CommunicationsManage, session: SessionDep
) -> CampaignOut:
    campaign = await service.submit_campaign(session, principal, campaign_id, utcnow())
    return service.campaign_out(campaign)


@router.post("/v1/campaigns/{campaign_id}/pause", summary="Pause a scheduled or sending campaign")
async def pause_campaign(
    campaign_id: CampaignId, principal: CommunicationsManage, session: SessionDep
) -> CampaignOut:
    campaign = await service.pause_campaign(session, principal, campaign_id, utcnow())
    return service.campaign_out(campaign)


@router.post("/v1/campaigns/{campaign_id}/resume", summary="Resume a paused campaign")
async def resume_campaign(
    campaign_id: CampaignId, principal: CommunicationsManage, session: SessionDep
) -> CampaignOut:
    campaign = await service.resume_campaign(session, principal, campaign_id, utcnow())
    return service.campaign_out(campaign)


@router.post(
    "/v1/campaigns/{campaign_id}/cancel",
    summary="Cancel a scheduled, sending or paused campaign (unsent messages are suppressed)",
)
async def cancel_campaign(
    campaign_id: CampaignId, principal: CommunicationsManage, session: SessionDep
) -> CampaignOut:
    campaign = await service.cancel_campaign(session, principal, campaign_id, utcnow())
    return service.campaign_out(campaign)


@router.get("/v1/campaigns/{campaign_id}/results", summary="Results per channel")
async def campaign_results(
    campaign_id: CampaignId,
    principal: CommunicationsReview,
    session: SessionDep,
    send_round: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> CampaignResults:
    return await results.campaign_results(session, principal, campaign_id, send_round)


@router.get(
    "/v1/campaigns/{campaign_id}/results/patients",
    summary="Per-patient results: status per channel, failure reason, replied, opted out",
)
async def patient_results(
    campaign_id: CampaignId,
    principal: CommunicationsReview,
    session: SessionDep,
    page: Pages,
    send_round: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    status: ResultStatus | None = None,
) -> Page[PatientResultOut]:
    items, cursor = await results.patient_results(
        session, principal, campaign_id, send_round, status, page
    )
    return Page(data=items, next_cursor=cursor)
