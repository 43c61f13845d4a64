"""The event outbox: other domains call `record_event` in the transaction of their change.

    from api.events import record_event
    await record_event(session, tenant_id=..., type="booking.confirmed", data={...},
                       location_id=...)

Event types and their payload models live in api/webhooks/catalog.py."""

from api.events.outbox import record_event, record_events

__all__ = ["record_event", "record_events"]
