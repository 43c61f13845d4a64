"""Checks at send time: the SSRF guard runs again on every attempt, and a receiver that
does not answer in time is a failed attempt, not a stuck worker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.core.clock import utcnow
from api.core.settings import WebhookSettings
from api.webhooks.delivery import new_http_client, next_delay, parse_retry_after
from api.webhooks.dispatch import deliver_due
from api.webhooks.ssrf import is_public
from tests.conftest import make_settings
from tests.webhooks.conftest import create_endpoint, deliveries
from tests.webhooks.receiver import Answer


async def _attempt(sessions, tenant_id, settings):
    """One round of the tenant's deliverer (the one due delivery), as a worker runs it."""
    async with new_http_client(settings.webhooks) as http:
        return await deliver_due(sessions, tenant_id, http=http, settings=settings)


async def test_private_target_is_refused_again_at_send_time(
    client, practice, receiver, sessions, servers
):
    """Registered while private targets were allowed; the sender no longer allows them."""
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    sent = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers
    )
    assert sent.status_code == 202
    strict = make_settings(servers, webhooks=WebhookSettings(allow_private_targets=False))
    summary = await _attempt(sessions, practice.tenant.id, strict)

    assert receiver.requests == []
    assert summary == {"pending": 1}
    attempts = (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/attempts", headers=practice.headers
        )
    ).json()["data"]
    assert attempts[0]["succeeded"] is False and attempts[0]["status_code"] is None
    assert attempts[0]["error"].startswith("refused target:")
    assert "non-public" in attempts[0]["error"]
    (delivery,) = await deliveries(sessions)
    assert delivery.status == "pending" and delivery.next_attempt_at > utcnow()


async def test_slow_receiver_times_out_and_is_retried(
    client, practice, receiver, sessions, servers
):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    receiver.script("/hook", Answer(200, delay=2.0))
    sent = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers
    )
    impatient = make_settings(servers, webhooks=WebhookSettings(total_timeout=0.5))
    started = utcnow()
    assert sent.status_code == 202
    await _attempt(sessions, practice.tenant.id, impatient)
    assert utcnow() - started < timedelta(seconds=1.8)

    attempts = (
        await client.get(
            f"/v1/events/{sent.json()['event']['id']}/attempts", headers=practice.headers
        )
    ).json()["data"]
    assert attempts[0]["error"].startswith("timeout")
    assert 400 <= attempts[0]["latency_ms"] < 1800
    (delivery,) = await deliveries(sessions)
    assert delivery.status == "pending" and delivery.attempt_count == 1


async def test_refused_connection_is_a_failed_attempt(client, practice, sessions, settings):
    from api.core.embedded import free_port

    endpoint = await create_endpoint(
        client, practice.headers, f"http://127.0.0.1:{free_port()}/nobody-listens"
    )
    sent = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers
    )
    assert sent.status_code == 202
    await _attempt(sessions, practice.tenant.id, settings)
    attempts = (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/attempts", headers=practice.headers
        )
    ).json()["data"]
    assert attempts[0]["error"].startswith("connection failed")


def test_ladder_spans_more_than_three_days():
    from api.webhooks.delivery import MAX_ATTEMPTS, RETRY_LADDER

    assert sum(RETRY_LADDER) >= 72 * 3600
    # A delivery that never succeeds outlives the five-day limit, so the limit decides.
    assert sum(RETRY_LADDER) > 5 * 24 * 3600
    assert len(RETRY_LADDER) + 1 == MAX_ATTEMPTS
    for count, step in enumerate(RETRY_LADDER, start=1):
        assert step <= next_delay(count, None) <= step * 1.2
    assert next_delay(3, 42) == 42


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("Wed, 21 Oct 2099 07:28:00 GMT", None), ("soon", None), (None, None)],
)
def test_parse_retry_after(header, expected):
    value = parse_retry_after(header, utcnow())
    if header and header[0].isalpha() and header != "soon":
        assert value is not None and value > 365 * 86400
    else:
        assert value == expected


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
    ],
)
def test_public_addresses(address, public):
    import ipaddress

    assert is_public(ipaddress.ip_address(address)) is public
