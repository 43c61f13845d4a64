"""A patient's free-text reply becomes a front-desk task (kind `reply`), created through
the tasks domain's system entry point (no caller principal: the inbound handler already
resolved the tenant, location and patients from its own tenant-scoped lookups)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.clock import utcnow
from api.messaging.models import InboundMessage
from api.practice.models import Patient
from api.tasks import service as tasks_service
from api.tenancy.models import Location


async def create_reply_task(
    session: AsyncSession,
    inbound: InboundMessage,
    patients: Sequence[Patient],
    location: Location,
) -> str:
    here = [p for p in patients if p.location_id == location.id]
    patient = here[0] if len(here) == 1 else None
    who = f"{patient.first_name} {patient.last_name}" if patient else inbound.from_address
    notes = f"Text from {inbound.from_address}:\n{inbound.body}"
    if len(patients) > 1:
        notes += "\n\nThis number belongs to: " + ", ".join(
            f"{p.first_name} {p.last_name} ({p.id})" for p in patients
        )
    task = await tasks_service.create_reply_task(
        session,
        tenant_id=inbound.tenant_id,
        location_id=location.id,
        patient_id=patient.id if patient else None,
        title=f"Reply to {who}",
        notes=notes,
        now=utcnow(),
    )
    return task.id
