"""Win-back cadences: define the steps, enroll patients (continuously from segments, or by
hand), run each step once per enrollment through the messaging ledger or the task list,
and end enrollments the moment an exit applies (api/cadences/exits.py).

REST, GraphQL and the workers all call these functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.cadences import exits, invites, repository
from api.cadences.models import Cadence, Enrollment
from api.cadences.schemas import (
    BookingInviteOut,
    CadenceCreate,
    CadenceExits,
    CadenceMetrics,
    CadenceOut,
    CadenceSource,
    CadenceStep,
    CadenceTemplateOut,
    CadenceUpdate,
    CycleMetrics,
    EnrollmentDetail,
    EnrollmentOut,
    EnrollRequest,
    EnrollResult,
    MetricsRow,
    SkippedPatient,
    StepRunOut,
    VariantMetrics,
)
from api.cadences.templates import TEMPLATES
from api.core import jobs
from api.core.errors import Conflict, FieldError, NotFound, Problem, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, page_of
from api.core.settings import Settings
from api.events import record_event
from api.messaging import repository as messaging_repository
from api.messaging import templates as message_templates
from api.messaging.sending import MessageSource, send_message
from api.messaging.unsubscribe import public_base
from api.practice.models import Patient
from api.segments import repository as segments_repository
from api.segments import service as segments_service
from api.tasks import service as tasks_service
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location

# After the last step an enrollment stays open this long, so a booking that the last
# message or call brought in still counts (and still ends it as `booked`).
FINISH_AFTER = dt.timedelta(days=14)
# Household members share a step when one of them got it this recently.
HOUSEHOLD_WINDOW = dt.timedelta(days=30)
DISPATCH_BATCH = 500
DISPATCH_TASK = "cadences.dispatch"
ENROLL_TASK = "cadences.enroll"


def list_templates() -> list[CadenceTemplateOut]:
    return list(TEMPLATES.values())


# --- definitions --------------------------------------------------------------------------


async def _check_content(session: AsyncSession, tenant_id: str, steps: list[CadenceStep]) -> None:
    """Every message's variables are known and fit its channel (clinical ones stay out of
    SMS unless the tenant allows them): a 422 naming the step, now rather than at send."""
    preferences = await messaging_repository.preferences(session, tenant_id)
    allow_clinical = bool(preferences and preferences.allow_clinical_sms)
    errors: list[FieldError] = []
    for i, step in enumerate(steps):
        named = {"content": step.content} | {f"variants.{k}": v for k, v in step.variants.items()}
        for path, content in named.items():
            if content is None:
                continue
            try:
                message_templates.check(content, allow_clinical)
            except ValidationProblem as exc:
                errors += [
                    FieldError(
                        field=f"steps[{i}].{path}.{e.field.removeprefix('content.')}",
                        message=e.message,
                    )
                    for e in exc.errors
                ]
    if errors:
        raise ValidationProblem("Some step messages cannot be sent.", errors=errors)


def _check_order(steps: list[CadenceStep]) -> None:
    """Steps counted from enrollment must not fall before the step ahead of them."""
    reach = 0
    for i, step in enumerate(steps):
        day = step.delay_days if step.after == "enrollment" else reach + step.delay_days
        if day < reach:
            raise ValidationProblem(
                f"Step {i + 1} falls on day {day + 1}, before step {i} (day {reach + 1}).",
                errors=[{"field": f"steps[{i}].delay_days", "message": "before the step ahead"}],
            )
        reach = day


async def _check_sources(
    session: AsyncSession, principal: Principal, sources: list[CadenceSource]
) -> None:
    errors = [
        FieldError(field=f"sources[{i}].segment_id", message=f"no segment {s.segment_id!r}")
        for i, s in enumerate(sources)
        if await segments_repository.get_segment(
            session, principal.tenant_id, s.segment_id, principal.location_ids
        )
        is None
    ]
    if errors:
        raise ValidationProblem("Unknown segments.", errors=errors)


async def _check_appointment_type(
    session: AsyncSession, tenant_id: str, appointment_type_id: str | None
) -> None:
    if appointment_type_id is None:
        return
    found = await repository.appointment_type(session, tenant_id, appointment_type_id)
    if found is None or not found.self_bookable or found.deleted_at is not None:
        raise ValidationProblem(
            "One-tap links can only preselect a self-bookable appointment type.",
            errors=[
                {"field": "appointment_type_id", "message": "no self-bookable type with this id"}
            ],
        )


async def _locations(
    session: AsyncSession, principal: Principal, requested: Sequence[str]
) -> list[str]:
    visible = {
        loc.id
        for loc in await tenancy_repository.all_locations(
            session, principal.tenant_id, principal.location_ids
        )
    }
    errors = [
        FieldError(field=f"location_ids[{i}]", message=f"no location {loc!r}")
        for i, loc in enumerate(requested)
        if loc not in visible
    ]
    if errors:
        raise ValidationProblem("Unknown locations.", errors=errors)
    # A caller limited to some locations gets a cadence over exactly those.
    if not requested and principal.location_ids is not None:
        return sorted(visible)
    return sorted(set(requested))


def _dump_steps(steps: list[CadenceStep]) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json", exclude_none=True) for s in steps]


async def create_cadence(
    session: AsyncSession, principal: Principal, data: CadenceCreate, now: dt.datetime
) -> Cadence:
    steps = data.steps
    if steps is None:
        template = TEMPLATES.get(data.template or "")
        if template is None:
            raise ValidationProblem(
                "Give the steps, or a built-in template.",
                errors=[
                    {
                        "field": "template" if data.template else "steps",
                        "message": f"one of: {', '.join(TEMPLATES)}"
                        if data.template
                        else "required without a template",
                    }
                ],
            )
        steps = template.steps
    _check_order(steps)
    await _check_content(session, principal.tenant_id, steps)
    await _check_sources(session, principal, data.sources)
    await _check_appointment_type(session, principal.tenant_id, data.appointment_type_id)
    cadence = Cadence(
        tenant_id=principal.tenant_id,
        id=new_id("cadence"),
        name=data.name.strip(),
        description=data.description,
        status="active",
        location_ids=await _locations(session, principal, data.location_ids),
        steps=_dump_steps(steps),
        sources=[s.model_dump() for s in data.sources],
        exits=data.exits.model_dump(),
        reentry_after_days=data.reentry_after_days,
        household_aware=data.household_aware,
        send_local_time=data.send_local_time,
        template=data.template,
        appointment_type_id=data.appointment_type_id,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(cadence)
    await session.flush()
    return cadence


async def get_cadence(
    session: AsyncSession, principal: Principal, cadence_id: str, *, lock: bool = False
) -> Cadence:
    cadence = await repository.get_cadence(
        session, principal.tenant_id, cadence_id, principal.location_ids, lock=lock
    )
    if cadence is None:
        raise NotFound(f"There is no cadence {cadence_id}.")
    return cadence


def _out(cadence: Cadence, active: int) -> CadenceOut:
    return CadenceOut(
        id=cadence.id,
        name=cadence.name,
        description=cadence.description,
        status=cadence.status,
        paused_at=cadence.paused_at,
        template=cadence.template,
        steps=[CadenceStep.model_validate(s) for s in cadence.steps],
        sources=[CadenceSource.model_validate(s) for s in cadence.sources],
        exits=CadenceExits.model_validate(cadence.exits),
        reentry_after_days=cadence.reentry_after_days,
        household_aware=cadence.household_aware,
        send_local_time=cadence.send_local_time,
        location_ids=list(cadence.location_ids),
        appointment_type_id=cadence.appointment_type_id,
        active_enrollments=active,
        created_by=cadence.created_by,
        created_at=cadence.created_at,
        updated_at=cadence.updated_at,
    )


async def cadence_out(session: AsyncSession, cadence: Cadence) -> CadenceOut:
    counts = await repository.active_counts(session, cadence.tenant_id, [cadence.id])
    return _out(cadence, counts.get(cadence.id, 0))


async def list_cadences(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[CadenceOut], str | None]:
    rows = await repository.list_cadences(
        session, principal.tenant_id, principal.location_ids, page
    )
    items, cursor = page_of(rows, ["id"], page)
    counts = await repository.active_counts(session, principal.tenant_id, [c.id for c in items])
    return [_out(c, counts.get(c.id, 0)) for c in items], cursor


async def update_cadence(
    session: AsyncSession,
    principal: Principal,
    cadence_id: str,
    data: CadenceUpdate,
    now: dt.datetime,
) -> Cadence:
    """Changed steps apply to enrollments from their next step on; steps already run
    are never run again."""
    cadence = await get_cadence(session, principal, cadence_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if data.steps is not None:
        _check_order(data.steps)
        await _check_content(session, principal.tenant_id, data.steps)
        cadence.steps = _dump_steps(data.steps)
    if data.sources is not None:
        await _check_sources(session, principal, data.sources)
        cadence.sources = [s.model_dump() for s in data.sources]
    if data.exits is not None:
        cadence.exits = data.exits.model_dump()
    if "name" in changes and data.name is not None:
        cadence.name = data.name.strip()
    if "appointment_type_id" in changes:
        await _check_appointment_type(session, principal.tenant_id, data.appointment_type_id)
    for name in ("description", "reentry_after_days", "appointment_type_id"):
        if name in changes:
            setattr(cadence, name, changes[name])
    for name in ("household_aware", "send_local_time"):
        if changes.get(name) is not None:
            setattr(cadence, name, changes[name])
    cadence.updated_at = now
    await session.flush()
    return cadence


async def duplicate_cadence(
    session: AsyncSession, principal: Principal, cadence_id: str, now: dt.datetime
) -> Cadence:
    """A copy (paused, so it enrolls nobody until resumed) with no enrollments."""
    source = await get_cadence(session, principal, cadence_id)
    copy = Cadence(
        tenant_id=source.tenant_id,
        id=new_id("cadence"),
        name=f"{source.name} (copy)"[:200],
        description=source.description,
        status="paused",
        paused_at=now,
        location_ids=list(source.location_ids),
        steps=list(source.steps),
        sources=list(source.sources),
        exits=dict(source.exits),
        reentry_after_days=source.reentry_after_days,
        household_aware=source.household_aware,
        send_local_time=source.send_local_time,
        template=source.template,
        appointment_type_id=source.appointment_type_id,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(copy)
    await session.flush()
    return copy


async def delete_cadence(session: AsyncSession, principal: Principal, cadence_id: str) -> None:
    """Deletes the cadence with its enrollments; messages already sent stay in the log."""
    await repository.delete_cadence(session, await get_cadence(session, principal, cadence_id))


async def pause_cadence(
    session: AsyncSession, principal: Principal, cadence_id: str, now: dt.datetime
) -> Cadence:
    """Pending steps wait; exits still apply while paused. Pausing twice is harmless."""
    cadence = await get_cadence(session, principal, cadence_id, lock=True)
    if cadence.status != "paused":
        cadence.status, cadence.paused_at, cadence.updated_at = "paused", now, now
        await session.flush()
    return cadence


async def resume_cadence(
    session: AsyncSession, principal: Principal, cadence_id: str, now: dt.datetime
) -> Cadence:
    """Pending steps move on by the paused time: the backlog is not sent in a burst."""
    cadence = await get_cadence(session, principal, cadence_id, lock=True)
    if cadence.status == "paused":
        if cadence.paused_at is not None:
            await repository.shift_due_times(
                session, cadence.tenant_id, cadence.id, now - cadence.paused_at
            )
        cadence.status, cadence.paused_at, cadence.updated_at = "active", None, now
        await session.flush()
    return cadence


# --- timing -------------------------------------------------------------------------------


def step_due_at(
    step: CadenceStep, enrolled_at: dt.datetime, now: dt.datetime, send_at: dt.time, zone: str
) -> dt.datetime:
    """When a step falls due: `send_at` local time on its day, counted in the location's
    zone (so DST changes move nothing), from enrollment or from now (the previous step
    just ran). A step whose moment has passed on its day is due at once."""
    base = enrolled_at if step.after == "enrollment" else now
    tz = ZoneInfo(zone)
    day = base.astimezone(tz).date() + dt.timedelta(days=step.delay_days)
    moment = dt.datetime.combine(day, send_at, tzinfo=tz).astimezone(dt.UTC)
    return max(moment, base)


# --- enrollment ---------------------------------------------------------------------------


async def _enroll(
    session: AsyncSession,
    cadence: Cadence,
    patient_ids: Sequence[str],
    *,
    variant: str,
    source: str,
    segment_id: str | None,
    now: dt.datetime,
    visible: frozenset[str] | None = None,
    refuse_unknown: bool = False,
) -> tuple[list[Enrollment], list[SkippedPatient]]:
    """(enrolled, skipped). Patients outside the cadence's locations (and `visible`, the
    caller's) are left out, or with `refuse_unknown` are a 422 before anything is written."""
    rows = await repository.candidates(
        session,
        cadence.tenant_id,
        cadence.id,
        patient_ids,
        _enrollable_locations(cadence, visible),
        now,
    )
    found = {row.patient_id for row in rows}
    if refuse_unknown and (missing := [p for p in patient_ids if p not in found]):
        raise ValidationProblem(
            "Some patients do not exist at this cadence's locations.",
            errors=[
                FieldError(
                    field=f"patient_ids[{list(patient_ids).index(p)}]", message=f"no patient {p!r}"
                )
                for p in missing
            ],
        )
    steps = [CadenceStep.model_validate(s) for s in cadence.steps]
    skipped: list[SkippedPatient] = []
    inserts: list[dict[str, Any]] = []
    for row in rows:
        reason = None
        if row.active:
            reason = "already_enrolled"
        elif row.last_ended is not None and (
            cadence.reentry_after_days is None
            or now - row.last_ended < dt.timedelta(days=cadence.reentry_after_days)
        ):
            reason = "reentry_not_allowed"
        elif row.booked:
            reason = "already_booked"
        if reason is not None:
            skipped.append(SkippedPatient(patient_id=row.patient_id, reason=reason))
            continue
        inserts.append(
            {
                "tenant_id": cadence.tenant_id,
                "id": new_id("enrollment"),
                "cadence_id": cadence.id,
                "patient_id": row.patient_id,
                "location_id": row.location_id,
                "variant": variant,
                "source": source,
                "segment_id": segment_id,
                "status": "active",
                "enrolled_at": now,
                "cycle": now.strftime("%Y-%m"),
                "next_position": 1,
                "next_due_at": step_due_at(
                    steps[0], now, now, cadence.send_local_time, row.timezone
                ),
                "had_recall_due": row.recall_due,
                "balance_at_enrollment": row.balance if row.balance is not None else Decimal(0),
            }
        )
    inserted = await repository.insert_enrollments(session, inserts)
    raced = {r["patient_id"] for r in inserts if r["id"] not in set(inserted)}
    skipped += [SkippedPatient(patient_id=p, reason="already_enrolled") for p in sorted(raced)]
    enrolled = await repository.enrollments_by_id(session, cadence.tenant_id, inserted)
    for enrollment in enrolled:
        await record_event(
            session,
            tenant_id=cadence.tenant_id,
            type="cadence.enrolled",
            location_id=enrollment.location_id,
            data={
                "enrollment_id": enrollment.id,
                "cadence_id": cadence.id,
                "patient_id": enrollment.patient_id,
                "location_id": enrollment.location_id,
                "variant": variant,
                "source": source,
                "segment_id": segment_id,
            },
        )
    return enrolled, skipped


def _enrollable_locations(cadence: Cadence, visible: frozenset[str] | None) -> list[str] | None:
    """Where patients may enroll from: the cadence's locations (none listed: all), narrowed
    to those the caller sees. None: anywhere."""
    if not cadence.location_ids:
        return None if visible is None else sorted(visible)
    if visible is None:
        return list(cadence.location_ids)
    return sorted(set(cadence.location_ids) & visible)


def enrollment_out(enrollment: Enrollment) -> EnrollmentOut:
    return EnrollmentOut.model_validate(enrollment)


async def enroll_patients(
    session: AsyncSession,
    principal: Principal,
    cadence_id: str,
    data: EnrollRequest,
    now: dt.datetime,
) -> EnrollResult:
    """Manual enrollment. Unknown (or hidden) patients are a 422 and nobody is enrolled;
    patients already in, not allowed back yet, or already booked are listed as skipped."""
    cadence = await get_cadence(session, principal, cadence_id)
    if cadence.status != "active":
        raise Conflict(f"The cadence {cadence_id} is paused; resume it to enroll patients.")
    enrolled, skipped = await _enroll(
        session,
        cadence,
        list(dict.fromkeys(data.patient_ids)),
        variant=data.variant,
        source="manual",
        segment_id=None,
        now=now,
        visible=principal.location_ids,
        refuse_unknown=True,
    )
    return EnrollResult(enrolled=[enrollment_out(e) for e in enrolled], skipped=skipped)


async def enroll_from_sources(
    session: AsyncSession, tenant_id: str, cadence_id: str, now: dt.datetime
) -> dict[str, int]:
    """Continuous enrollment (system): patients now in a source segment enter; those who
    left it exit when the cadence says so."""
    cadence = await repository.get_cadence(session, tenant_id, cadence_id, None, lock=True)
    if cadence is None or cadence.status != "active":
        return {"enrolled": 0, "left_segment": 0}
    enrolled = left = 0
    for source in (CadenceSource.model_validate(s) for s in cadence.sources):
        members = await segments_service.current_members(session, tenant_id, source.segment_id, now)
        if members is None:
            continue
        ids = [patient_id for patient_id, _ in members]
        if cadence.exits.get("left_segment"):
            rows = await repository.exit_left_segment(
                session, tenant_id, cadence.id, source.segment_id, ids, now
            )
            await exits.record_exits(session, tenant_id, rows, now)
            left += len(rows)
        added, _ = await _enroll(
            session,
            cadence,
            ids,
            variant=source.variant,
            source="segment",
            segment_id=source.segment_id,
            now=now,
        )
        enrolled += len(added)
    return {"enrolled": enrolled, "left_segment": left}


async def list_enrollments(
    session: AsyncSession,
    principal: Principal,
    cadence_id: str,
    status: str | None,
    patient_id: str | None,
    page: PageParams,
) -> tuple[list[EnrollmentOut], str | None]:
    cadence = await get_cadence(session, principal, cadence_id)
    rows = await repository.list_enrollments(
        session, principal.tenant_id, cadence.id, status, patient_id, page
    )
    items, cursor = page_of(rows, ["id"], page)
    return [enrollment_out(e) for e in items], cursor


async def _enrollment(
    session: AsyncSession, principal: Principal, cadence_id: str, enrollment_id: str
) -> Enrollment:
    cadence = await get_cadence(session, principal, cadence_id)
    enrollment = await repository.get_enrollment(
        session, principal.tenant_id, cadence.id, enrollment_id
    )
    if enrollment is None or not principal.can_see_location(enrollment.location_id):
        raise NotFound(f"There is no enrollment {enrollment_id} in cadence {cadence_id}.")
    return enrollment


async def get_enrollment(
    session: AsyncSession, principal: Principal, cadence_id: str, enrollment_id: str
) -> EnrollmentDetail:
    enrollment = await _enrollment(session, principal, cadence_id, enrollment_id)
    runs = await repository.step_runs(session, principal.tenant_id, enrollment.id)
    return EnrollmentDetail(
        **enrollment_out(enrollment).model_dump(),
        steps=[StepRunOut.model_validate(r) for r in runs],
    )


async def remove_enrollment(
    session: AsyncSession,
    principal: Principal,
    cadence_id: str,
    enrollment_id: str,
    now: dt.datetime,
) -> EnrollmentOut:
    """Take a patient out by hand (exit reason `removed`); an ended enrollment stays as is."""
    enrollment = await _enrollment(session, principal, cadence_id, enrollment_id)
    if enrollment.status == "active":
        await repository.remove_enrollment(session, enrollment, now)
        await exits.record_exits(session, principal.tenant_id, [enrollment], now)
    return enrollment_out(enrollment)


# --- metrics ------------------------------------------------------------------------------


def _metrics_row(row: Any) -> dict[str, Any]:
    return {
        "enrolled": row.enrolled,
        "contacted": row.contacted,
        "replied": row.replied,
        "booked": row.booked,
        "reactivation_rate": round(row.booked / row.enrolled, 4) if row.enrolled else 0.0,
        "opted_out": row.opted_out,
        "median_days_to_booking": None
        if row.median_days_to_booking is None
        else round(float(row.median_days_to_booking), 2),
    }


async def cadence_metrics(
    session: AsyncSession, principal: Principal, cadence_id: str
) -> CadenceMetrics:
    cadence = await get_cadence(session, principal, cadence_id)
    tenant = principal.tenant_id
    total = await repository.metrics(session, tenant, cadence.id, None)
    empty = {
        "enrolled": 0,
        "contacted": 0,
        "replied": 0,
        "booked": 0,
        "reactivation_rate": 0.0,
        "opted_out": 0,
        "median_days_to_booking": None,
    }
    return CadenceMetrics(
        cadence_id=cadence.id,
        total=MetricsRow(**(_metrics_row(total[0]) if total else empty)),
        by_variant=[
            VariantMetrics(variant=r.key, **_metrics_row(r))
            for r in await repository.metrics(session, tenant, cadence.id, "variant")
        ],
        by_cycle=[
            CycleMetrics(cycle=r.key, **_metrics_row(r))
            for r in await repository.metrics(session, tenant, cadence.id, "cycle")
        ],
    )


# --- dispatch (workers) -------------------------------------------------------------------


async def _run_message_step(
    session: AsyncSession,
    cadence: Cadence,
    enrollment: Enrollment,
    step: CadenceStep,
    position: int,
    settings: Settings,
    now: dt.datetime,
) -> tuple[str, str | None, str | None]:
    """(outcome, message id, detail): the message is queued through the send ledger,
    keyed by enrollment and step, so a retried job never sends twice."""
    content = step.variants.get(enrollment.variant) or step.content
    assert content is not None
    link = None
    if "booking.link" in content.model_dump_json():
        invite = await invites.create_invite(session, cadence, enrollment, position, now)
        link = invites.invite_link(settings, invite.code)
    try:
        async with session.begin_nested():
            outcome = await send_message(
                session,
                tenant_id=enrollment.tenant_id,
                location_id=enrollment.location_id,
                patient_id=enrollment.patient_id,
                content=content,
                source=MessageSource("cadence", f"{enrollment.id}:{position}"),
                settings=settings,
                purpose="reactivation",
                chart_note=f"Win-back '{cadence.name}' step {position} sent by "
                + ("SMS" if step.channel == "sms" else "email"),
                booking_link=link,
            )
    except Problem as exc:
        # e.g. a text over 260 characters once this patient's name is in: skipped, said why.
        return "suppressed", None, (exc.detail or exc.title)[:300]
    message = outcome.message
    if message.status == "suppressed":
        return "suppressed", message.id, message.failure_reason
    return "sent", message.id, None


@dataclass
class _Tick:
    """What one dispatch loads once for its whole batch."""

    session: AsyncSession
    now: dt.datetime
    settings: Settings
    cadences: dict[str, Cadence]
    steps: dict[str, list[CadenceStep]]
    patients: dict[str, Patient]
    locations: dict[str, Location]
    # (cadence, position, contact) a household member already got: filled as steps run.
    covered: set[tuple[str, int, str]]
    runs: list[dict[str, Any]] = field(default_factory=list)


async def _run_step(tick: _Tick, enrollment: Enrollment) -> None:
    cadence = tick.cadences[enrollment.cadence_id]
    steps = tick.steps[cadence.id]
    position = enrollment.next_position
    if position is None or position > len(steps):
        # The steps are done and the grace period is over.
        enrollment.status, enrollment.completed_at = "completed", tick.now
        enrollment.next_due_at = enrollment.next_position = None
        return
    step = steps[position - 1]
    patient = tick.patients.get(enrollment.patient_id)
    if patient is None:
        await repository.remove_enrollment(tick.session, enrollment, tick.now)
        return
    contact = patient.email if step.channel == "email" else patient.mobile
    message_id = task_id = detail = None
    if cadence.household_aware and contact and (cadence.id, position, contact) in tick.covered:
        outcome, detail = "household_covered", "a household member got this step"
    elif step.channel == "call":
        assert step.task is not None
        name = f"{patient.first_name} {patient.last_name}"
        task = await tasks_service.create_call_task(
            tick.session,
            tenant_id=enrollment.tenant_id,
            location_id=enrollment.location_id,
            patient_id=patient.id,
            title=step.task.title.replace("{name}", name),
            notes=step.task.notes
            or f"Win-back cadence '{cadence.name}', step {position}: {name} has not booked "
            f"or replied yet. Mobile: {patient.mobile or 'none on file'}.",
            assignee=step.task.assignee,
            due_at=tick.now + dt.timedelta(hours=step.task.due_in_hours),
            now=tick.now,
        )
        outcome, task_id = "task_created", task.id
    else:
        outcome, message_id, detail = await _run_message_step(
            tick.session, cadence, enrollment, step, position, tick.settings, tick.now
        )
    if contact and outcome in ("sent", "task_created"):
        tick.covered.add((cadence.id, position, contact))
    tick.runs.append(
        {
            "tenant_id": enrollment.tenant_id,
            "enrollment_id": enrollment.id,
            "position": position,
            "cadence_id": cadence.id,
            "channel": step.channel,
            "outcome": outcome,
            "contact": contact,
            "message_id": message_id,
            "task_id": task_id,
            "detail": detail,
            "ran_at": tick.now,
        }
    )
    enrollment.last_step_at = tick.now
    if position < len(steps):
        location = tick.locations[enrollment.location_id]
        enrollment.next_position = position + 1
        enrollment.next_due_at = step_due_at(
            steps[position],
            enrollment.enrolled_at,
            tick.now,
            cadence.send_local_time,
            location.timezone,
        )
    else:
        enrollment.next_position = len(steps) + 1
        enrollment.next_due_at = tick.now + FINISH_AFTER


async def dispatch_due(
    session: AsyncSession,
    tenant_id: str,
    now: dt.datetime,
    settings: Settings,
    limit: int = DISPATCH_BATCH,
) -> dict[str, int]:
    """One tick for a tenant: record exits first (so nobody who booked or replied gets the
    next step), then run up to `limit` due steps. More due work enqueues another tick.

    Cadences, patients, locations and household coverage are read once for the batch, and
    the step runs are written in one statement; each message still goes through the send
    ledger on its own (its key, enrollment:step, is what makes a retried tick harmless)."""
    exited = await exits.apply_exits(session, tenant_id, now)
    due = await repository.due_enrollments(session, tenant_id, now, limit)
    if not due:
        return {"exited": exited, "steps": 0}
    cadences = {
        c.id: c
        for c in await repository.cadences_by_ids(
            session, tenant_id, sorted({e.cadence_id for e in due})
        )
    }
    patients = {
        p.id: p
        for p in await repository.patients_by_ids(
            session, tenant_id, sorted({e.patient_id for e in due})
        )
    }
    contacts = sorted({c for p in patients.values() for c in (p.mobile, p.email) if c})
    tick = _Tick(
        session=session,
        now=now,
        settings=settings,
        cadences=cadences,
        steps={c.id: [CadenceStep.model_validate(s) for s in c.steps] for c in cadences.values()},
        patients=patients,
        locations={
            loc.id: loc for loc in await tenancy_repository.all_locations(session, tenant_id, None)
        },
        covered=await repository.covered_contacts(
            session, tenant_id, sorted(cadences), contacts, now - HOUSEHOLD_WINDOW
        ),
    )
    for enrollment in due:
        await _run_step(tick, enrollment)
    removed = [e for e in due if e.exit_reason == "removed" and e.exited_at == now]
    await exits.record_exits(session, tenant_id, removed, now)
    ran = await repository.insert_step_runs(session, tick.runs)
    by_id = {e.id: e for e in due}
    for run in tick.runs:
        if (run["enrollment_id"], run["position"]) not in ran:
            continue  # ran already (a retried tick): no second event
        enrollment = by_id[run["enrollment_id"]]
        await record_event(
            session,
            tenant_id=tenant_id,
            type="cadence.step_sent",
            location_id=enrollment.location_id,
            data={
                "enrollment_id": enrollment.id,
                "cadence_id": run["cadence_id"],
                "patient_id": enrollment.patient_id,
                "location_id": enrollment.location_id,
                "position": run["position"],
                "channel": run["channel"],
                "outcome": run["outcome"],
                "message_id": run["message_id"],
                "task_id": run["task_id"],
            },
        )
    await session.flush()
    if len(due) == limit:
        await jobs.enqueue(session, DISPATCH_TASK, tenant_id=tenant_id, args={})
    return {"exited": exited, "steps": len(tick.runs)}


async def enqueue_ticks(session: AsyncSession, now: dt.datetime) -> int:
    """Fan-out (system unit of work, every minute): one dispatch per tenant with active
    enrollments, at most one per tenant and minute."""
    minute = now.strftime("%Y%m%d%H%M")
    enqueued = 0
    for tenant_id in await repository.tenants_with_active_enrollments(session):
        key = f"{DISPATCH_TASK}:{tenant_id}:{minute}"
        if await jobs.enqueue_once(session, DISPATCH_TASK, tenant_id=tenant_id, dedupe_key=key):
            enqueued += 1
    return enqueued


async def enqueue_enrollments(session: AsyncSession, now: dt.datetime) -> int:
    """Fan-out (system unit of work, hourly): continuous enrollment for every active
    cadence with source segments, once per cadence and hour."""
    hour = now.strftime("%Y%m%d%H")
    enqueued = 0
    for tenant_id, cadence_id in await repository.cadences_with_sources(session):
        args = {"cadence_id": cadence_id}
        key = f"{ENROLL_TASK}:{cadence_id}:{hour}"
        if await jobs.enqueue_once(
            session, ENROLL_TASK, tenant_id=tenant_id, args=args, dedupe_key=key
        ):
            enqueued += 1
    return enqueued


# --- one-tap booking links (public) -------------------------------------------------------


async def open_invite(
    session: AsyncSession, code: str, settings: Settings, now: dt.datetime
) -> BookingInviteOut | None:
    """What the widget needs for a live invite (system read: the code names the tenant);
    None when the code is unknown or expired."""
    invite = await invites.find_invite(session, code, now)
    if invite is None:
        return None
    patient = await messaging_repository.get_patient(session, invite.tenant_id, invite.patient_id)
    if patient is None:
        return None
    key = await messaging_repository.booking_key(
        session, invite.tenant_id, invite.location_id, public_base(settings)
    )
    return BookingInviteOut(
        location_id=invite.location_id,
        publishable_key=key,
        appointment_type_id=invite.appointment_type_id,
        first_name=patient.first_name,
        last_name=patient.last_name,
        expires_at=invite.expires_at,
    )
