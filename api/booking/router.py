"""REST: slots, next available, holds, confirmations, reschedules, cancellations, the
booking policy and the daily report. Thin: every route calls a booking service."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Request, Response, Security

from api.auth.dependencies import authorize, authorize_or_publishable
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.booking import changes, holds, report, service
from api.booking.schemas import (
    AppointmentOut,
    AppointmentTypesOut,
    CancelIn,
    ConfirmOut,
    HoldCreate,
    HoldOut,
    NextAvailableOut,
    PatientDetails,
    PolicyIn,
    PolicyOut,
    ReportOut,
    RescheduleIn,
    SlotsOut,
)
from api.core.clock import utcnow
from api.core.encoding import json_response
from api.core.routing import Idempotent, IdempotentOptional, SessionDep, api_router

router = api_router("booking")

ScheduleReadOrWidget = Annotated[
    Principal, Security(authorize_or_publishable, scopes=[Scope.SCHEDULE_READ.value])
]
BookOrWidget = Annotated[
    Principal, Security(authorize_or_publishable, scopes=[Scope.APPOINTMENTS_WRITE.value])
]
ScheduleRead = Annotated[Principal, Security(authorize, scopes=[Scope.SCHEDULE_READ.value])]
AppointmentsWrite = Annotated[
    Principal, Security(authorize, scopes=[Scope.APPOINTMENTS_WRITE.value])
]

TypeParam = Annotated[
    str, Query(min_length=1, max_length=40, description="An appointment type id of the location")
]
ProviderParam = Annotated[
    str | None, Query(max_length=40, description="Only this provider (default: anyone)")
]


def deps(request: Request) -> service.BookingDeps:
    return service.BookingDeps.of(request.app.state.chairfill)


@router.get(
    "/v1/locations/{location_id}/appointment-types",
    summary="The appointment types patients may book online at a location",
)
async def list_bookable_types(
    location_id: str, principal: ScheduleReadOrWidget, session: SessionDep
) -> AppointmentTypesOut:
    return await service.bookable_types(session, principal, location_id)


@router.get(
    "/v1/locations/{location_id}/slots",
    summary="Bookable slots of an appointment type in a range (at most 31 days)",
    response_model=SlotsOut,
)
async def list_slots(
    request: Request,
    location_id: str,
    principal: ScheduleReadOrWidget,
    session: SessionDep,
    appointment_type: TypeParam,
    start: Annotated[
        str, Query(max_length=40, description="Local date (`2026-11-22`) or RFC 3339")
    ],
    end: Annotated[
        str,
        Query(max_length=40, description="Local date (inclusive) or RFC 3339 (exclusive)"),
    ],
    provider: ProviderParam = None,
) -> Response:
    # Sent as the service serialized (and cached) them: no parse and re-encode per hit,
    # and gzipped (once per answer, not per request) for clients that take it.
    answer = await service.find_slot_answer(
        session,
        principal,
        deps(request),
        location_id=location_id,
        appointment_type_id=appointment_type,
        start=start,
        end=end,
        provider_id=provider,
        now=utcnow(),
    )
    return json_response(answer.body, answer.gzipped(), request.headers.get("accept-encoding"))


@router.get(
    "/v1/locations/{location_id}/next-available",
    summary="The first bookable slot of an appointment type",
)
async def next_available(
    request: Request,
    location_id: str,
    principal: ScheduleReadOrWidget,
    session: SessionDep,
    appointment_type: TypeParam,
    provider: ProviderParam = None,
    after: Annotated[
        str | None, Query(max_length=40, description="Local date or RFC 3339 (default: now)")
    ] = None,
) -> NextAvailableOut:
    return await service.next_available(
        session,
        principal,
        deps(request),
        location_id=location_id,
        appointment_type_id=appointment_type,
        provider_id=provider,
        after=after,
        now=utcnow(),
    )


@router.post(
    "/v1/holds",
    status_code=201,
    summary="Hold a slot for a few minutes (re-checked now; Idempotency-Key required)",
    dependencies=[Idempotent],
)
async def create_hold(
    request: Request, data: HoldCreate, principal: BookOrWidget, session: SessionDep
) -> HoldOut:
    return await holds.create_hold(session, principal, deps(request), data, utcnow())


@router.get("/v1/holds/{hold_id}", summary="One hold")
async def get_hold(hold_id: str, principal: BookOrWidget, session: SessionDep) -> HoldOut:
    return holds.hold_out(await holds.get_hold(session, principal, hold_id))


@router.post(
    "/v1/holds/{hold_id}/confirm",
    summary="Confirm a hold with the patient's details (Idempotency-Key required)",
    dependencies=[Idempotent],
    responses={202: {"model": ConfirmOut, "description": "Sent to the front desk"}},
)
async def confirm_hold(
    request: Request,
    response: Response,
    hold_id: str,
    data: PatientDetails,
    principal: BookOrWidget,
    session: SessionDep,
) -> ConfirmOut:
    confirmed = await holds.confirm_hold(session, principal, deps(request), hold_id, data, utcnow())
    if confirmed.status == "needs_review":
        response.status_code = 202
    return confirmed


@router.post(
    "/v1/appointments/{appointment_id}/reschedule",
    summary="Move an appointment (re-checked now; written back to the PMS)",
    dependencies=[IdempotentOptional],
)
async def reschedule_appointment(
    request: Request,
    appointment_id: str,
    data: RescheduleIn,
    principal: AppointmentsWrite,
    session: SessionDep,
) -> AppointmentOut:
    return await changes.reschedule(
        session, principal, deps(request), appointment_id, data, utcnow()
    )


@router.post(
    "/v1/appointments/{appointment_id}/cancel",
    summary="Cancel an appointment (written back to the PMS)",
    dependencies=[IdempotentOptional],
)
async def cancel_appointment(
    appointment_id: str,
    principal: AppointmentsWrite,
    session: SessionDep,
    data: CancelIn | None = None,
) -> AppointmentOut:
    return await changes.cancel(session, principal, appointment_id, data or CancelIn(), utcnow())


@router.get("/v1/locations/{location_id}/booking-policy", summary="The online-booking rules")
async def get_booking_policy(
    request: Request, location_id: str, principal: ScheduleRead, session: SessionDep
) -> PolicyOut:
    return await service.get_policy(session, principal, deps(request), location_id)


@router.put(
    "/v1/locations/{location_id}/booking-policy",
    summary="Set the online-booking rules (unset fields: the defaults)",
)
async def put_booking_policy(
    request: Request,
    location_id: str,
    data: PolicyIn,
    principal: AppointmentsWrite,
    session: SessionDep,
) -> PolicyOut:
    return await service.put_policy(session, principal, deps(request), location_id, data)


@router.get(
    "/v1/locations/{location_id}/booking-report",
    summary="Daily reconciliation: online bookings, written back, failed, exceptions",
)
async def booking_report(
    location_id: str,
    principal: ScheduleRead,
    session: SessionDep,
    date: Annotated[date, Query(description="A local date of the location (`2026-11-22`)")],
) -> ReportOut:
    return await report.get_report(session, principal, location_id, date)
