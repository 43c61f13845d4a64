"""REST: segments (CRUD, preview, explain), the rule field catalog and templates."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, Security

from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.core.clock import utcnow
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import IdempotentOptional, SessionDep, api_router
from api.segments import service
from api.segments.schemas import (
    ExplainOut,
    FieldOut,
    PreviewOut,
    PreviewRequest,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
    TemplateOut,
)

router = api_router("segments")

CommunicationsReview = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_REVIEW.value])
]
CommunicationsManage = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_MANAGE.value])
]
Pages = Annotated[PageParams, Depends(page_params)]


@router.get("/v1/segment-fields", summary="The fields, types and operators rules can use")
async def list_segment_fields(principal: CommunicationsReview) -> list[FieldOut]:
    return service.list_fields()


@router.get("/v1/segment-templates", summary="Built-in segment templates")
async def list_segment_templates(principal: CommunicationsReview) -> list[TemplateOut]:
    return service.list_templates()


@router.post(
    "/v1/segments",
    status_code=201,
    summary="Create a segment (from a rule or a template)",
    dependencies=[IdempotentOptional],
)
async def create_segment(
    data: SegmentCreate, principal: CommunicationsManage, session: SessionDep
) -> SegmentOut:
    segment = await service.create_segment(session, principal, data, utcnow())
    return SegmentOut.model_validate(segment)


@router.get("/v1/segments", summary="List segments (oldest first)")
async def list_segments(
    principal: CommunicationsReview, session: SessionDep, page: Pages
) -> Page[SegmentOut]:
    items, cursor = await service.list_segments(session, principal, page)
    return Page(data=[SegmentOut.model_validate(s) for s in items], next_cursor=cursor)


@router.post(
    "/v1/segments/preview",
    summary="Preview a rule: count, a sample and data_as_of (nothing is saved)",
)
async def preview_rule(
    data: PreviewRequest, principal: CommunicationsReview, session: SessionDep
) -> PreviewOut:
    return await service.preview_rule(session, principal, data.rule, data.location_ids, utcnow())


@router.get("/v1/segments/{segment_id}", summary="One segment")
async def get_segment(
    segment_id: str, principal: CommunicationsReview, session: SessionDep
) -> SegmentOut:
    return SegmentOut.model_validate(await service.get_segment(session, principal, segment_id))


@router.patch("/v1/segments/{segment_id}", summary="Change a segment")
async def update_segment(
    segment_id: str, data: SegmentUpdate, principal: CommunicationsManage, session: SessionDep
) -> SegmentOut:
    segment = await service.update_segment(session, principal, segment_id, data, utcnow())
    return SegmentOut.model_validate(segment)


@router.delete("/v1/segments/{segment_id}", status_code=204, summary="Delete a segment")
async def delete_segment(
    segment_id: str, principal: CommunicationsManage, session: SessionDep
) -> Response:
    await service.delete_segment(session, principal, segment_id)
    return Response(status_code=204)


@router.get(
    "/v1/segments/{segment_id}/preview",
    summary="Who is in the segment now: count, a sample and data_as_of",
)
async def preview_segment(
    segment_id: str, principal: CommunicationsReview, session: SessionDep
) -> PreviewOut:
    return await service.preview_segment(session, principal, segment_id, utcnow())


@router.get(
    "/v1/segments/{segment_id}/explain",
    summary="Why a patient is (or is not) in the segment: every predicate's value",
)
async def explain_segment(
    segment_id: str,
    principal: CommunicationsReview,
    session: SessionDep,
    patient_id: Annotated[str, Query(max_length=40, description="A patient id")],
) -> ExplainOut:
    return await service.explain_segment(session, principal, segment_id, patient_id, utcnow())
