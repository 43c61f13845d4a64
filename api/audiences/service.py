"""Audiences: create one from a segment, preview its suppression, read its members and
changes, and ask for a rebuild (the build itself is in rebuild.py).

Visibility follows the segment: a caller who may see the segment may see its audiences;
member pages only list patients of locations the caller may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository
from api.audiences.models import Audience
from api.audiences.schemas import (
    AudienceCreate,
    AudiencePreviewOut,
    AudiencePreviewRequest,
    ChangeOut,
    ChangesPage,
    MemberOut,
    MembersPage,
    RebuildOut,
    SuppressedCounts,
)
from api.audiences.suppression import Suppression, SuppressionPlan, suppression_plan
from api.auth.principal import Principal
from api.core import jobs
from api.core.errors import FieldError, NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, decode_cursor, encode_cursor, page_of
from api.engines.rules import CompiledQuery, compile_rule
from api.practice import freshness
from api.segments import service as segments_service
from api.segments.models import Segment
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location

REBUILD_TASK = "audiences.rebuild"


async def get_audience(session: AsyncSession, principal: Principal, audience_id: str) -> Audience:
    audience = await repository.get_audience(
        session, principal.tenant_id, audience_id, principal.location_ids
    )
    if audience is None:
        raise NotFound(f"There is no audience {audience_id}.")
    return audience


async def _segment_for(session: AsyncSession, principal: Principal, segment_id: str) -> Segment:
    """The segment an audience is made from; a segment the caller cannot see is a bad
    field of the request (422), like any unknown reference in a body."""
    try:
        return await segments_service.get_segment(session, principal, segment_id)
    except NotFound:
        raise ValidationProblem(
            f"There is no segment {segment_id}.",
            errors=[FieldError(field="segment_id", message="unknown segment")],
        ) from None


async def build_locations(session: AsyncSession, segment: Segment) -> list[Location]:
    """Every location the segment covers (its list, or all the tenant's), for builds:
    an audience is the practice's, whoever asked for the rebuild."""
    every = await tenancy_repository.all_locations(session, segment.tenant_id, None)
    wanted = set(segment.location_ids or ())
    return [loc for loc in every if not wanted or loc.id in wanted]


def compile_audience(
    segment: Segment,
    channel: str,
    suppression: Suppression,
    locations: Sequence[Location],
    evaluate_at: dt.datetime,
) -> tuple[CompiledQuery, SuppressionPlan]:
    """The segment's rule, selecting what the suppression statements read."""
    plan = suppression_plan(channel, suppression)
    compiled = compile_rule(
        segments_service.validate_rule(segment.rule),
        tenant_id=segment.tenant_id,
        locations=segments_service.location_days(locations, evaluate_at),
        extra_columns=plan.columns,
        extra_params=plan.params,
    )
    return compiled, plan


async def create_audience(
    session: AsyncSession, principal: Principal, data: AudienceCreate, now: dt.datetime
) -> Audience:
    segment = await _segment_for(session, principal, data.segment_id)
    audience = Audience(
        tenant_id=principal.tenant_id,
        id=new_id("audience"),
        segment_id=segment.id,
        name=data.name or segment.name,
        channel=data.channel,
        suppression=data.suppression.model_dump(),
        version=0,
        total=0,
        location_data_as_of={},
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(audience)
    await session.flush()
    return audience


async def list_audiences(
    session: AsyncSession, principal: Principal, page: PageParams, segment_id: str | None
) -> tuple[list[Audience], str | None]:
    rows = await repository.list_audiences(
        session, principal.tenant_id, principal.location_ids, page, segment_id
    )
    return page_of(rows, ["id"], page)


async def delete_audience(session: AsyncSession, principal: Principal, audience_id: str) -> None:
    audience = await get_audience(session, principal, audience_id)
    await repository.delete_audience(session, audience)


async def _preview(
    session: AsyncSession,
    principal: Principal,
    segment: Segment,
    channel: str,
    suppression: Suppression,
    now: dt.datetime,
) -> AudiencePreviewOut:
    locations = await segments_service.segment_locations(session, principal, segment)
    compiled, plan = compile_audience(segment, channel, suppression, locations, now)
    await repository.stage_candidates(session, compiled, plan.statements)
    counts = await repository.count_suppressed(session, plan.reasons)
    location_ids = [loc.id for loc in locations]
    return AudiencePreviewOut(
        matched=counts["matched"],
        suppressed=SuppressedCounts(**counts["suppressed"]),
        count=counts["kept"],
        location_ids=location_ids,
        data_as_of=await freshness.oldest_data_as_of(session, principal.tenant_id, location_ids),
    )


async def preview(
    session: AsyncSession, principal: Principal, data: AudiencePreviewRequest, now: dt.datetime
) -> AudiencePreviewOut:
    segment = await _segment_for(session, principal, data.segment_id)
    return await _preview(session, principal, segment, data.channel, data.suppression, now)


async def preview_audience(
    session: AsyncSession, principal: Principal, audience_id: str, now: dt.datetime
) -> AudiencePreviewOut:
    audience = await get_audience(session, principal, audience_id)
    segment = await segments_service.get_segment(session, principal, audience.segment_id)
    suppression = Suppression.model_validate(audience.suppression)
    return await _preview(session, principal, segment, audience.channel, suppression, now)


async def request_rebuild(
    session: AsyncSession, principal: Principal, audience_id: str, now: dt.datetime
) -> RebuildOut:
    """Queue a rebuild of every location of the audience. Stale PMS data answers 409 at
    once (the job checks again when it runs, and refuses with an event if it went stale)."""
    audience = await get_audience(session, principal, audience_id)
    segment = await segments_service.get_segment(session, principal, audience.segment_id)
    locations = await build_locations(session, segment)
    for location in locations:
        await freshness.require_fresh(session, principal.tenant_id, location.id, now)
    job = await jobs.enqueue(
        session,
        REBUILD_TASK,
        tenant_id=principal.tenant_id,
        args={"audience_id": audience.id, "location_ids": None, "trigger": "manual"},
    )
    return RebuildOut(
        audience_id=audience.id,
        job_id=job.id,
        status="queued",
        location_ids=[loc.id for loc in locations],
    )


# --- members and changes ---------------------------------------------------------------


def _version_cursor(cursor: str | None) -> tuple[int | None, str | None]:
    """(version, last patient id) of a members/changes cursor: the version rides along
    so a rebuild between two pages does not mix versions."""
    if cursor is None:
        return None, None
    version, after = decode_cursor(cursor, 2)
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(after, str):
        raise ValidationProblem(
            "The cursor is not one this API returned.",
            errors=[{"field": "cursor", "message": "invalid cursor"}],
        )
    return version, after


def _check_version(audience: Audience, version: int, field: str) -> None:
    if not 0 <= version <= audience.version:
        raise ValidationProblem(
            f"`{field}` must be between 0 and the audience's latest version ({audience.version}).",
            errors=[{"field": field, "message": f"between 0 and {audience.version}"}],
        )


async def _data_as_of(session: AsyncSession, audience: Audience, version: int) -> Any:
    if version == audience.version:
        return audience.data_as_of
    built = await repository.get_version(session, audience.tenant_id, audience.id, version)
    return built.data_as_of if built else None


async def members(
    session: AsyncSession,
    principal: Principal,
    audience_id: str,
    page: PageParams,
    version: int | None = None,
) -> MembersPage:
    audience = await get_audience(session, principal, audience_id)
    cursor_version, after = _version_cursor(page.cursor)
    wanted = cursor_version if cursor_version is not None else version
    wanted = audience.version if wanted is None else wanted
    _check_version(audience, wanted, "version")
    rows = await repository.members_page(
        session,
        tenant_id=audience.tenant_id,
        audience_id=audience.id,
        version=wanted,
        current=wanted == audience.version,
        visible=principal.location_ids,
        after=after,
        limit=page.limit + 1,
    )
    items = rows[: page.limit]
    next_cursor = encode_cursor([wanted, items[-1].patient_id]) if len(rows) > page.limit else None
    return MembersPage(
        data=[
            MemberOut(
                patient_id=r.patient_id,
                location_id=r.location_id,
                first_name=r.first_name,
                last_name=r.last_name,
                preferred_name=r.preferred_name,
                email=r.email,
                mobile=r.mobile,
                communication_preference=r.communication_preference,
                member_since_version=r.added_version,
            )
            for r in items
        ],
        next_cursor=next_cursor,
        version=wanted,
        data_as_of=await _data_as_of(session, audience, wanted),
    )


async def changes(
    session: AsyncSession,
    principal: Principal,
    audience_id: str,
    since_version: int,
    page: PageParams,
) -> ChangesPage:
    audience = await get_audience(session, principal, audience_id)
    _check_version(audience, since_version, "since_version")
    cursor_version, after = _version_cursor(page.cursor)
    to_version = audience.version if cursor_version is None else cursor_version
    _check_version(audience, to_version, "cursor")
    common: dict[str, Any] = {
        "tenant_id": audience.tenant_id,
        "audience_id": audience.id,
        "since": since_version,
        "to_version": to_version,
        "visible": principal.location_ids,
    }
    rows = await repository.changes_page(session, **common, after=after, limit=page.limit + 1)
    added, removed = await repository.change_counts(session, **common)
    items = rows[: page.limit]
    next_cursor = (
        encode_cursor([to_version, items[-1].patient_id]) if len(rows) > page.limit else None
    )
    return ChangesPage(
        data=[
            ChangeOut(
                patient_id=r.patient_id,
                location_id=r.location_id,
                change=r.change,
                reason=r.reason,
                version=r.version,
                first_name=r.first_name,
                last_name=r.last_name,
                email=r.email,
                mobile=r.mobile,
            )
            for r in items
        ],
        next_cursor=next_cursor,
        since_version=since_version,
        to_version=to_version,
        added=added,
        removed=removed,
        data_as_of=await _data_as_of(session, audience, to_version),
    )
