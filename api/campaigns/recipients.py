"""Who a campaign reaches: the recipient source is a tagged union, resolved in SQL by one
resolver per kind. `filters` (a rule through the rule compiler), `segment` and
`audience` (its current members) and `custom_list`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository as audiences_repository
from api.campaigns import repository
from api.campaigns.models import Campaign
from api.campaigns.repository import SourceQuery
from api.core.errors import FieldError, ValidationProblem
from api.engines.rules import compile_rule
from api.segments import repository as segments_repository
from api.segments.service import location_days, validate_rule
from api.tenancy.models import Location


def _invalid(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"Check {field}: {message}.", errors=[FieldError(field=field, message=message)]
    )


Resolver = Callable[
    [AsyncSession, str, Campaign | None, dict[str, Any], Sequence[Location], dt.datetime],
    Awaitable[SourceQuery],
]


async def _by_filters(
    session: AsyncSession,
    tenant_id: str,
    campaign: Campaign | None,
    recipients: dict[str, Any],
    locations: Sequence[Location],
    now: dt.datetime,
) -> SourceQuery:
    compiled = compile_rule(
        validate_rule(recipients["rule"]),
        tenant_id=tenant_id,
        locations=location_days(locations, now),
    )
    return SourceQuery(compiled.sql, dict(compiled.params))


async def _by_segment(
    session: AsyncSession,
    tenant_id: str,
    campaign: Campaign | None,
    recipients: dict[str, Any],
    locations: Sequence[Location],
    now: dt.datetime,
) -> SourceQuery:
    segment = await segments_repository.get_segment(
        session, tenant_id, recipients["segment_id"], None
    )
    if segment is None:
        raise _invalid("recipients.segment_id", "the segment no longer exists")
    wanted = set(segment.location_ids or ())
    covered = [loc for loc in locations if not wanted or loc.id in wanted]
    compiled = compile_rule(
        validate_rule(segment.rule), tenant_id=tenant_id, locations=location_days(covered, now)
    )
    return SourceQuery(compiled.sql, dict(compiled.params))


async def _by_audience(
    session: AsyncSession,
    tenant_id: str,
    campaign: Campaign | None,
    recipients: dict[str, Any],
    locations: Sequence[Location],
    now: dt.datetime,
) -> SourceQuery:
    audience = await audiences_repository.get_audience(
        session, tenant_id, recipients["audience_id"], None
    )
    if audience is None:
        raise _invalid("recipients.audience_id", "the audience no longer exists")
    sql = (
        "SELECT m.patient_id, m.location_id FROM audience_members m "
        "WHERE m.tenant_id = :aud_tenant_id AND m.audience_id = :aud_audience_id "
        "AND m.removed_version IS NULL AND m.location_id = ANY(:aud_location_ids)"
    )
    params = {
        "aud_tenant_id": tenant_id,
        "aud_audience_id": audience.id,
        "aud_location_ids": [loc.id for loc in locations],
    }
    return SourceQuery(sql, params)


async def _by_custom_list(
    session: AsyncSession,
    tenant_id: str,
    campaign: Campaign | None,
    recipients: dict[str, Any],
    locations: Sequence[Location],
    now: dt.datetime,
) -> SourceQuery:
    if campaign is None:
        raise _invalid("recipients.kind", "upload the custom list to a saved campaign")
    return repository.custom_list_source(tenant_id, campaign.id)


RESOLVERS: dict[str, Resolver] = {
    "filters": _by_filters,
    "segment": _by_segment,
    "audience": _by_audience,
    "custom_list": _by_custom_list,
}


async def recipient_source(
    session: AsyncSession,
    tenant_id: str,
    campaign: Campaign | None,
    recipients: dict[str, Any],
    locations: Sequence[Location],
    now: dt.datetime,
) -> SourceQuery:
    return await RESOLVERS[recipients["kind"]](
        session, tenant_id, campaign, recipients, locations, now
    )
