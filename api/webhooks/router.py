"""REST: webhook endpoints, the event log, delivery attempts, redelivery and replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends, Query, Request, Response, Security

from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import Idempotent, IdempotentOptional, SessionDep, api_router
from api.core.settings import Settings
from api.webhooks import service
from api.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    EventOut,
    Redelivered,
    Replayed,
    ReplayRequest,
    RotatedSecret,
    RotateSecret,
    TestSent,
)

router = api_router("webhooks")
events_router = api_router("events")

WebhooksManage = Annotated[Principal, Security(authorize, scopes=[Scope.WEBHOOKS_MANAGE.value])]
Pages = Annotated[PageParams, Depends(page_params)]


def _settings(request: Request) -> Settings:
    return request.app.state.chairfill.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]

AT_LEAST_ONCE = (
    "Delivery is at-least-once: a receiver may see the same delivery more than once and "
    "must dedupe by the `webhook-id` header, which stays the same across retries. Each "
    "delivery is signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, "
    "`webhook-signature`); failed attempts are retried with backoff for more than three "
    "days, `429`/`503` answers with `Retry-After` are honoured, `410 Gone` disables the "
    "endpoint, and an endpoint failing for five days is disabled (with an "
    "`endpoint.disabled` event to the tenant's other endpoints)."
)


@router.post(
    "/v1/webhook-endpoints",
    status_code=201,
    summary="Register a webhook endpoint",
    description="The response carries the signing secret, shown only this once.\n\n"
    + AT_LEAST_ONCE,
    dependencies=[IdempotentOptional],
)
async def create_webhook_endpoint(
    data: EndpointCreate, principal: WebhooksManage, session: SessionDep, settings: SettingsDep
) -> EndpointCreated:
    endpoint, secret = await service.create_endpoint(session, principal, data, settings)
    return EndpointCreated.model_validate(
        EndpointOut.model_validate(endpoint).model_dump() | {"secret": secret}
    )


@router.get("/v1/webhook-endpoints", summary="List webhook endpoints (newest first)")
async def list_webhook_endpoints(
    principal: WebhooksManage, session: SessionDep, page: Pages
) -> Page[EndpointOut]:
    items, cursor = await service.list_endpoints(session, principal, page)
    return Page(data=[EndpointOut.model_validate(e) for e in items], next_cursor=cursor)


@router.get("/v1/webhook-endpoints/{endpoint_id}", summary="One webhook endpoint")
async def get_webhook_endpoint(
    endpoint_id: str, principal: WebhooksManage, session: SessionDep
) -> EndpointOut:
    return EndpointOut.model_validate(await service.get_endpoint(session, principal, endpoint_id))


@router.patch(
    "/v1/webhook-endpoints/{endpoint_id}",
    summary="Change a webhook endpoint (URL, description, filters, enabled)",
)
async def update_webhook_endpoint(
    endpoint_id: str,
    data: EndpointUpdate,
    principal: WebhooksManage,
    session: SessionDep,
    settings: SettingsDep,
) -> EndpointOut:
    endpoint = await service.update_endpoint(session, principal, endpoint_id, data, settings)
    return EndpointOut.model_validate(endpoint)


@router.delete(
    "/v1/webhook-endpoints/{endpoint_id}",
    status_code=204,
    summary="Delete a webhook endpoint (and its delivery log)",
)
async def delete_webhook_endpoint(
    endpoint_id: str, principal: WebhooksManage, session: SessionDep
) -> Response:
    await service.delete_endpoint(session, principal, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    summary="Rotate the signing secret",
    description="Returns the new secret (shown only now). For `overlap_seconds` (default "
    "24 h) the previous secret signs as well, so `webhook-signature` carries two `v1,` "
    "signatures and receivers can switch without missing a delivery.",
)
async def rotate_webhook_secret(
    endpoint_id: str,
    principal: WebhooksManage,
    session: SessionDep,
    settings: SettingsDep,
    data: Annotated[RotateSecret | None, Body()] = None,
) -> RotatedSecret:
    overlap = (data or RotateSecret()).overlap_seconds
    endpoint, secret = await service.rotate_secret(
        session, principal, endpoint_id, overlap, settings
    )
    return RotatedSecret(
        endpoint_id=endpoint.id,
        secret=secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
    )


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}/attempts",
    summary="Delivery attempts to this endpoint (newest first)",
)
async def list_webhook_endpoint_attempts(
    endpoint_id: str, principal: WebhooksManage, session: SessionDep, page: Pages
) -> Page[AttemptOut]:
    items, cursor = await service.endpoint_attempts(session, principal, endpoint_id, page)
    return Page(data=[AttemptOut.model_validate(a) for a in items], next_cursor=cursor)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/replay",
    status_code=202,
    summary="Replay a time window to this endpoint",
    description="Every event that occurred in [since, until) and matches the endpoint's "
    "filters is delivered again, as new deliveries (new `webhook-id`s).",
    dependencies=[Idempotent],
)
async def replay_webhook_endpoint(
    endpoint_id: str, data: ReplayRequest, principal: WebhooksManage, session: SessionDep
) -> Replayed:
    count = await service.replay(session, principal, endpoint_id, data)
    return Replayed(
        endpoint_id=endpoint_id, since=data.since, until=data.until, deliveries_scheduled=count
    )


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/test",
    status_code=202,
    summary="Send a `webhook.test` event to this endpoint only",
    dependencies=[IdempotentOptional],
)
async def test_webhook_endpoint(
    endpoint_id: str, principal: WebhooksManage, session: SessionDep
) -> TestSent:
    event, delivery = await service.send_test(session, principal, endpoint_id)
    return TestSent(
        event=EventOut.model_validate(event), delivery=DeliveryOut.model_validate(delivery)
    )


@events_router.get("/v1/events", summary="Recent events (newest first)")
async def list_events(
    principal: WebhooksManage,
    session: SessionDep,
    page: Pages,
    type: Annotated[str | None, Query(max_length=100, description="Only this event type")] = None,
) -> Page[EventOut]:
    items, cursor = await service.list_events(session, principal, page, type)
    return Page(data=[EventOut.model_validate(e) for e in items], next_cursor=cursor)


@events_router.get("/v1/events/{event_id}", summary="One event")
async def get_event(event_id: str, principal: WebhooksManage, session: SessionDep) -> EventOut:
    return EventOut.model_validate(await service.get_event(session, principal, event_id))


@events_router.get(
    "/v1/events/{event_id}/attempts", summary="Delivery attempts of this event (newest first)"
)
async def list_event_attempts(
    event_id: str, principal: WebhooksManage, session: SessionDep, page: Pages
) -> Page[AttemptOut]:
    items, cursor = await service.event_attempts(session, principal, event_id, page)
    return Page(data=[AttemptOut.model_validate(a) for a in items], next_cursor=cursor)


@events_router.post(
    "/v1/events/{event_id}/redeliver",
    status_code=202,
    summary="Deliver an event again",
    description="To every enabled endpoint it was delivered to, or to `endpoint_id` only. "
    "Each redelivery is a new delivery with a new `webhook-id`.",
    dependencies=[IdempotentOptional],
)
async def redeliver_event(
    event_id: str,
    principal: WebhooksManage,
    session: SessionDep,
    endpoint_id: Annotated[
        str | None, Query(max_length=40, description="Only to this endpoint")
    ] = None,
) -> Redelivered:
    deliveries = await service.redeliver(session, principal, event_id, endpoint_id)
    return Redelivered(deliveries=[DeliveryOut.model_validate(d) for d in deliveries])
