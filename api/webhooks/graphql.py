"""GraphQL types and resolvers for webhook endpoints.

Thin: each resolver calls the same service function as its REST twin
(`/v1/webhook-endpoints...`). Every field needs the `webhooks:manage` scope.
Register with `merge_types("Query", (..., WebhooksQuery))` and
`merge_types("Mutation", (..., WebhooksMutation))` in api/graphql/schema.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeVar

import pydantic
import strawberry

from api.auth.scopes import Scope
from api.core.errors import ValidationProblem
from api.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from api.graphql.context import Context
from api.graphql.permissions import requires_scopes
from api.webhooks import service
from api.webhooks.models import WebhookEndpoint as EndpointRow
from api.webhooks.schemas import EndpointCreate, EndpointUpdate

Info = strawberry.Info[Context, None]
T = TypeVar("T", bound=pydantic.BaseModel)
MANAGE = Scope.WEBHOOKS_MANAGE.value


@strawberry.type(
    description="Where Chairfill POSTs signed events (at-least-once; dedupe by "
    "the `webhook-id` header)."
)
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    description: str | None
    event_types: list[str] = strawberry.field(description="Type patterns: exact, `x.*` or `*`.")
    location_ids: list[str] | None = strawberry.field(description="Null: every location.")
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: EndpointRow) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(row.id),
            url=row.url,
            description=row.description,
            event_types=list(row.event_types),
            location_ids=None if row.location_ids is None else list(row.location_ids),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            disabled_at=row.disabled_at,
            failing_since=row.failing_since,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="One page of webhook endpoints, newest first.")
class WebhookEndpointConnection:
    nodes: list[WebhookEndpoint]
    next_cursor: str | None = strawberry.field(description="Pass as `after`; null at the end.")


@strawberry.type(description="An endpoint with its signing secret (shown only once).")
class WebhookEndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


@strawberry.input
class WebhookEndpointInput:
    url: str
    description: str | None = None
    event_types: list[str] = strawberry.field(default_factory=lambda: ["*"])
    location_ids: list[str] | None = None


@strawberry.input(description="Only the fields given are changed.")
class WebhookEndpointPatch:
    url: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    event_types: list[str] | None = strawberry.UNSET
    location_ids: list[str] | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET


def _checked(model: type[T], **values: object) -> T:
    """Input checked by the REST schema; its errors become the same field problems."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "input", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise ValidationProblem("The input is not valid.", errors=errors) from exc


def _page(first: int, after: str | None) -> PageParams:
    if not 1 <= first <= MAX_LIMIT:
        raise ValidationProblem(
            f"`first` must be between 1 and {MAX_LIMIT}.",
            errors=[{"field": "first", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    return PageParams(limit=first, cursor=after)


@strawberry.type
class WebhooksQuery:
    @strawberry.field(extensions=[requires_scopes(MANAGE)])
    async def webhook_endpoints(
        self, info: Info, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> WebhookEndpointConnection:
        async with info.context.db() as session:
            rows, cursor = await service.list_endpoints(
                session, info.context.principal, _page(first, after)
            )
        return WebhookEndpointConnection(
            nodes=[WebhookEndpoint.from_row(r) for r in rows], next_cursor=cursor
        )

    @strawberry.field(extensions=[requires_scopes(MANAGE)])
    async def webhook_endpoint(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument()]
    ) -> WebhookEndpoint | None:
        async with info.context.db() as session:
            row = await service.get_endpoint(session, info.context.principal, str(id))
        return WebhookEndpoint.from_row(row)


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(extensions=[requires_scopes(MANAGE)])
    async def create_webhook_endpoint(
        self, info: Info, input: WebhookEndpointInput
    ) -> WebhookEndpointWithSecret:
        data = _checked(
            EndpointCreate,
            url=input.url,
            description=input.description,
            event_types=input.event_types,
            location_ids=input.location_ids,
        )
        async with info.context.db() as session:
            row, secret = await service.create_endpoint(
                session, info.context.principal, data, info.context.settings
            )
        return WebhookEndpointWithSecret(endpoint=WebhookEndpoint.from_row(row), secret=secret)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)])
    async def update_webhook_endpoint(
        self, info: Info, id: strawberry.ID, patch: WebhookEndpointPatch
    ) -> WebhookEndpoint:
        given = {k: v for k, v in vars(patch).items() if v is not strawberry.UNSET}
        async with info.context.db() as session:
            row = await service.update_endpoint(
                session,
                info.context.principal,
                str(id),
                _checked(EndpointUpdate, **given),
                info.context.settings,
            )
        return WebhookEndpoint.from_row(row)

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)])
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.db() as session:
            await service.delete_endpoint(session, info.context.principal, str(id))
        return id

    @strawberry.mutation(extensions=[requires_scopes(MANAGE)])
    async def rotate_webhook_endpoint_secret(
        self, info: Info, id: strawberry.ID, overlap_seconds: int = 24 * 3600
    ) -> WebhookEndpointWithSecret:
        if not 0 <= overlap_seconds <= 7 * 24 * 3600:
            raise ValidationProblem(
                "overlap_seconds must be between 0 and 7 days.",
                errors=[{"field": "overlapSeconds", "message": "between 0 and 604800"}],
            )
        async with info.context.db() as session:
            row, secret = await service.rotate_secret(
                session, info.context.principal, str(id), overlap_seconds, info.context.settings
            )
        return WebhookEndpointWithSecret(endpoint=WebhookEndpoint.from_row(row), secret=secret)
