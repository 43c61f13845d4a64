"""GraphQL for booking: slots, nextAvailable, createHold, confirmHold,
rescheduleAppointment, cancelAppointment. Thin: the same services as REST."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.permission import BasePermission

from api.auth.dependencies import check_scopes
from api.auth.scopes import Scope
from api.booking import changes, holds, report, service
from api.booking.schemas import (
    AppointmentOut,
    CancelIn,
    ConfirmOut,
    HoldCreate,
    HoldOut,
    PatientDetails,
    RescheduleIn,
    SlotOut,
)
from api.core.clock import utcnow
from api.graphql.context import Context
from api.graphql.idempotency import run_idempotent
from api.graphql.inputs import validated
from api.graphql.permissions import requires_scopes

Info = strawberry.Info[Context, None]
IdempotencyKey = Annotated[
    str,
    strawberry.argument(
        description="A unique key per booking step (e.g. a UUID): a retry with the same key "
        "and input returns the first answer; the same key with other input is refused."
    ),
]
READ = Scope.SCHEDULE_READ.value
WRITE = Scope.APPOINTMENTS_WRITE.value


def _widget_or(scope: str) -> type[BasePermission]:
    class WidgetOrScope(BasePermission):
        message = f"This field needs the scope {scope} or a publishable key."

        def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
            principal = info.context.principal
            if principal.kind != "publishable_key":
                check_scopes(principal, [scope])
            return True

    WidgetOrScope.__name__ = f"WidgetOr_{scope.replace(':', '_')}"
    return WidgetOrScope


WidgetOrRead = _widget_or(READ)
WidgetOrWrite = _widget_or(WRITE)


def _deps(info: Info) -> service.BookingDeps:
    request = info.context.request
    redis = request.app.state.chairfill.redis if request is not None else None
    settings = info.context.settings
    return service.BookingDeps(
        settings=settings.booking,
        redis=redis,
        app_settings=settings,
        local=service.LOCAL_ANSWERS if request is not None else None,
    )


@strawberry.type(description="A bookable start and who / where can take it.")
class Slot:
    start: datetime = strawberry.field(description="With the location's UTC offset")
    end: datetime
    providers: list[str]
    operatories: list[str]

    @classmethod
    def from_out(cls, slot: SlotOut) -> Slot:
        return cls(**slot.model_dump())


@strawberry.type(description="An appointment type patients may book online.")
class BookableType:
    id: strawberry.ID
    name: str
    duration_minutes: int


@strawberry.type(description="A location's self-bookable appointment types.")
class BookableTypes:
    types: list[BookableType]
    time_zone: str


@strawberry.type(description="Slots of a range, with the mirror's freshness.")
class Slots:
    slots: list[Slot]
    data_as_of: datetime | None
    time_zone: str


@strawberry.type(description="The first bookable slot (null when none in the horizon).")
class NextAvailable:
    slot: Slot | None
    data_as_of: datetime | None
    time_zone: str


@strawberry.type(description="A tentative hold on a slot.")
class Hold:
    id: strawberry.ID
    status: str
    location_id: str
    appointment_type_id: str
    provider_id: str
    operatory_id: str
    start: datetime
    end: datetime
    hold_expires_at: datetime
    appointment_id: str | None
    patient_id: str | None
    task_id: str | None

    @classmethod
    def from_out(cls, hold: HoldOut) -> Hold:
        return cls(id=strawberry.ID(hold.id), **hold.model_dump(exclude={"id"}))


@strawberry.type(description="An appointment in the practice's calendar.")
class Appointment:
    id: strawberry.ID
    location_id: str
    patient_id: str
    provider_id: str | None
    operatory_id: str | None
    appointment_type_id: str | None
    start: datetime
    end: datetime
    status: str
    source: str

    @classmethod
    def from_out(cls, appointment: AppointmentOut) -> Appointment:
        return cls(id=strawberry.ID(appointment.id), **appointment.model_dump(exclude={"id"}))


@strawberry.type(description="A confirmation: booked, or sent to the front desk.")
class Confirmation:
    status: str = strawberry.field(description="confirmed or needs_review")
    hold: Hold
    appointment: Appointment | None
    patient_id: str | None
    patient_created: bool
    task_id: str | None

    @classmethod
    def from_out(cls, out: ConfirmOut) -> Confirmation:
        return cls(
            status=out.status,
            hold=Hold.from_out(out.hold),
            appointment=Appointment.from_out(out.appointment) if out.appointment else None,
            patient_id=out.patient_id,
            patient_created=out.patient_created,
            task_id=out.task_id,
        )


@strawberry.input(description="Hold a slot.")
class HoldInput:
    location_id: str
    appointment_type_id: str
    start: datetime
    provider_id: str | None = None
    operatory_id: str | None = None


@strawberry.input(description="The patient booking the slot.")
class PatientInput:
    first_name: str
    last_name: str
    birthdate: date
    mobile: str | None = None
    email: str | None = None
    notes: str | None = None
    sms_consent: bool = False
    email_consent: bool = False
    invite: str | None = strawberry.field(
        default=None, description="A one-tap booking link's code (see bookingInvite)"
    )


@strawberry.input(description="Where an appointment moves to.")
class RescheduleInput:
    start: datetime
    provider_id: str | None = None
    operatory_id: str | None = None


@strawberry.type(description="Daily booking reconciliation of one location.")
class BookingReport:
    location_id: str
    date: date
    time_zone: str
    online_bookings: int
    written_back: int
    pending: int
    failed: int
    exceptions: int


@strawberry.type
class BookingQuery:
    @strawberry.field(
        permission_classes=[WidgetOrRead], description="Self-bookable appointment types."
    )
    async def bookable_appointment_types(self, info: Info, location_id: str) -> BookableTypes:
        async with info.context.db() as session:
            out = await service.bookable_types(session, info.context.principal, location_id)
        return BookableTypes(
            types=[
                BookableType(
                    id=strawberry.ID(t.id), name=t.name, duration_minutes=t.duration_minutes
                )
                for t in out.data
            ],
            time_zone=out.time_zone,
        )

    @strawberry.field(permission_classes=[WidgetOrRead], description="Bookable slots.")
    async def slots(
        self,
        info: Info,
        location_id: str,
        appointment_type: str,
        start: str,
        end: str,
        provider: str | None = None,
    ) -> Slots:
        async with info.context.db() as session:
            out = await service.find_slots(
                session,
                info.context.principal,
                _deps(info),
                location_id=location_id,
                appointment_type_id=appointment_type,
                start=start,
                end=end,
                provider_id=provider,
                now=utcnow(),
            )
        return Slots(
            slots=[Slot.from_out(s) for s in out.data],
            data_as_of=out.data_as_of,
            time_zone=out.time_zone,
        )

    @strawberry.field(permission_classes=[WidgetOrRead], description="The first slot.")
    async def next_available(
        self,
        info: Info,
        location_id: str,
        appointment_type: str,
        provider: str | None = None,
        after: str | None = None,
    ) -> NextAvailable:
        async with info.context.db() as session:
            out = await service.next_available(
                session,
                info.context.principal,
                _deps(info),
                location_id=location_id,
                appointment_type_id=appointment_type,
                provider_id=provider,
                after=after,
                now=utcnow(),
            )
        return NextAvailable(
            slot=Slot.from_out(out.data) if out.data else None,
            data_as_of=out.data_as_of,
            time_zone=out.time_zone,
        )

    @strawberry.field(extensions=[requires_scopes(READ)], description="Daily booking report.")
    async def booking_report(self, info: Info, location_id: str, date: date) -> BookingReport:
        async with info.context.db() as session:
            out = await report.get_report(session, info.context.principal, location_id, date)
        return BookingReport(**out.model_dump(exclude={"items"}))


@strawberry.type
class BookingMutation:
    @strawberry.mutation(
        permission_classes=[WidgetOrWrite], description="Hold a slot (idempotent per key)."
    )
    async def create_hold(
        self, info: Info, input: HoldInput, idempotency_key: IdempotencyKey
    ) -> Hold:
        data = validated(HoldCreate, strawberry.asdict(input), "input.")

        async def run() -> HoldOut:
            async with info.context.db() as session:
                return await holds.create_hold(
                    session, info.context.principal, _deps(info), data, utcnow()
                )

        out = await run_idempotent(
            info.context,
            key=idempotency_key,
            mutation="createHold",
            request=data.model_dump(mode="json"),
            out_type=HoldOut,
            run=run,
        )
        return Hold.from_out(out)

    @strawberry.mutation(
        permission_classes=[WidgetOrWrite],
        description="Confirm a hold with the patient (idempotent per key).",
    )
    async def confirm_hold(
        self,
        info: Info,
        id: strawberry.ID,
        patient: PatientInput,
        idempotency_key: IdempotencyKey,
    ) -> Confirmation:
        data = validated(PatientDetails, strawberry.asdict(patient), "patient.")

        async def run() -> ConfirmOut:
            async with info.context.db() as session:
                return await holds.confirm_hold(
                    session, info.context.principal, _deps(info), str(id), data, utcnow()
                )

        out = await run_idempotent(
            info.context,
            key=idempotency_key,
            mutation="confirmHold",
            request={"id": str(id), "patient": data.model_dump(mode="json")},
            out_type=ConfirmOut,
            run=run,
        )
        return Confirmation.from_out(out)

    @strawberry.mutation(extensions=[requires_scopes(WRITE)], description="Move an appointment.")
    async def reschedule_appointment(
        self, info: Info, id: strawberry.ID, input: RescheduleInput
    ) -> Appointment:
        data = validated(RescheduleIn, strawberry.asdict(input), "input.")
        async with info.context.db() as session:
            out = await changes.reschedule(
                session, info.context.principal, _deps(info), str(id), data, utcnow()
            )
        return Appointment.from_out(out)

    @strawberry.mutation(extensions=[requires_scopes(WRITE)], description="Cancel one.")
    async def cancel_appointment(
        self, info: Info, id: strawberry.ID, reason: str | None = None
    ) -> Appointment:
        data = validated(CancelIn, {"reason": reason}, "")
        async with info.context.db() as session:
            out = await changes.cancel(session, info.context.principal, str(id), data, utcnow())
        return Appointment.from_out(out)
