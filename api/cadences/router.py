"""REST: win-back cadences, their enrollments and metrics. Thin: every route calls the
service. Reading needs `communications:review`; changing, `communications:manage`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, Security

from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.cadences import service
from api.cadences.schemas import (
    CadenceCreate,
    CadenceMetrics,
    CadenceOut,
    CadenceTemplateOut,
    CadenceUpdate,
    EnrollmentDetail,
    EnrollmentOut,
    EnrollmentStatus,
    EnrollRequest,
    EnrollResult,
)
from api.core.clock import utcnow
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import IdempotentOptional, SessionDep, api_router

router = api_router("cadences")

Review = Annotated[Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_REVIEW.value])]
Manage = Annotated[Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_MANAGE.value])]
Pages = Annotated[PageParams, Depends(page_params)]


@router.get("/v1/cadence-templates", summary="Built-in cadences (the day 1/4/9/14 win-back)")
async def list_cadence_templates(principal: Review) -> list[CadenceTemplateOut]:
    return service.list_templates()


@router.post(
    "/v1/cadences",
    status_code=201,
    summary="Create a cadence (from steps or a template)",
    description="Steps run in order for each enrolled patient: a text or email through the "
    "send ledger (opt-outs, consent and caps re-checked at send time) or a front-desk call "
    "task. Enrollment is continuous from `sources` (segments, checked hourly) or manual. "
    "Exits (booked, replied, opted out, ...) end an enrollment at once, in the middle of a "
    "delay too.",
    dependencies=[IdempotentOptional],
)
async def create_cadence(data: CadenceCreate, principal: Manage, session: SessionDep) -> CadenceOut:
    cadence = await service.create_cadence(session, principal, data, utcnow())
    return await service.cadence_out(session, cadence)


@router.get("/v1/cadences", summary="List cadences (oldest first)")
async def list_cadences(principal: Review, session: SessionDep, page: Pages) -> Page[CadenceOut]:
    items, cursor = await service.list_cadences(session, principal, page)
    return Page(data=items, next_cursor=cursor)


@router.get("/v1/cadences/{cadence_id}", summary="One cadence")
async def get_cadence(cadence_id: str, principal: Review, session: SessionDep) -> CadenceOut:
    cadence = await service.get_cadence(session, principal, cadence_id)
    return await service.cadence_out(session, cadence)


@router.patch(
    "/v1/cadences/{cadence_id}",
    summary="Change a cadence (new steps apply from each enrollment's next step)",
)
async def update_cadence(
    cadence_id: str, data: CadenceUpdate, principal: Manage, session: SessionDep
) -> CadenceOut:
    cadence = await service.update_cadence(session, principal, cadence_id, data, utcnow())
    return await service.cadence_out(session, cadence)


@router.delete(
    "/v1/cadences/{cadence_id}",
    status_code=204,
    summary="Delete a cadence and its enrollments (sent messages stay in the log)",
)
async def delete_cadence(cadence_id: str, principal: Manage, session: SessionDep) -> Response:
    await service.delete_cadence(session, principal, cadence_id)
    return Response(status_code=204)


@router.post(
    "/v1/cadences/{cadence_id}/duplicate",
    status_code=201,
    summary="Copy a cadence (the copy starts paused, with no enrollments)",
    dependencies=[IdempotentOptional],
)
async def duplicate_cadence(cadence_id: str, principal: Manage, session: SessionDep) -> CadenceOut:
    cadence = await service.duplicate_cadence(session, principal, cadence_id, utcnow())
    return await service.cadence_out(session, cadence)


@router.post(
    "/v1/cadences/{cadence_id}/pause",
    summary="Pause: pending steps wait (exits still apply)",
)
async def pause_cadence(cadence_id: str, principal: Manage, session: SessionDep) -> CadenceOut:
    cadence = await service.pause_cadence(session, principal, cadence_id, utcnow())
    return await service.cadence_out(session, cadence)


@router.post(
    "/v1/cadences/{cadence_id}/resume",
    summary="Resume: pending steps move on by the paused time (no burst of backlog)",
)
async def resume_cadence(cadence_id: str, principal: Manage, session: SessionDep) -> CadenceOut:
    cadence = await service.resume_cadence(session, principal, cadence_id, utcnow())
    return await service.cadence_out(session, cadence)


@router.post(
    "/v1/cadences/{cadence_id}/enrollments",
    summary="Enroll patients by id",
    description="All or nothing for unknown patients (422 naming each). Patients already in "
    "the cadence, not allowed back yet (`reentry_after_days`) or already booked are listed "
    "under `skipped`.",
    dependencies=[IdempotentOptional],
)
async def enroll_patients(
    cadence_id: str, data: EnrollRequest, principal: Manage, session: SessionDep
) -> EnrollResult:
    return await service.enroll_patients(session, principal, cadence_id, data, utcnow())


@router.get("/v1/cadences/{cadence_id}/enrollments", summary="List a cadence's enrollments")
async def list_enrollments(
    cadence_id: str,
    principal: Review,
    session: SessionDep,
    page: Pages,
    status: Annotated[EnrollmentStatus | None, Query(description="Only this status")] = None,
    patient_id: Annotated[
        str | None, Query(max_length=40, description="Only this patient's enrollments")
    ] = None,
) -> Page[EnrollmentOut]:
    items, cursor = await service.list_enrollments(
        session, principal, cadence_id, status, patient_id, page
    )
    return Page(data=items, next_cursor=cursor)


@router.get(
    "/v1/cadences/{cadence_id}/enrollments/{enrollment_id}",
    summary="One enrollment with the steps run for it",
)
async def get_enrollment(
    cadence_id: str, enrollment_id: str, principal: Review, session: SessionDep
) -> EnrollmentDetail:
    return await service.get_enrollment(session, principal, cadence_id, enrollment_id)


@router.delete(
    "/v1/cadences/{cadence_id}/enrollments/{enrollment_id}",
    summary="Take a patient out of the cadence (exit reason `removed`)",
)
async def remove_enrollment(
    cadence_id: str, enrollment_id: str, principal: Manage, session: SessionDep
) -> EnrollmentOut:
    return await service.remove_enrollment(session, principal, cadence_id, enrollment_id, utcnow())


@router.get(
    "/v1/cadences/{cadence_id}/metrics",
    summary="Enrolled, contacted, replied, booked (reactivation rate), opted out and median "
    "days to booking: in total, per segment variant and per monthly cycle",
)
async def cadence_metrics(
    cadence_id: str, principal: Review, session: SessionDep
) -> CadenceMetrics:
    return await service.cadence_metrics(session, principal, cadence_id)
