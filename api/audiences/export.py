"""CSV export in the Dentrix Ascend custom-list template: one row per member with
"First Name", "Last Name", "Email", "Mobile Phone", ready to import as a custom patient
list. North American mobiles are written as their ten digits (the form Ascend's own
exports use); other numbers keep their E.164 form."""

from __future__ import annotations

import csv
import io

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository
from api.audiences.service import get_audience
from api.auth.principal import Principal

ASCEND_COLUMNS = ("First Name", "Last Name", "Email", "Mobile Phone")
# Rows fetched per round trip: big enough to keep a million-row export to ~100 queries.
EXPORT_BATCH = 10_000


def ascend_phone(mobile: str | None) -> str:
    if not mobile:
        return ""
    if mobile.startswith("+1") and len(mobile) == 12:
        return mobile[2:]
    return mobile


async def export_csv(session: AsyncSession, principal: Principal, audience_id: str) -> str:
    """The audience's current members (those of locations the caller may see), by id."""
    audience = await get_audience(session, principal, audience_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ASCEND_COLUMNS)
    after: str | None = None
    while True:
        rows = await repository.members_page(
            session,
            tenant_id=audience.tenant_id,
            audience_id=audience.id,
            version=audience.version,
            current=True,
            visible=principal.location_ids,
            after=after,
            limit=EXPORT_BATCH,
        )
        for row in rows:
            writer.writerow(
                [
                    row.first_name or "",
                    row.last_name or "",
                    row.email or "",
                    ascend_phone(row.mobile),
                ]
            )
        if len(rows) < EXPORT_BATCH:
            return out.getvalue()
        after = rows[-1].patient_id
