"""GraphQL for messaging: the ledger, the sandbox outbox, template previews and the
practice's messaging settings.

Thin: each resolver calls the same service function as its REST twin (`/v1/messages`,
`/v1/sandbox/messages`, `/v1/templates/preview`, `/v1/messaging/settings`), with
`communications:review` to read and `communications:manage` to change settings."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar, cast

import pydantic
import strawberry
from strawberry.scalars import JSON

from api.auth.scopes import Scope
from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.permissions import requires_scopes
from api.messaging import service
from api.messaging.models import Message as MessageRow
from api.messaging.schemas import PreferencesIn, PreviewRequest

Info = strawberry.Info[Context, None]
REVIEW = Scope.COMMUNICATIONS_REVIEW.value
MANAGE = Scope.COMMUNICATIONS_MANAGE.value
M = TypeVar("M", bound=pydantic.BaseModel)


def _parse(model: type[M], document: JSON, name: str) -> M:
    """The JSON argument checked by the REST body's schema; 422 naming each field."""
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or name, "message": e["msg"]}
            for e in exc.errors()
        ]
        raise ValidationProblem(f"The {name} are not valid.", errors=errors) from exc


@strawberry.type(description="One outbound message of the send ledger.")
class Message:
    id: strawberry.ID
    location_id: str
    patient_id: str | None
    channel: str
    source_kind: str
    source_id: str
    purpose: str | None
    status: str = strawberry.field(description="queued, held, sent, delivered, failed, suppressed")
    failure_reason: str | None
    subject: str | None
    body_text: str
    sms_segments: int | None
    provider_message_id: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    deferred_until: dt.datetime | None = strawberry.field(
        description="Waiting for a scheduled time or the end of the location's quiet hours."
    )

    @classmethod
    def from_row(cls, row: MessageRow) -> Message:
        return cls(
            id=strawberry.ID(row.id),
            location_id=row.location_id,
            patient_id=row.patient_id,
            channel=row.channel,
            source_kind=row.source_kind,
            source_id=row.source_id,
            purpose=row.purpose,
            status=row.status,
            failure_reason=row.failure_reason,
            subject=row.subject,
            body_text=row.body_text,
            sms_segments=row.sms_segments,
            provider_message_id=row.provider_message_id,
            created_at=row.created_at,
            sent_at=row.sent_at,
            delivered_at=row.delivered_at,
            deferred_until=row.deferred_until,
        )


@strawberry.type(description="One page of messages, by id.")
class MessageConnection:
    nodes: list[Message]
    next_cursor: str | None


@strawberry.type(description="A message the sandbox provider recorded instead of sending.")
class SandboxMessage:
    id: strawberry.ID
    message_id: str
    channel: str
    to_address: str
    subject: str | None
    body_text: str
    created_at: dt.datetime


@strawberry.type(description="One page of sandbox messages, by id.")
class SandboxMessageConnection:
    nodes: list[SandboxMessage]
    next_cursor: str | None


@strawberry.type(description="A variable templates may use, e.g. patient.first_name.")
class TemplateVariable:
    name: str
    description: str
    clinical: bool = strawberry.field(description="Refused in SMS unless the practice allows")
    sample: str


def _page(first: int, after: str | None) -> PageParams:
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationProblem(
            f"`first` must be between 1 and {MAX_LIMIT}.",
            errors=[{"field": "first", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    return PageParams(limit=first, cursor=after)


@strawberry.type
class MessagingQuery:
    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="One message.")
    async def message(self, info: Info, id: strawberry.ID) -> Message:
        async with info.context.db() as session:
            row = await service.get_message(session, info.context.principal, str(id))
        return Message.from_row(row)

    @strawberry.field(extensions=[requires_scopes(REVIEW)], description="The send ledger.")
    async def messages(
        self,
        info: Info,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        source_kind: str | None = None,
        source_id: str | None = None,
        patient_id: str | None = None,
        status: str | None = None,
    ) -> MessageConnection:
        page = _page(first, after)
        filters: dict[str, str | None] = {
            "source_kind": source_kind,
            "source_id": source_id,
            "patient_id": patient_id,
            "status": status,
        }
        async with info.context.db() as session:
            rows, cursor = await service.list_messages(
                session, info.context.principal, page, filters
            )
        return MessageConnection(nodes=[Message.from_row(r) for r in rows], next_cursor=cursor)

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)], description="What the sandbox provider recorded."
    )
    async def sandbox_messages(
        self, info: Info, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> SandboxMessageConnection:
        page = _page(first, after)
        async with info.context.db() as session:
            rows, cursor = await service.list_sandbox(
                session, info.context.principal, page, None, None
            )
        nodes = [
            SandboxMessage(
                id=strawberry.ID(r.id),
                message_id=r.message_id,
                channel=r.channel,
                to_address=r.to_address,
                subject=r.subject,
                body_text=r.body_text,
                created_at=r.created_at,
            )
            for r in rows
        ]
        return SandboxMessageConnection(nodes=nodes, next_cursor=cursor)

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="The variables templates may use (GET /v1/templates/variables).",
    )
    def template_variables(self) -> list[TemplateVariable]:
        return [TemplateVariable(**v.model_dump()) for v in service.list_variables()]

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="Render a template (the body of POST /v1/templates/preview, as JSON).",
    )
    async def template_preview(self, info: Info, request: JSON) -> JSON:
        data = _parse(PreviewRequest, request, "request")
        async with info.context.db() as session:
            out = await service.preview(
                session, info.context.principal, data, info.context.settings
            )
        return cast(JSON, out.model_dump(mode="json"))

    @strawberry.field(
        extensions=[requires_scopes(REVIEW)],
        description="The practice's messaging choices: clinical SMS, frequency caps, quiet "
        "hours and send rates (GET /v1/messaging/settings, the same JSON document).",
    )
    async def messaging_settings(self, info: Info) -> JSON:
        async with info.context.db() as session:
            out = await service.get_preferences(session, info.context.principal.tenant_id)
        return cast(JSON, out.model_dump(mode="json"))


@strawberry.type
class MessagingMutation:
    @strawberry.mutation(
        extensions=[requires_scopes(MANAGE)],
        description="Replace the practice's messaging choices (the body of PUT "
        "/v1/messaging/settings, as JSON), e.g. send_rates: [{channel: sms, per_second: "
        "10}] to throttle the provider across all workers. Answers the saved settings.",
    )
    async def update_messaging_settings(self, info: Info, settings: JSON) -> JSON:
        data = _parse(PreferencesIn, settings, "settings")
        async with info.context.db() as session:
            out = await service.put_preferences(session, info.context.principal.tenant_id, data)
        return cast(JSON, out.model_dump(mode="json"))
