"""A patient's free-text reply becomes a front-desk task (kind `reply`), created through
the tasks domain's own service so its checks and defaults apply."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.clock import utcnow
from api.messaging.models import InboundMessage
from api.practice.models import Patient
from api.tasks import service as tasks_service
from api.tasks.schemas import TaskCreate
from api.tenancy.models import Location

# Who the task says created it (tasks record the creating principal's id).
MESSAGING_ACTOR = "messaging"


async def create_reply_task(
    session: AsyncSession,
    inbound: InboundMessage,
    patients: Sequence[Patient],
    location: Location,
) -> str:
    actor = Principal(
        tenant_id=inbound.tenant_id,
        kind="client",
        client_id=MESSAGING_ACTOR,
        scopes=frozenset(),
        location_ids=None,
    )
    here = [p for p in patients if p.location_id == location.id]
    patient = here[0] if len(here) == 1 else None
    who = f"{patient.first_name} {patient.last_name}" if patient else inbound.from_address
    notes = f"Text from {inbound.from_address}:\n{inbound.body}"
    if len(patients) > 1:
        notes += "\n\nThis number belongs to: " + ", ".join(
            f"{p.first_name} {p.last_name} ({p.id})" for p in patients
        )
    task = await tasks_service.create_task(
        session,
        actor,
        TaskCreate(
            kind="reply",
            title=f"Reply to {who}"[:300],
            location_id=location.id,
            patient_id=patient.id if patient else None,
            assignee="Front desk",
            notes=notes[:10_000],
        ),
        utcnow(),
    )
    return task.id
