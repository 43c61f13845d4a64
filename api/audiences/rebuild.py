"""Building a version of an audience (the `audiences.rebuild` job calls this).

All or nothing, in the job's one transaction: check every rebuilt location's PMS data is
fresh (else record `audience.rebuild_refused` and write nothing else), apply the rule and
the suppression in one statement, record the version and `audience.updated` with its
counts. The audience row is locked first, so two rebuilds of one audience queue up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.audiences import repository
from api.audiences.models import Audience, AudienceVersion
from api.audiences.service import build_locations, compile_audience
from api.audiences.suppression import Suppression
from api.events import record_event
from api.practice import freshness
from api.practice.problems import StaleData
from api.segments import repository as segments_repository


@dataclass(frozen=True)
class RebuildOutcome:
    status: str  # built | refused | gone
    version: int | None = None
    added: int = 0
    removed: int = 0
    total: int = 0
    stale_location_ids: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "added": self.added,
            "removed": self.removed,
            "total": self.total,
            "stale_location_ids": list(self.stale_location_ids),
        }


async def _check_fresh(
    session: AsyncSession, tenant_id: str, location_ids: Sequence[str], now: dt.datetime
) -> tuple[dict[str, dt.datetime], list[StaleData]]:
    """Each fresh location's `data_as_of`, and a refusal for each stale one."""
    marks: dict[str, dt.datetime] = {}
    refusals = []
    for location_id in location_ids:
        try:
            marks[location_id] = await freshness.require_fresh(session, tenant_id, location_id, now)
        except StaleData as stale:
            refusals.append(stale)
    return marks, refusals


async def rebuild_audience(
    session: AsyncSession,
    *,
    tenant_id: str,
    audience_id: str,
    location_ids: Sequence[str] | None,
    trigger: str,
    now: dt.datetime,
    evaluate_at: dt.datetime | None = None,
) -> RebuildOutcome:
    """Build the next version for `location_ids` (None: every location of the segment).

    `evaluate_at` gives each location its "today" (a scheduled build evaluates the day of
    its slot even if the job runs after midnight); freshness is judged at `now`."""
    audience = await repository.get_audience(session, tenant_id, audience_id, None, for_update=True)
    if audience is None:
        return RebuildOutcome("gone")
    segment = await segments_repository.get_segment(session, tenant_id, audience.segment_id, None)
    if segment is None:
        return RebuildOutcome("gone")
    covered = await build_locations(session, segment)
    wanted = set(location_ids) if location_ids is not None else None
    targets = [loc for loc in covered if wanted is None or loc.id in wanted]
    if not targets:
        return RebuildOutcome("gone")
    target_ids = [loc.id for loc in targets]

    fresh, refusals = await _check_fresh(session, tenant_id, target_ids, now)
    if refusals:
        await record_event(
            session,
            tenant_id=tenant_id,
            type="audience.rebuild_refused",
            occurred_at=now,
            location_id=target_ids[0] if len(target_ids) == 1 else None,
            data={
                "audience_id": audience.id,
                "segment_id": audience.segment_id,
                "version": audience.version,
                "trigger": trigger,
                "location_ids": target_ids,
                "reason": "stale_data",
                "stale_locations": [
                    {
                        "location_id": r.extra["location_id"],
                        "data_as_of": r.extra["data_as_of"],
                        "threshold_minutes": r.extra["threshold_minutes"],
                    }
                    for r in refusals
                ],
                "detail": " ".join(r.detail or "" for r in refusals),
            },
        )
        return RebuildOutcome(
            "refused",
            version=audience.version,
            total=audience.total,
            stale_location_ids=tuple(r.extra["location_id"] for r in refusals),
        )

    version = audience.version + 1
    suppression = Suppression.model_validate(audience.suppression)
    compiled, plan = compile_audience(
        segment, audience.channel, suppression, targets, evaluate_at or now
    )
    await repository.stage_candidates(session, compiled, plan.statements)
    added, removed, counts = await repository.apply_rebuild(
        session,
        plan.reasons,
        tenant_id=tenant_id,
        audience_id=audience.id,
        version=version,
        location_ids=target_ids,
    )
    covered_ids = {loc.id for loc in covered}
    marks = {k: v for k, v in (audience.location_data_as_of or {}).items() if k in covered_ids}
    if set(audience.location_data_as_of or {}) - covered_ids:
        # The segment no longer covers a location that was built before: its members leave.
        removed += await repository.remove_members_outside(
            session,
            tenant_id=tenant_id,
            audience_id=audience.id,
            version=version,
            location_ids=sorted(covered_ids),
        )
    marks.update({loc: mark.isoformat() for loc, mark in fresh.items()})
    built_as_of = min(fresh.values())
    total = audience.total + added - removed
    session.add(
        AudienceVersion(
            tenant_id=tenant_id,
            audience_id=audience.id,
            version=version,
            location_ids=target_ids,
            trigger=trigger,
            data_as_of=built_as_of,
            built_at=now,
            added=added,
            removed=removed,
            total=total,
            counts=counts,
        )
    )
    audience.version = version
    audience.total = total
    audience.location_data_as_of = marks
    audience.data_as_of = min(dt.datetime.fromisoformat(v) for v in marks.values())
    audience.built_at = now
    audience.updated_at = now
    await session.flush()
    await _announce(session, audience, version, added, removed, target_ids, trigger, now)
    return RebuildOutcome("built", version=version, added=added, removed=removed, total=total)


async def _announce(
    session: AsyncSession,
    audience: Audience,
    version: int,
    added: int,
    removed: int,
    location_ids: list[str],
    trigger: str,
    now: dt.datetime,
) -> None:
    await record_event(
        session,
        tenant_id=audience.tenant_id,
        type="audience.updated",
        occurred_at=now,
        location_id=location_ids[0] if len(location_ids) == 1 else None,
        data={
            "audience_id": audience.id,
            "segment_id": audience.segment_id,
            "version": version,
            "added": added,
            "removed": removed,
            "total": audience.total,
            "location_ids": location_ids,
            "trigger": trigger,
            "data_as_of": audience.data_as_of,
        },
    )
