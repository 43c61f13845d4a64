"""Webhook endpoints, their secrets, the event and delivery log, redelivery and replay.

REST and GraphQL call these functions; delivery itself is api/webhooks/delivery.py and the
outbox (record_event) api/events/outbox.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.clock import utcnow
from api.core.errors import Conflict, FieldError, NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, page_of
from api.core.settings import Settings
from api.events.outbox import endpoint_wants, fan_out, schedule_delivery
from api.tenancy import repository as tenancy_repository
from api.webhooks import catalog, repository, signing, ssrf
from api.webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from api.webhooks.schemas import EndpointCreate, EndpointUpdate, ReplayRequest

REPLAY_MAX_EVENTS = 10_000


# --- validation --------------------------------------------------------------------------


async def _check_url(url: str, settings: Settings) -> None:
    try:
        ssrf.check_url_shape(url, require_https=settings.env == "prod")
        await ssrf.resolve_target(url, allow_private=bool(settings.webhooks.allow_private_targets))
    except ssrf.UnsafeTarget as exc:
        raise ValidationProblem(
            f"The webhook URL {exc}.", errors=[FieldError(field="url", message=str(exc))]
        ) from exc


def _check_event_types(patterns: list[str]) -> list[str]:
    errors = []
    if not patterns:
        errors.append(FieldError(field="event_types", message="list at least one pattern"))
    for index, pattern in enumerate(patterns):
        problem = catalog.pattern_problem(pattern)
        if problem:
            errors.append(FieldError(field=f"event_types.{index}", message=problem))
    if errors:
        raise ValidationProblem("Check these fields: event_types.", errors=errors)
    return sorted(set(patterns))


async def _check_locations(
    session: AsyncSession, principal: Principal, location_ids: list[str] | None
) -> list[str] | None:
    if location_ids is None:
        if principal.location_ids is not None:
            raise ValidationProblem(
                "This token may only touch some locations: list them in location_ids.",
                errors=[FieldError(field="location_ids", message="required for this token")],
            )
        return None
    wanted = sorted(set(location_ids))
    found = await tenancy_repository.locations_by_ids(session, principal.tenant_id, wanted)
    known = {loc.id for loc in found if principal.can_see_location(loc.id)}
    missing = [loc for loc in wanted if loc not in known]
    if missing:
        raise NotFound(
            f"There is no location {', '.join(missing)}.",
            errors=[
                FieldError(field="location_ids", message=f"unknown location {m}") for m in missing
            ],
        )
    return wanted


# --- endpoints ---------------------------------------------------------------------------


async def create_endpoint(
    session: AsyncSession, principal: Principal, data: EndpointCreate, settings: Settings
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (returned this once)."""
    event_types = _check_event_types(data.event_types)
    location_ids = await _check_locations(session, principal, data.location_ids)
    await _check_url(data.url, settings)
    secret = signing.new_endpoint_secret()
    now = utcnow()
    endpoint = WebhookEndpoint(
        tenant_id=principal.tenant_id,
        id=new_id("webhook_endpoint"),
        url=data.url,
        description=data.description,
        event_types=event_types,
        location_ids=location_ids,
        enabled=True,
        secret_ciphertext=signing.encrypt_secret(settings.secret_key, secret),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def get_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    endpoint = await repository.get_endpoint(
        session, principal.tenant_id, endpoint_id, principal.location_ids, for_update=for_update
    )
    if endpoint is None:
        raise NotFound(f"There is no webhook endpoint {endpoint_id}.")
    return endpoint


async def list_endpoints(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[WebhookEndpoint], str | None]:
    rows = await repository.list_endpoints(
        session, principal.tenant_id, principal.location_ids, page
    )
    return page_of(rows, ["id"], page)


async def update_endpoint(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: str,
    data: EndpointUpdate,
    settings: Settings,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, principal, endpoint_id, for_update=True)
    sent = data.model_fields_set
    for field in ("url", "event_types", "enabled"):
        if field in sent and getattr(data, field) is None:
            raise ValidationProblem(
                f"{field} cannot be null.", errors=[FieldError(field=field, message="not null")]
            )
    now = utcnow()
    if data.event_types is not None:
        endpoint.event_types = _check_event_types(data.event_types)
    if "location_ids" in sent:
        endpoint.location_ids = await _check_locations(session, principal, data.location_ids)
    if data.url is not None:
        await _check_url(data.url, settings)
        endpoint.url = data.url
    if "description" in sent:
        endpoint.description = data.description
    if data.enabled is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    elif data.enabled is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_at, endpoint.disabled_reason = now, "Disabled through the API."
        await session.flush()
        await repository.cancel_pending_deliveries(session, principal.tenant_id, endpoint.id, now)
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> None:
    endpoint = await get_endpoint(session, principal, endpoint_id, for_update=True)
    # Deliveries and attempts go with it; their queued jobs find nothing and do nothing.
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: str,
    overlap_seconds: int,
    settings: Settings,
) -> tuple[WebhookEndpoint, str]:
    endpoint = await get_endpoint(session, principal, endpoint_id, for_update=True)
    secret = signing.new_endpoint_secret()
    now = utcnow()
    if overlap_seconds > 0:
        endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
        endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap_seconds)
    else:
        endpoint.previous_secret_ciphertext = endpoint.previous_secret_expires_at = None
    endpoint.secret_ciphertext = signing.encrypt_secret(settings.secret_key, secret)
    endpoint.updated_at = now
    await session.flush()
    return endpoint, secret


# --- events and the delivery log ---------------------------------------------------------


async def list_events(
    session: AsyncSession, principal: Principal, page: PageParams, event_type: str | None
) -> tuple[list[Event], str | None]:
    rows = await repository.list_events(
        session, principal.tenant_id, principal.location_ids, page, event_type
    )
    return page_of(rows, ["id"], page)


async def get_event(session: AsyncSession, principal: Principal, event_id: str) -> Event:
    event = await repository.get_event(
        session, principal.tenant_id, event_id, principal.location_ids
    )
    if event is None:
        raise NotFound(f"There is no event {event_id}.")
    return event


async def endpoint_attempts(
    session: AsyncSession, principal: Principal, endpoint_id: str, page: PageParams
) -> tuple[list[WebhookAttempt], str | None]:
    await get_endpoint(session, principal, endpoint_id)
    rows = await repository.list_attempts(
        session, principal.tenant_id, page, endpoint_id=endpoint_id
    )
    return page_of(rows, ["id"], page)


async def event_attempts(
    session: AsyncSession, principal: Principal, event_id: str, page: PageParams
) -> tuple[list[WebhookAttempt], str | None]:
    await get_event(session, principal, event_id)
    rows = await repository.list_attempts(session, principal.tenant_id, page, event_id=event_id)
    return page_of(rows, ["id"], page)


# --- redelivery, replay, test ------------------------------------------------------------


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(
            f"The webhook endpoint {endpoint.id} is disabled; enable it first "
            "(PATCH with enabled: true)."
        )


async def redeliver(
    session: AsyncSession, principal: Principal, event_id: str, endpoint_id: str | None
) -> list[WebhookDelivery]:
    """New deliveries of the event: to one endpoint, or to every enabled endpoint it went to."""
    event = await get_event(session, principal, event_id)
    if endpoint_id is not None:
        endpoint = await get_endpoint(session, principal, endpoint_id)
        _require_enabled(endpoint)
        targets = [endpoint]
    else:
        targets = await repository.enabled_endpoints_of_event(
            session, principal.tenant_id, event.id
        )
    return [await schedule_delivery(session, event, e.id, "manual") for e in targets]


async def replay(
    session: AsyncSession, principal: Principal, endpoint_id: str, window: ReplayRequest
) -> int:
    """Deliver again every event of the window that the endpoint's filters match."""
    if window.since >= window.until:
        raise ValidationProblem(
            "since must be before until.",
            errors=[FieldError(field="until", message="must be after since")],
        )
    endpoint = await get_endpoint(session, principal, endpoint_id)
    _require_enabled(endpoint)
    events = await repository.events_in_window(
        session,
        principal.tenant_id,
        window.since,
        window.until,
        endpoint.location_ids,
        REPLAY_MAX_EVENTS + 1,
    )
    if len(events) > REPLAY_MAX_EVENTS:
        raise ValidationProblem(
            f"More than {REPLAY_MAX_EVENTS} events in this window; replay a shorter one.",
            errors=[FieldError(field="until", message="window too large")],
        )
    scheduled = 0
    for event in events:
        if endpoint_wants(endpoint, event):
            await schedule_delivery(session, event, endpoint.id, "replay")
            scheduled += 1
    return scheduled


async def send_test(
    session: AsyncSession, principal: Principal, endpoint_id: str
) -> tuple[Event, WebhookDelivery]:
    endpoint = await get_endpoint(session, principal, endpoint_id)
    _require_enabled(endpoint)
    event, deliveries = await fan_out(
        session,
        tenant_id=principal.tenant_id,
        type="webhook.test",
        data={"endpoint_id": endpoint.id, "message": "A test event sent on request."},
        endpoint_ids=[endpoint.id],
        trigger="test",
    )
    return event, deliveries[0]
