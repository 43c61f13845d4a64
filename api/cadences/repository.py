"""Queries for cadences. Enrollment, the exit sweep and due-step selection are set-based
SQL over the mirror: nothing loops over a practice's patients in Python."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    any_,
    cast,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences.models import Cadence, Enrollment, StepRun
from api.core.pagination import PageParams, keyset
from api.core.repository import scoped
from api.practice.models import AppointmentType, Patient

# --- cadences ----------------------------------------------------------------------------


def _visible(visible: frozenset[str] | None) -> ColumnElement[bool] | None:
    """Like segments: a cadence over all locations, or only over locations the caller sees."""
    if visible is None:
        return None
    return or_(
        func.cardinality(Cadence.location_ids) == 0,
        Cadence.location_ids.contained_by(sorted(visible)),
    )


def _cadences(tenant_id: str, visible: frozenset[str] | None) -> Select[Any]:
    stmt = scoped(Cadence, tenant_id)
    condition = _visible(visible)
    return stmt if condition is None else stmt.where(condition)


async def get_cadence(
    session: AsyncSession,
    tenant_id: str,
    cadence_id: str,
    visible: frozenset[str] | None,
    *,
    lock: bool = False,
) -> Cadence | None:
    stmt = _cadences(tenant_id, visible).where(Cadence.id == cadence_id)
    if lock:
        stmt = stmt.with_for_update()
    cadence: Cadence | None = (await session.execute(stmt)).scalar_one_or_none()
    return cadence


async def list_cadences(
    session: AsyncSession, tenant_id: str, visible: frozenset[str] | None, page: PageParams
) -> list[Cadence]:
    stmt = keyset(_cadences(tenant_id, visible), [Cadence.id], page)
    return list((await session.execute(stmt)).scalars())


async def active_counts(
    session: AsyncSession, tenant_id: str, cadence_ids: Sequence[str]
) -> dict[str, int]:
    stmt = (
        select(Enrollment.cadence_id, func.count())
        .where(
            Enrollment.tenant_id == tenant_id,
            Enrollment.cadence_id.in_(list(cadence_ids)),
            Enrollment.status == "active",
        )
        .group_by(Enrollment.cadence_id)
    )
    return {row[0]: row[1] for row in await session.execute(stmt)}


async def delete_cadence(session: AsyncSession, cadence: Cadence) -> None:
    await session.delete(cadence)
    await session.flush()


async def shift_due_times(
    session: AsyncSession, tenant_id: str, cadence_id: str, by: dt.timedelta
) -> int:
    """Resume: every pending step moves by the time the cadence was paused, so the
    backlog keeps its spacing instead of going out in one burst."""
    stmt = (
        update(Enrollment)
        .where(
            Enrollment.tenant_id == tenant_id,
            Enrollment.cadence_id == cadence_id,
            Enrollment.status == "active",
            Enrollment.next_due_at.is_not(None),
        )
        .values(next_due_at=Enrollment.next_due_at + by)
    )
    result: Any = await session.execute(stmt)
    return int(result.rowcount)


# --- enrollment ---------------------------------------------------------------------------

_CANDIDATES = text(
    """
    SELECT p.id AS patient_id, p.location_id, l.timezone,
      EXISTS (SELECT 1 FROM cadence_enrollments e
              WHERE e.tenant_id = p.tenant_id AND e.cadence_id = :cadence_id
                AND e.patient_id = p.id AND e.status = 'active') AS active,
      (SELECT max(coalesce(e.exited_at, e.completed_at)) FROM cadence_enrollments e
        WHERE e.tenant_id = p.tenant_id AND e.cadence_id = :cadence_id
          AND e.patient_id = p.id AND e.status <> 'active') AS last_ended,
      EXISTS (SELECT 1 FROM appointments a
              WHERE a.tenant_id = p.tenant_id AND a.patient_id = p.id
                AND a.deleted_at IS NULL AND a.status IN ('scheduled', 'confirmed')
                AND a.start_at > :now) AS booked,
      EXISTS (SELECT 1 FROM recalls r
              WHERE r.tenant_id = p.tenant_id AND r.patient_id = p.id
                AND r.deleted_at IS NULL AND NOT r.disabled
                AND r.due_date <= (:now AT TIME ZONE l.timezone)::date) AS recall_due,
      (SELECT b.balance FROM ledger_balances b
        WHERE b.tenant_id = p.tenant_id AND b.guarantor_id = coalesce(p.guarantor_id, p.id)
          AND b.deleted_at IS NULL
        ORDER BY b.id LIMIT 1) AS balance
    FROM patients p
    JOIN locations l ON l.tenant_id = p.tenant_id AND l.id = p.location_id
    WHERE p.tenant_id = :tenant_id AND p.id = ANY(:patient_ids) AND p.deleted_at IS NULL
      AND (CAST(:location_ids AS text[]) IS NULL OR p.location_id = ANY(:location_ids))
    ORDER BY p.id
    """
)


async def candidates(
    session: AsyncSession,
    tenant_id: str,
    cadence_id: str,
    patient_ids: Sequence[str],
    location_ids: Sequence[str] | None,
    now: dt.datetime,
) -> list[Any]:
    """What enrollment needs to know of each patient at `location_ids` (None: any);
    unknown patients, and patients elsewhere, are absent."""
    params = {
        "tenant_id": tenant_id,
        "cadence_id": cadence_id,
        "patient_ids": list(patient_ids),
        "location_ids": None if location_ids is None else list(location_ids),
        "now": now,
    }
    return list(await session.execute(_CANDIDATES, params))


# Rows per INSERT: PostgreSQL takes at most 32,767 bind parameters per statement.
INSERT_CHUNK = 1_000


async def insert_enrollments(session: AsyncSession, rows: list[dict[str, Any]]) -> list[str]:
    """The ids inserted; a patient already active (a concurrent enrollment) is skipped by
    the partial unique index."""
    inserted: list[str] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        stmt = (
            insert(Enrollment)
            .values(rows[start : start + INSERT_CHUNK])
            .on_conflict_do_nothing(
                index_elements=["tenant_id", "cadence_id", "patient_id"],
                index_where=text("status = 'active'"),
            )
            .returning(Enrollment.id)
        )
        inserted += [row[0] for row in await session.execute(stmt)]
    return inserted


async def enrollments_by_id(
    session: AsyncSession, tenant_id: str, ids: Sequence[str]
) -> list[Enrollment]:
    # One array parameter, however many ids (an IN list is a parameter per id).
    wanted = cast(list(ids), ARRAY(String))
    stmt = (
        scoped(Enrollment, tenant_id).where(Enrollment.id == any_(wanted)).order_by(Enrollment.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_enrollment(
    session: AsyncSession, tenant_id: str, cadence_id: str, enrollment_id: str
) -> Enrollment | None:
    stmt = scoped(Enrollment, tenant_id).where(
        Enrollment.cadence_id == cadence_id, Enrollment.id == enrollment_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_enrollments(
    session: AsyncSession,
    tenant_id: str,
    cadence_id: str,
    status: str | None,
    patient_id: str | None,
    page: PageParams,
) -> list[Enrollment]:
    stmt = scoped(Enrollment, tenant_id).where(Enrollment.cadence_id == cadence_id)
    if status is not None:
        stmt = stmt.where(Enrollment.status == status)
    if patient_id is not None:
        stmt = stmt.where(Enrollment.patient_id == patient_id)
    return list((await session.execute(keyset(stmt, [Enrollment.id], page))).scalars())


async def step_runs(session: AsyncSession, tenant_id: str, enrollment_id: str) -> list[StepRun]:
    stmt = (
        scoped(StepRun, tenant_id)
        .where(StepRun.enrollment_id == enrollment_id)
        .order_by(StepRun.position)
    )
    return list((await session.execute(stmt)).scalars())


# --- exits --------------------------------------------------------------------------------

# Each exit reason: the condition (over `e`, the enrollment) that ends an active
# enrollment, checked only where the cadence switches that exit on. Conditions compare
# with the enrollment's own moment or snapshot, so history from before it never counts.
EXIT_CONDITIONS: dict[str, str] = {
    "booked": """EXISTS (SELECT 1 FROM appointments a
        WHERE a.tenant_id = e.tenant_id AND a.patient_id = e.patient_id AND a.deleted_at IS NULL
          AND ((a.status IN ('scheduled', 'confirmed') AND a.start_at > :now)
               OR (a.status = 'completed' AND a.start_at >= e.enrolled_at)))""",
    "replied": """EXISTS (SELECT 1 FROM inbound_messages i
        WHERE i.tenant_id = e.tenant_id AND i.action = 'reply'
          AND i.received_at >= e.enrolled_at
          AND (i.patient_id = e.patient_id
               -- a number shared by a household names no one patient: it answers for all
               OR i.from_address = (SELECT p.mobile FROM patients p
                                    WHERE p.tenant_id = e.tenant_id AND p.id = e.patient_id)))""",
    "opted_out": """EXISTS (SELECT 1 FROM opt_outs o
        WHERE o.tenant_id = e.tenant_id AND o.patient_id = e.patient_id
          AND o.deleted_at IS NULL AND o.opted_out_at >= e.enrolled_at)""",
    "recall_fulfilled": """e.had_recall_due AND NOT EXISTS (SELECT 1 FROM recalls r
        JOIN locations l ON l.tenant_id = r.tenant_id AND l.id = r.location_id
        WHERE r.tenant_id = e.tenant_id AND r.patient_id = e.patient_id
          AND r.deleted_at IS NULL AND NOT r.disabled
          AND r.due_date <= (:now AT TIME ZONE l.timezone)::date)""",
    "balance_paid": """e.balance_at_enrollment > 0 AND coalesce((SELECT b.balance
        FROM ledger_balances b JOIN patients p ON p.tenant_id = e.tenant_id AND p.id = e.patient_id
        WHERE b.tenant_id = e.tenant_id AND b.guarantor_id = coalesce(p.guarantor_id, p.id)
          AND b.deleted_at IS NULL ORDER BY b.id LIMIT 1), 0) <= 0""",
}

_BOOKED_APPOINTMENT = """(SELECT a.id FROM appointments a
    WHERE a.tenant_id = e.tenant_id AND a.patient_id = e.patient_id AND a.deleted_at IS NULL
      AND a.status IN ('scheduled', 'confirmed', 'completed')
    ORDER BY a.start_at DESC LIMIT 1)"""


async def exit_where(
    session: AsyncSession,
    tenant_id: str,
    reason: str,
    now: dt.datetime,
    patient_ids: Sequence[str] | None,
) -> list[Any]:
    """End the active enrollments meeting `reason`'s condition; the rows ended."""
    booked = (
        f", booked_at = :now, booked_appointment_id = {_BOOKED_APPOINTMENT}"
        if reason == "booked"
        else ""
    )
    only = "AND e.patient_id = ANY(:patient_ids)" if patient_ids is not None else ""
    sql = text(
        f"""
        UPDATE cadence_enrollments e
        SET status = 'exited', exit_reason = :reason, exited_at = :now, next_due_at = NULL
            {booked}
        FROM cadences c
        WHERE e.tenant_id = :tenant_id AND e.status = 'active' {only}
          AND c.tenant_id = e.tenant_id AND c.id = e.cadence_id
          AND coalesce((c.exits ->> :reason)::boolean, false)
          AND {EXIT_CONDITIONS[reason]}
        RETURNING e.id, e.cadence_id, e.patient_id, e.location_id, e.exit_reason,
                  e.booked_appointment_id
        """
    )
    params: dict[str, Any] = {"tenant_id": tenant_id, "reason": reason, "now": now}
    if patient_ids is not None:
        params["patient_ids"] = list(patient_ids)
    return list(await session.execute(sql, params))


async def exit_left_segment(
    session: AsyncSession,
    tenant_id: str,
    cadence_id: str,
    segment_id: str,
    members: Sequence[str],
    now: dt.datetime,
) -> list[Any]:
    sql = text(
        """
        UPDATE cadence_enrollments e
        SET status = 'exited', exit_reason = 'left_segment', exited_at = :now,
            next_due_at = NULL
        WHERE e.tenant_id = :tenant_id AND e.cadence_id = :cadence_id AND e.status = 'active'
          AND e.segment_id = :segment_id AND NOT (e.patient_id = ANY(:members))
        RETURNING e.id, e.cadence_id, e.patient_id, e.location_id, e.exit_reason,
                  e.booked_appointment_id
        """
    )
    params = {
        "tenant_id": tenant_id,
        "cadence_id": cadence_id,
        "segment_id": segment_id,
        "members": list(members),
        "now": now,
    }
    return list(await session.execute(sql, params))


async def remove_enrollment(
    session: AsyncSession, enrollment: Enrollment, now: dt.datetime
) -> None:
    enrollment.status, enrollment.exit_reason = "exited", "removed"
    enrollment.exited_at, enrollment.next_due_at = now, None
    await session.flush()


# --- dispatch -----------------------------------------------------------------------------


async def due_enrollments(
    session: AsyncSession, tenant_id: str, now: dt.datetime, limit: int
) -> list[Enrollment]:
    """Active enrollments of active cadences whose next step (or finish) is due, soonest
    first, locked so a second dispatcher skips them."""
    stmt = (
        select(Enrollment)
        .join(
            Cadence,
            (Cadence.tenant_id == Enrollment.tenant_id) & (Cadence.id == Enrollment.cadence_id),
        )
        .where(
            Enrollment.tenant_id == tenant_id,
            Enrollment.status == "active",
            Enrollment.next_due_at <= now,
            Cadence.status == "active",
        )
        .order_by(Enrollment.next_due_at)
        .limit(limit)
        .with_for_update(of=Enrollment, skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def cadences_by_ids(
    session: AsyncSession, tenant_id: str, ids: Sequence[str]
) -> list[Cadence]:
    stmt = scoped(Cadence, tenant_id).where(Cadence.id == any_(cast(list(ids), ARRAY(String))))
    return list((await session.execute(stmt)).scalars())


async def patients_by_ids(
    session: AsyncSession, tenant_id: str, ids: Sequence[str]
) -> list[Patient]:
    """Live patients among `ids` (a tombstoned one is absent)."""
    stmt = scoped(Patient, tenant_id).where(
        Patient.id == any_(cast(list(ids), ARRAY(String))), Patient.deleted_at.is_(None)
    )
    return list((await session.execute(stmt)).scalars())


async def covered_contacts(
    session: AsyncSession,
    tenant_id: str,
    cadence_ids: Sequence[str],
    contacts: Sequence[str],
    since: dt.datetime,
) -> set[tuple[str, int, str]]:
    """(cadence, position, contact) of steps that reached one of these numbers or
    addresses since `since`: a household member sharing it is covered."""
    stmt = select(StepRun.cadence_id, StepRun.position, StepRun.contact).where(
        StepRun.tenant_id == tenant_id,
        StepRun.cadence_id == any_(cast(list(cadence_ids), ARRAY(String))),
        StepRun.contact == any_(cast(list(contacts), ARRAY(String))),
        StepRun.outcome.in_(("sent", "task_created")),
        StepRun.ran_at >= since,
    )
    return {(row[0], row[1], row[2]) for row in await session.execute(stmt) if row[2]}


async def insert_step_runs(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> set[tuple[str, int]]:
    """(enrollment, position) of the runs written; one that ran already is skipped."""
    written: set[tuple[str, int]] = set()
    for start in range(0, len(rows), INSERT_CHUNK):
        stmt = (
            insert(StepRun)
            .values(rows[start : start + INSERT_CHUNK])
            .on_conflict_do_nothing()
            .returning(StepRun.enrollment_id, StepRun.position)
        )
        written |= {(row[0], row[1]) for row in await session.execute(stmt)}
    return written


async def tenants_with_active_enrollments(session: AsyncSession) -> list[str]:
    """System query (every tenant) for the dispatch fan-out: exits are checked for every
    active enrollment, due or not."""
    stmt = select(Enrollment.tenant_id).where(Enrollment.status == "active").distinct()
    return [row[0] for row in await session.execute(stmt)]


async def cadences_with_sources(session: AsyncSession) -> list[tuple[str, str]]:
    """System query: (tenant, cadence) of every active cadence that enrolls from segments."""
    stmt = select(Cadence.tenant_id, Cadence.id).where(
        Cadence.status == "active", func.jsonb_array_length(Cadence.sources) > 0
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


# --- metrics ------------------------------------------------------------------------------

_METRICS = """
    SELECT {key} AS key,
      count(*) AS enrolled,
      count(*) FILTER (WHERE EXISTS (SELECT 1 FROM cadence_step_runs s
          WHERE s.tenant_id = e.tenant_id AND s.enrollment_id = e.id
            AND s.outcome IN ('sent', 'task_created', 'household_covered'))) AS contacted,
      count(*) FILTER (WHERE e.exit_reason = 'replied') AS replied,
      count(*) FILTER (WHERE e.booked_at IS NOT NULL) AS booked,
      count(*) FILTER (WHERE e.exit_reason = 'opted_out') AS opted_out,
      percentile_cont(0.5) WITHIN GROUP (
          ORDER BY extract(epoch FROM e.booked_at - e.enrolled_at) / 86400.0
      ) FILTER (WHERE e.booked_at IS NOT NULL) AS median_days_to_booking
    FROM cadence_enrollments e
    WHERE e.tenant_id = :tenant_id AND e.cadence_id = :cadence_id
    GROUP BY 1 ORDER BY 1
"""


async def metrics(
    session: AsyncSession, tenant_id: str, cadence_id: str, by: str | None
) -> list[Any]:
    """Counts over all enrollments (`by` None), or grouped by `variant` or `cycle`."""
    key = {"variant": "e.variant", "cycle": "e.cycle", None: "'total'"}[by]
    params = {"tenant_id": tenant_id, "cadence_id": cadence_id}
    return list(await session.execute(text(_METRICS.format(key=key)), params))


async def appointment_type(
    session: AsyncSession, tenant_id: str, appointment_type_id: str
) -> AppointmentType | None:
    stmt = scoped(AppointmentType, tenant_id).where(AppointmentType.id == appointment_type_id)
    return (await session.execute(stmt)).scalar_one_or_none()
