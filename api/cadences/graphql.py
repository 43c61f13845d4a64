"""GraphQL for win-back cadences: the same service functions as `/v1/cadences...`.
Steps, sources and exits travel as JSON in the REST shape (validated by the same models),
because a step's message is one of several content kinds."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from api.auth.scopes import Scope
from api.cadences import service
from api.cadences.models import ENROLLMENT_STATUSES
from api.cadences.schemas import (
    CadenceCreate,
    CadenceMetrics,
    CadenceOut,
    CadenceUpdate,
    EnrollmentDetail,
    EnrollmentOut,
    EnrollRequest,
    MetricsRow,
)
from api.core.clock import utcnow
from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT
from api.graphql.context import Context
from api.graphql.inputs import validated
from api.graphql.permissions import requires_scopes
from api.tenancy.graphql import _page

Info = strawberry.Info[Context, None]
REVIEW = Scope.COMMUNICATIONS_REVIEW.value
MANAGE = Scope.COMMUNICATIONS_MANAGE.value


@strawberry.type(description="A win-back cadence: ordered text, email and call steps.")
class Cadence:
    id: strawberry.ID
    name: str
    description: str | None
    status: str = strawberry.field(description="active or paused")
    paused_at: dt.datetime | None
    template: str | None
    steps: JSON = strawberry.field(description="The steps, as in REST")
    sources: JSON = strawberry.field(description="Segments patients enroll from, with variants")
    exits: JSON = strawberry.field(description="Which exits apply")
    reentry_after_days: int | None
    household_aware: bool
    send_local_time: dt.time
    location_ids: list[str]
    appointment_type_id: str | None = strawberry.field(
        description="Preselected by the one-tap booking links"
    )
    active_enrollments: int
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_out(cls, out: CadenceOut) -> Cadence:
        data = out.model_dump(mode="json", exclude_none=True)
        return cls(
            id=strawberry.ID(out.id),
            name=out.name,
            description=out.description,
            status=out.status,
            paused_at=out.paused_at,
            template=out.template,
            steps=cast(JSON, data["steps"]),
            sources=cast(JSON, data["sources"]),
            exits=cast(JSON, data["exits"]),
            reentry_after_days=out.reentry_after_days,
            household_aware=out.household_aware,
            send_local_time=out.send_local_time,
            location_ids=out.location_ids,
            appointment_type_id=out.appointment_type_id,
            active_enrollments=out.active_enrollments,
            created_by=out.created_by,
            created_at=out.created_at,
            updated_at=out.updated_at,
        )


@strawberry.type(description="One page of cadences.")
class CadenceConnection:
    nodes: list[Cadence]
    next_cursor: str | None = strawberry.field(description="Pass as `after`; null at the end.")


@strawberry.type(description="A built-in cadence.")
class CadenceTemplate:
    name: str
    title: str
    description: str
    steps: JSON


@strawberry.type(description="One step run for an enrollment.")
class CadenceStepRun:
    position: int
    channel: str
    outcome: str = strawberry.field(
        description="sent, suppressed, task_created or household_covered"
    )
    message_id: str | None
    task_id: str | None
    detail: str | None
    ran_at: dt.datetime


@strawberry.type(description="A patient's way through a cadence.")
class CadenceEnrollment:
    id: strawberry.ID
    cadence_id: str
    patient_id: str
    location_id: str
    variant: str
    source: str = strawberry.field(description="segment or manual")
    segment_id: str | None
    status: str = strawberry.field(description="active, completed or exited")
    enrolled_at: dt.datetime
    next_position: int | None
    next_due_at: dt.datetime | None
    exit_reason: str | None
    exited_at: dt.datetime | None
    completed_at: dt.datetime | None
    booked_appointment_id: str | None
    booked_at: dt.datetime | None
    booked_via_position: int | None = strawberry.field(
        description="The step whose one-tap booking link they booked through"
    )
    steps: list[CadenceStepRun] | None = strawberry.field(
        description="The steps run (when asking for one enrollment)"
    )

    @classmethod
    def from_out(cls, out: EnrollmentOut) -> CadenceEnrollment:
        steps = None
        if isinstance(out, EnrollmentDetail):
            steps = [CadenceStepRun(**s.model_dump()) for s in out.steps]
        fields = out.model_dump(exclude={"id", "steps"})
        return cls(id=strawberry.ID(out.id), steps=steps, **fields)


@strawberry.type(description="One page of enrollments.")
class CadenceEnrollmentConnection:
    nodes: list[CadenceEnrollment]
    next_cursor: str | None


@strawberry.type(description="A patient not enrolled, and why.")
class CadenceSkippedPatient:
    patient_id: str
    reason: str = strawberry.field(
        description="already_enrolled, reentry_not_allowed or already_booked"
    )


@strawberry.type(description="What an enrollment request did.")
class CadenceEnrollResult:
    enrolled: list[CadenceEnrollment]
    skipped: list[CadenceSkippedPatient]


@strawberry.type(description="Outcomes of a group of enrollments.")
class CadenceMetricsRow:
    key: str = strawberry.field(description="`total`, the variant, or the cycle (YYYY-MM)")
    enrolled: int
    contacted: int
    replied: int
    booked: int
    reactivation_rate: float
    opted_out: int
    median_days_to_booking: float | None

    @classmethod
    def of(cls, key: str, row: MetricsRow) -> CadenceMetricsRow:
        return cls(key=key, **row.model_dump(include=set(MetricsRow.model_fields)))


@strawberry.type(description="A cadence's outcomes: in total, per variant, per cycle.")
class CadenceMetricsResult:
    cadence_id: str
    total: CadenceMetricsRow
    by_variant: list[CadenceMetricsRow]
    by_cycle: list[CadenceMetricsRow]

    @classmethod
    def from_out(cls, out: CadenceMetrics) -> CadenceMetricsResult:
        return cls(
            cadence_id=out.cadence_id,
            total=CadenceMetricsRow.of("total", out.total),
            by_variant=[CadenceMetricsRow.of(r.variant, r) for r in out.by_variant],
            by_cycle=[CadenceMetricsRow.of(r.cycle, r) for r in out.by_cycle],
        )


@strawberry.type
class CadencesQuery:
    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="One cadence.")
    async def cadence(self, info: Info, id: strawberry.ID) -> Cadence:
        async with info.context.db() as session:
            row = await service.get_cadence(session, info.context.principal, str(id))
            out = await service.cadence_out(session, row)
        return Cadence.from_out(out)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="Cadences, by id.")
    async def cadences(
        self, info: Info, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> CadenceConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            items, cursor = await service.list_cadences(session, info.context.principal, page)
        return CadenceConnection(nodes=[Cadence.from_out(c) for c in items], next_cursor=cursor)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="Built-in cadences.")
    def cadence_templates(self) -> list[CadenceTemplate]:
        return [
            CadenceTemplate(
                name=t.name,
                title=t.title,
                description=t.description,
                steps=cast(JSON, t.model_dump(mode="json", exclude_none=True)["steps"]),
            )
            for t in service.list_templates()
        ]

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="A cadence's enrollments.")
    async def cadence_enrollments(
        self,
        info: Info,
        cadence_id: strawberry.ID,
        status: str | None = None,
        patient_id: str | None = None,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
    ) -> CadenceEnrollmentConnection:
        page = _page(first, after)
        if status is not None and status not in ENROLLMENT_STATUSES:
            raise ValidationProblem(
                f"Unknown status {status!r}.",
                errors=[{"field": "status", "message": f"one of {', '.join(ENROLLMENT_STATUSES)}"}],
            )
        async with info.context.db() as session:
            items, cursor = await service.list_enrollments(
                session, info.context.principal, str(cadence_id), status, patient_id, page
            )
        return CadenceEnrollmentConnection(
            nodes=[CadenceEnrollment.from_out(e) for e in items], next_cursor=cursor
        )

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)], description="One enrollment with its steps."
    )
    async def cadence_enrollment(
        self, info: Info, cadence_id: strawberry.ID, id: strawberry.ID
    ) -> CadenceEnrollment:
        async with info.context.db() as session:
            out = await service.get_enrollment(
                session, info.context.principal, str(cadence_id), str(id)
            )
        return CadenceEnrollment.from_out(out)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="A cadence's outcomes.")
    async def cadence_metrics(self, info: Info, id: strawberry.ID) -> CadenceMetricsResult:
        async with info.context.db() as session:
            out = await service.cadence_metrics(session, info.context.principal, str(id))
        return CadenceMetricsResult.from_out(out)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not strawberry.UNSET}


@strawberry.input(description="A new cadence: `steps` (REST shape, JSON) or a `template`.")
class CadenceInput:
    name: str
    description: str | None = strawberry.UNSET
    template: str | None = strawberry.UNSET
    steps: JSON | None = strawberry.UNSET
    sources: JSON | None = strawberry.UNSET
    exits: JSON | None = strawberry.UNSET
    reentry_after_days: int | None = strawberry.UNSET
    household_aware: bool | None = strawberry.UNSET
    send_local_time: dt.time | None = strawberry.UNSET
    appointment_type_id: str | None = strawberry.UNSET
    location_ids: list[str] | None = strawberry.UNSET


@strawberry.input(description="Changes to a cadence; omitted fields stay as they are.")
class CadencePatch:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    steps: JSON | None = strawberry.UNSET
    sources: JSON | None = strawberry.UNSET
    exits: JSON | None = strawberry.UNSET
    reentry_after_days: int | None = strawberry.UNSET
    household_aware: bool | None = strawberry.UNSET
    send_local_time: dt.time | None = strawberry.UNSET
    appointment_type_id: str | None = strawberry.UNSET


@strawberry.type
class CadencesMutation:
    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Create a cadence.")
    async def create_cadence(self, info: Info, input: CadenceInput) -> Cadence:
        data = validated(CadenceCreate, _given(vars(input)), "input.")
        async with info.context.db() as session:
            row = await service.create_cadence(session, info.context.principal, data, utcnow())
            out = await service.cadence_out(session, row)
        return Cadence.from_out(out)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Change a cadence.")
    async def update_cadence(self, info: Info, id: strawberry.ID, patch: CadencePatch) -> Cadence:
        data = validated(CadenceUpdate, _given(vars(patch)), "patch.")
        async with info.context.db() as session:
            row = await service.update_cadence(
                session, info.context.principal, str(id), data, utcnow()
            )
            out = await service.cadence_out(session, row)
        return Cadence.from_out(out)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Delete a cadence; returns its id."
    )
    async def delete_cadence(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.db() as session:
            await service.delete_cadence(session, info.context.principal, str(id))
        return id

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Copy a cadence (the copy is paused)."
    )
    async def duplicate_cadence(self, info: Info, id: strawberry.ID) -> Cadence:
        async with info.context.db() as session:
            row = await service.duplicate_cadence(
                session, info.context.principal, str(id), utcnow()
            )
            out = await service.cadence_out(session, row)
        return Cadence.from_out(out)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Pause a cadence.")
    async def pause_cadence(self, info: Info, id: strawberry.ID) -> Cadence:
        async with info.context.db() as session:
            row = await service.pause_cadence(session, info.context.principal, str(id), utcnow())
            out = await service.cadence_out(session, row)
        return Cadence.from_out(out)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Resume a cadence.")
    async def resume_cadence(self, info: Info, id: strawberry.ID) -> Cadence:
        async with info.context.db() as session:
            row = await service.resume_cadence(session, info.context.principal, str(id), utcnow())
            out = await service.cadence_out(session, row)
        return Cadence.from_out(out)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Enroll patients by id.")
    async def enroll_in_cadence(
        self,
        info: Info,
        cadence_id: strawberry.ID,
        patient_ids: list[str],
        variant: str = "default",
    ) -> CadenceEnrollResult:
        data = validated(EnrollRequest, {"patient_ids": patient_ids, "variant": variant})
        async with info.context.db() as session:
            out = await service.enroll_patients(
                session, info.context.principal, str(cadence_id), data, utcnow()
            )
        return CadenceEnrollResult(
            enrolled=[CadenceEnrollment.from_out(e) for e in out.enrolled],
            skipped=[CadenceSkippedPatient(**s.model_dump()) for s in out.skipped],
        )

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)],
        description="Take a patient out of a cadence (exit reason `removed`).",
    )
    async def remove_cadence_enrollment(
        self, info: Info, cadence_id: strawberry.ID, id: strawberry.ID
    ) -> CadenceEnrollment:
        async with info.context.db() as session:
            out = await service.remove_enrollment(
                session, info.context.principal, str(cadence_id), str(id), utcnow()
            )
        return CadenceEnrollment.from_out(out)
