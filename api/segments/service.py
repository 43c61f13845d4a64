"""Segments: CRUD, the field catalog and templates, preview and explain.

Evaluation always covers the segment's locations the caller may see, each with its own
local "today"; the rule runs as one SQL statement (api/engines/rules/compiler.py), and an
explanation runs the same rule in Python over one patient's snapshot."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.errors import FieldError, NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, page_of
from api.engines.rules import (
    FIELDS,
    LocationDay,
    Rule,
    RuleInvalid,
    compile_rule,
    explain,
    parse_rule,
)
from api.practice import freshness
from api.practice import repository as practice_repository
from api.segments import repository
from api.segments.models import Segment
from api.segments.schemas import (
    ExplainNodeOut,
    ExplainOut,
    FieldOut,
    PreviewOut,
    PreviewPatient,
    QualifierOut,
    SegmentCreate,
    SegmentUpdate,
    TemplateOut,
)
from api.segments.snapshots import build_snapshot, location_today
from api.segments.templates import TEMPLATES, TEMPLATES_BY_KEY
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location


def list_fields() -> list[FieldOut]:
    return [
        FieldOut(
            name=f.name,
            type=f.type,
            operators=list(f.operators),
            description=f.description,
            enum_values=list(f.enum_values),
            qualifiers=[
                QualifierOut(
                    name=q.name, type=q.kind, description=q.description, choices=list(q.choices)
                )
                for q in f.qualifiers
            ],
        )
        for f in FIELDS
    ]


def list_templates() -> list[TemplateOut]:
    return [
        TemplateOut(
            key=t.key,
            name=t.name,
            description=t.description,
            category=t.category,
            refresh_cadence=t.refresh_cadence,
            rule=t.rule,
        )
        for t in TEMPLATES
    ]


def validate_rule(document: Any) -> Rule:
    """The parsed rule, or a 422 whose errors are JSON pointers into the rule document."""
    try:
        return parse_rule(document)
    except RuleInvalid as invalid:
        raise ValidationProblem(
            "The rule is not valid; each error's field is a JSON pointer into the rule document.",
            errors=[
                FieldError(field=e.pointer or "rule", message=e.message) for e in invalid.errors
            ],
        ) from None


async def _resolve_locations(
    session: AsyncSession, principal: Principal, requested: Sequence[str]
) -> list[Location]:
    """The requested locations (422 naming any the caller cannot see), or all visible."""
    visible = await tenancy_repository.all_locations(
        session, principal.tenant_id, principal.location_ids
    )
    if not requested:
        return visible
    by_id = {loc.id: loc for loc in visible}
    errors = [
        FieldError(field=f"location_ids[{i}]", message=f"no location {loc_id!r}")
        for i, loc_id in enumerate(requested)
        if loc_id not in by_id
    ]
    if errors:
        raise ValidationProblem("Unknown locations.", errors=errors)
    return [by_id[loc_id] for loc_id in sorted(set(requested))]


async def segment_locations(
    session: AsyncSession, principal: Principal, segment: Segment
) -> list[Location]:
    visible = await tenancy_repository.all_locations(
        session, principal.tenant_id, principal.location_ids
    )
    wanted = set(segment.location_ids or ())
    return [loc for loc in visible if not wanted or loc.id in wanted]


def location_days(locations: Sequence[Location], now: dt.datetime) -> list[LocationDay]:
    return [
        LocationDay(loc.id, location_today(now, loc.timezone), loc.timezone) for loc in locations
    ]


async def create_segment(
    session: AsyncSession, principal: Principal, data: SegmentCreate, now: dt.datetime
) -> Segment:
    template = None
    if data.template is not None:
        template = TEMPLATES_BY_KEY.get(data.template)
        if template is None:
            raise ValidationProblem(
                f"There is no template {data.template!r}; see GET /v1/segment-templates.",
                errors=[{"field": "template", "message": "unknown template"}],
            )
        if data.rule is not None:
            raise ValidationProblem(
                "Send either `rule` or `template`, not both.",
                errors=[{"field": "rule", "message": "not allowed with template"}],
            )
    elif data.rule is None:
        raise ValidationProblem(
            "A segment needs a `rule` (or a `template`).",
            errors=[{"field": "rule", "message": "required"}],
        )
    document = copy.deepcopy(template.rule) if template else data.rule
    validate_rule(document)
    name = data.name or (template.name if template else None)
    if name is None:
        raise ValidationProblem(
            "A segment needs a name.", errors=[{"field": "name", "message": "required"}]
        )
    locations = await _resolve_locations(session, principal, data.location_ids)
    segment = Segment(
        tenant_id=principal.tenant_id,
        id=new_id("segment"),
        name=name,
        description=data.description or (template.description if template else None),
        rule=document,
        location_ids=sorted(loc.id for loc in locations) if data.location_ids else [],
        template=template.key if template else None,
        refresh_cadence=data.refresh_cadence or (template.refresh_cadence if template else "daily"),
        refresh_local_time=data.refresh_local_time,
        refresh_weekday=data.refresh_weekday,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(segment)
    await session.flush()
    return segment


async def get_segment(session: AsyncSession, principal: Principal, segment_id: str) -> Segment:
    segment = await repository.get_segment(
        session, principal.tenant_id, segment_id, principal.location_ids
    )
    if segment is None:
        raise NotFound(f"There is no segment {segment_id}.")
    return segment


async def list_segments(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[Segment], str | None]:
    rows = await repository.list_segments(
        session, principal.tenant_id, principal.location_ids, page
    )
    return page_of(rows, ["id"], page)


async def update_segment(
    session: AsyncSession,
    principal: Principal,
    segment_id: str,
    data: SegmentUpdate,
    now: dt.datetime,
) -> Segment:
    segment = await get_segment(session, principal, segment_id)
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "refresh_cadence", "refresh_local_time", "refresh_weekday", "rule"):
        if key in changes and changes[key] is None:
            raise ValidationProblem(
                f"`{key}` cannot be null.", errors=[{"field": key, "message": "cannot be null"}]
            )
    if "rule" in changes:
        validate_rule(changes["rule"])
    if "location_ids" in changes:
        requested = changes["location_ids"] or []
        locations = await _resolve_locations(session, principal, requested)
        changes["location_ids"] = sorted(loc.id for loc in locations) if requested else []
    for key, value in changes.items():
        setattr(segment, key, value)
    segment.updated_at = now
    await session.flush()
    return segment


async def delete_segment(session: AsyncSession, principal: Principal, segment_id: str) -> None:
    segment = await get_segment(session, principal, segment_id)
    await repository.delete_segment(session, segment)


async def _preview(
    session: AsyncSession,
    principal: Principal,
    rule: Rule,
    locations: Sequence[Location],
    now: dt.datetime,
) -> PreviewOut:
    compiled = compile_rule(
        rule, tenant_id=principal.tenant_id, locations=location_days(locations, now)
    )
    count, rows = await repository.preview(session, compiled, principal.tenant_id)
    location_ids = [loc.id for loc in locations]
    return PreviewOut(
        count=count,
        sample=[
            PreviewPatient(
                id=row.patient_id,
                name=f"{row.first_name} {row.last_name}",
                location_id=row.location_id,
            )
            for row in rows
        ],
        location_ids=location_ids,
        data_as_of=await freshness.oldest_data_as_of(session, principal.tenant_id, location_ids),
    )


async def preview_rule(
    session: AsyncSession,
    principal: Principal,
    document: Any,
    location_ids: Sequence[str],
    now: dt.datetime,
) -> PreviewOut:
    rule = validate_rule(document)
    locations = await _resolve_locations(session, principal, location_ids)
    return await _preview(session, principal, rule, locations, now)


async def preview_segment(
    session: AsyncSession, principal: Principal, segment_id: str, now: dt.datetime
) -> PreviewOut:
    segment = await get_segment(session, principal, segment_id)
    locations = await segment_locations(session, principal, segment)
    return await _preview(session, principal, validate_rule(segment.rule), locations, now)


async def segment_members(
    session: AsyncSession, principal: Principal, segment: Segment, now: dt.datetime
) -> list[tuple[str, str]]:
    """Every (patient_id, location_id) in the segment now (one SQL statement)."""
    locations = await segment_locations(session, principal, segment)
    compiled = compile_rule(
        validate_rule(segment.rule),
        tenant_id=principal.tenant_id,
        locations=location_days(locations, now),
    )
    return await repository.matching_patients(session, compiled)


async def explain_segment(
    session: AsyncSession,
    principal: Principal,
    segment_id: str,
    patient_id: str,
    now: dt.datetime,
) -> ExplainOut:
    segment = await get_segment(session, principal, segment_id)
    patient = await practice_repository.get_patient(
        session, principal.tenant_id, principal.location_ids, patient_id
    )
    if patient is None:
        raise NotFound(f"There is no patient {patient_id}.")
    location = await tenancy_repository.get_location(
        session, principal.tenant_id, patient.location_id, principal.location_ids
    )
    if location is None:
        raise NotFound(f"There is no patient {patient_id}.")
    records = await repository.patient_records(session, patient)
    snapshot = build_snapshot(patient, records, location.timezone)
    today = location_today(now, location.timezone)
    explanation = explain(validate_rule(segment.rule), snapshot, today)
    in_locations = not segment.location_ids or patient.location_id in segment.location_ids
    return ExplainOut(
        segment_id=segment.id,
        patient_id=patient.id,
        location_id=patient.location_id,
        matched=in_locations and explanation.matched,
        location_in_segment=in_locations,
        rule_matched=explanation.matched,
        today=today,
        tree=ExplainNodeOut.model_validate(explanation.root.as_dict()),
        data_as_of=await freshness.data_as_of(session, principal.tenant_id, patient.location_id),
    )


async def current_members(
    session: AsyncSession, tenant_id: str, segment_id: str, now: dt.datetime
) -> list[tuple[str, str]] | None:
    """System read (cadence enrollment): every (patient_id, location_id) in the segment
    now, over its own locations; None when the segment no longer exists."""
    segment = await repository.get_segment(session, tenant_id, segment_id, None)
    if segment is None:
        return None
    locations = await tenancy_repository.all_locations(session, tenant_id, None)
    wanted = set(segment.location_ids or ())
    compiled = compile_rule(
        validate_rule(segment.rule),
        tenant_id=tenant_id,
        locations=location_days([loc for loc in locations if not wanted or loc.id in wanted], now),
    )
    return await repository.matching_patients(session, compiled)
