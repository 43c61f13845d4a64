"""The practice's do-not-contact list: entries by patient, phone or email (or several),
read by every audience's `do_not_contact` suppression. Phones are stored as E.164 and
emails normalised and lower-cased, so suppression compares them with the mirror's
`mobile` as it is and with `lower(email)`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository
from api.audiences.models import DoNotContactEntry
from api.audiences.schemas import DoNotContactCreate
from api.auth.principal import Principal
from api.core.errors import FieldError, NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, page_of
from api.practice import repository as practice_repository
from api.practice.contact import normalize_email, normalize_phone


async def add_entry(
    session: AsyncSession, principal: Principal, data: DoNotContactCreate, now: dt.datetime
) -> DoNotContactEntry:
    errors: list[FieldError] = []
    phone = email = None
    if data.phone is not None:
        try:
            phone = normalize_phone(data.phone)
        except ValueError as exc:
            errors.append(FieldError(field="phone", message=str(exc)))
    if data.email is not None:
        try:
            # Lower-cased whole: people type their address in any case, and the list
            # must catch every spelling (suppression compares with lower(email)).
            email = normalize_email(data.email).lower()
        except ValueError as exc:
            errors.append(FieldError(field="email", message=str(exc)))
    if data.patient_id is not None:
        patient = await practice_repository.get_patient(
            session, principal.tenant_id, principal.location_ids, data.patient_id
        )
        if patient is None:
            errors.append(FieldError(field="patient_id", message="unknown patient"))
    if errors:
        raise ValidationProblem("The entry is not valid.", errors=errors)
    entry = DoNotContactEntry(
        tenant_id=principal.tenant_id,
        id=new_id("do_not_contact"),
        patient_id=data.patient_id,
        phone=phone,
        email=email,
        note=data.note,
        created_by=principal.id,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[DoNotContactEntry], str | None]:
    rows = await repository.list_do_not_contact(session, principal.tenant_id, page)
    return page_of(rows, ["id"], page)


async def get_entry(
    session: AsyncSession, principal: Principal, entry_id: str
) -> DoNotContactEntry:
    entry = await repository.get_do_not_contact(session, principal.tenant_id, entry_id)
    if entry is None:
        raise NotFound(f"There is no do-not-contact entry {entry_id}.")
    return entry


async def remove_entry(session: AsyncSession, principal: Principal, entry_id: str) -> None:
    await repository.delete_do_not_contact(session, await get_entry(session, principal, entry_id))
