"""GraphQL types and resolvers for segments.

Thin: each resolver calls the same service function as its REST twin (`/v1/segments...`,
`/v1/segment-fields`). Reading needs `communications:review`; creating, changing and
deleting need `communications:manage`. Rules travel as JSON (the same versioned document
as REST); rule errors carry the same JSON pointers in `extensions.errors`."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any, TypeVar, cast

import pydantic
import strawberry
from strawberry.scalars import JSON

from api.auth.scopes import Scope
from api.core.clock import utcnow
from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.permissions import requires_scopes
from api.segments import service
from api.segments.models import DEFAULT_REFRESH_TIME
from api.segments.models import Segment as SegmentRow
from api.segments.schemas import ExplainOut, PreviewOut, SegmentCreate, SegmentUpdate

Info = strawberry.Info[Context, None]
T = TypeVar("T", bound=pydantic.BaseModel)
REVIEW = Scope.COMMUNICATIONS_REVIEW.value
MANAGE = Scope.COMMUNICATIONS_MANAGE.value


@strawberry.enum(description="How often a segment's audience is rebuilt.")
class RefreshCadence(Enum):
    DAILY = "daily"
    WEEKLY = "weekly"


@strawberry.type(description="A named rule over the practice's patients.")
class Segment:
    id: strawberry.ID
    name: str
    description: str | None
    rule: JSON = strawberry.field(description='The rule document: {"version": 1, "rule": ...}.')
    location_ids: list[str] = strawberry.field(description="Empty: every visible location.")
    template: str | None
    refresh_cadence: RefreshCadence
    refresh_local_time: dt.time
    refresh_weekday: int = strawberry.field(description="Weekly refreshes: 0 = Monday.")
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: SegmentRow) -> Segment:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            description=row.description,
            rule=cast(JSON, row.rule),
            location_ids=list(row.location_ids or []),
            template=row.template,
            refresh_cadence=RefreshCadence(row.refresh_cadence),
            refresh_local_time=row.refresh_local_time,
            refresh_weekday=row.refresh_weekday,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="One page of segments, by id.")
class SegmentConnection:
    nodes: list[Segment]
    next_cursor: str | None


@strawberry.type(description="An option of an existence field.")
class SegmentFieldQualifier:
    name: str
    type: str
    description: str
    choices: list[str]


@strawberry.type(description="A field rules can use, with its type and operators.")
class SegmentField:
    name: str
    type: str
    operators: list[str]
    description: str
    enum_values: list[str]
    qualifiers: list[SegmentFieldQualifier]


@strawberry.type(description="A patient in a preview sample.")
class SegmentPreviewPatient:
    id: strawberry.ID
    name: str
    location_id: str


@strawberry.type(description="Who matches now: count, a sample of up to 20, data_as_of.")
class SegmentPreview:
    count: int
    sample: list[SegmentPreviewPatient]
    location_ids: list[str]
    data_as_of: dt.datetime | None

    @classmethod
    def from_out(cls, out: PreviewOut) -> SegmentPreview:
        return cls(
            count=out.count,
            sample=[
                SegmentPreviewPatient(
                    id=strawberry.ID(p.id), name=p.name, location_id=p.location_id
                )
                for p in out.sample
            ],
            location_ids=out.location_ids,
            data_as_of=out.data_as_of,
        )


@strawberry.type(description="Why a patient is or is not in a segment.")
class SegmentExplanation:
    segment_id: strawberry.ID
    patient_id: strawberry.ID
    location_id: str
    matched: bool
    location_in_segment: bool
    rule_matched: bool
    today: dt.date
    tree: JSON = strawberry.field(
        description="Every node: pointer, kind, result; predicates add field, op, value, observed."
    )
    data_as_of: dt.datetime | None

    @classmethod
    def from_out(cls, out: ExplainOut) -> SegmentExplanation:
        return cls(
            segment_id=strawberry.ID(out.segment_id),
            patient_id=strawberry.ID(out.patient_id),
            location_id=out.location_id,
            matched=out.matched,
            location_in_segment=out.location_in_segment,
            rule_matched=out.rule_matched,
            today=out.today,
            tree=cast(JSON, out.tree.model_dump(mode="json", exclude_none=True)),
            data_as_of=out.data_as_of,
        )


@strawberry.input(description="A new segment: a rule or a template.")
class SegmentInput:
    name: str | None = None
    description: str | None = None
    rule: JSON | None = None
    template: str | None = None
    location_ids: list[str] = strawberry.field(default_factory=list)
    refresh_cadence: RefreshCadence | None = None
    refresh_local_time: dt.time = DEFAULT_REFRESH_TIME
    refresh_weekday: int = 0


@strawberry.input(description="Changes to a segment; omitted fields stay as they are.")
class SegmentPatch:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    rule: JSON | None = strawberry.UNSET
    location_ids: list[str] | None = strawberry.UNSET
    refresh_cadence: RefreshCadence | None = strawberry.UNSET
    refresh_local_time: dt.time | None = strawberry.UNSET
    refresh_weekday: int | None = strawberry.UNSET


def checked_input(model: type[T], values: dict[str, Any]) -> T:
    """Input checked by the REST schema; its errors become the same field problems."""
    plain = {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}
    try:
        return model.model_validate(plain)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "input", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise ValidationProblem("The input is not valid.", errors=errors) from exc


def page_params(first: int, after: str | None) -> PageParams:
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationProblem(
            f"`first` must be between 1 and {MAX_LIMIT}.",
            errors=[{"field": "first", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    return PageParams(limit=first, cursor=after)


@strawberry.type
class SegmentsQuery:
    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="One segment.")
    async def segment(self, info: Info, id: strawberry.ID) -> Segment | None:
        async with info.context.db() as session:
            row = await service.get_segment(session, info.context.principal, str(id))
        return Segment.from_row(row)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="Segments, by id.")
    async def segments(
        self, info: Info, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> SegmentConnection:
        page = page_params(first, after)
        async with info.context.db() as session:
            rows, cursor = await service.list_segments(session, info.context.principal, page)
        return SegmentConnection(nodes=[Segment.from_row(r) for r in rows], next_cursor=cursor)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="The fields rules can use.")
    def segment_fields(self) -> list[SegmentField]:
        return [
            SegmentField(
                name=f.name,
                type=f.type,
                operators=f.operators,
                description=f.description,
                enum_values=f.enum_values,
                qualifiers=[SegmentFieldQualifier(**q.model_dump()) for q in f.qualifiers],
            )
            for f in service.list_fields()
        ]

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="Preview a saved segment (`id`) or an unsaved `rule`.",
    )
    async def preview_segment(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        rule: JSON | None = None,
        location_ids: Annotated[
            list[str] | None, strawberry.argument(description="With `rule` only.")
        ] = None,
    ) -> SegmentPreview:
        if (id is None) == (rule is None):
            raise ValidationProblem(
                "Pass either `id` or `rule`.",
                errors=[{"field": "id", "message": "either id or rule"}],
            )
        principal = info.context.principal
        async with info.context.db() as session:
            if id is not None:
                out = await service.preview_segment(session, principal, str(id), utcnow())
            else:
                out = await service.preview_rule(
                    session, principal, rule, location_ids or [], utcnow()
                )
        return SegmentPreview.from_out(out)

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="Every predicate's value for one patient, and whether they are in.",
    )
    async def explain_segment(
        self, info: Info, id: strawberry.ID, patient_id: strawberry.ID
    ) -> SegmentExplanation:
        async with info.context.db() as session:
            out = await service.explain_segment(
                session, info.context.principal, str(id), str(patient_id), utcnow()
            )
        return SegmentExplanation.from_out(out)


@strawberry.type
class SegmentsMutation:
    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Create a segment.")
    async def create_segment(self, info: Info, input: SegmentInput) -> Segment:
        data = checked_input(SegmentCreate, vars(input))
        async with info.context.db() as session:
            row = await service.create_segment(session, info.context.principal, data, utcnow())
        return Segment.from_row(row)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)], description="Change a segment.")
    async def update_segment(self, info: Info, id: strawberry.ID, patch: SegmentPatch) -> Segment:
        given = {k: v for k, v in vars(patch).items() if v is not strawberry.UNSET}
        data = checked_input(SegmentUpdate, given)
        async with info.context.db() as session:
            row = await service.update_segment(
                session, info.context.principal, str(id), data, utcnow()
            )
        return Segment.from_row(row)

    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)], description="Delete a segment; returns its id."
    )
    async def delete_segment(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.db() as session:
            await service.delete_segment(session, info.context.principal, str(id))
        return id
