"""Delivery through the real job runner to a real loopback receiver: signing, fan-out,
retry ladder, Retry-After, 410, five failing days, rotation."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import WebhookVerificationError

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.infra_models import Job
from api.events import record_event
from api.webhooks.delivery import new_http_client
from api.webhooks.dispatch import deliver_due
from api.webhooks.models import Event, WebhookEndpoint
from tests.webhooks.conftest import create_endpoint, deliveries
from tests.webhooks.receiver import Answer


async def record(sessions, tenant_id: str, *, location_id: str | None = None, n: int = 1):
    async with unit_of_work(sessions, tenant_id) as session:
        return [
            await record_event(
                session,
                tenant_id=tenant_id,
                type="webhook.test",
                data={"endpoint_id": "-", "message": f"event {i}"},
                location_id=location_id,
            )
            for i in range(n)
        ]


async def next_job(run_jobs) -> Job:
    (job,) = await run_jobs.pending()
    return job


async def test_test_event_is_signed_per_standard_webhooks(client, practice, receiver, run_jobs):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    sent = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers
    )
    assert sent.status_code == 202, sent.text
    delivery = sent.json()["delivery"]
    assert delivery["trigger"] == "test" and delivery["status"] == "pending"
    assert await run_jobs.run_due() == 1

    (request,) = receiver.requests
    payload = request.verify(endpoint["secret"])
    assert request.webhook_id == delivery["id"]
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == endpoint["id"]
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        request_body = request.body.replace(b"webhook.test", b"webhook.tent")
        type(request)(request.path, request.headers, request_body, 0).verify(endpoint["secret"])

    attempts = (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/attempts", headers=practice.headers
        )
    ).json()["data"]
    assert len(attempts) == 1
    attempt = attempts[0]
    assert attempt["status_code"] == 200 and attempt["succeeded"] is True
    assert attempt["trigger"] == "test" and attempt["delivery_id"] == delivery["id"]
    assert attempt["response_body"] == "ok" and attempt["latency_ms"] >= 0


async def test_fan_out_follows_type_and_location_filters(
    client, practice, receiver, run_jobs, sessions
):
    main, lakeside = (loc.id for loc in practice.locations)
    everything = await create_endpoint(client, practice.headers, receiver.url("/all"))
    main_only = await create_endpoint(
        client,
        practice.headers,
        receiver.url("/main"),
        event_types=["webhook.*"],
        location_ids=[main],
    )
    other_type = await create_endpoint(
        client, practice.headers, receiver.url("/other"), event_types=["endpoint.disabled"]
    )
    switched_off = await create_endpoint(client, practice.headers, receiver.url("/off"))
    await client.patch(
        f"/v1/webhook-endpoints/{switched_off['id']}",
        headers=practice.headers,
        json={"enabled": False},
    )
    await record(sessions, practice.tenant.id, location_id=lakeside)
    await record(sessions, practice.tenant.id, location_id=main)
    await record(sessions, practice.tenant.id)  # tenant-wide
    await run_jobs.run_until_idle()

    assert len(receiver.on("/all")) == 3
    assert len(receiver.on("/main")) == 2
    assert receiver.on("/other") == [] and receiver.on("/off") == []
    for request in receiver.on("/all"):
        request.verify(everything["secret"])
    for request in receiver.on("/main"):
        request.verify(main_only["secret"])
    assert other_type["id"]


async def test_the_outbox_is_part_of_the_callers_transaction(
    client, practice, receiver, run_jobs, sessions
):
    await create_endpoint(client, practice.headers, receiver.url())
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessions, practice.tenant.id) as session:
            await record_event(
                session,
                tenant_id=practice.tenant.id,
                type="webhook.test",
                data={"endpoint_id": "-", "message": "rolled back"},
            )
            raise RuntimeError("the change failed")
    async with unit_of_work(sessions) as session:
        assert (await session.execute(select(Event))).first() is None
    assert await run_jobs.pending() == []
    assert await deliveries(sessions) == []


async def test_failures_climb_the_ladder_with_a_stable_webhook_id(
    client, practice, receiver, run_jobs, sessions
):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    receiver.script("/hook", Answer(503, body=b"x" * 5000), Answer(500))
    await record(sessions, practice.tenant.id)

    started = utcnow()
    await run_jobs.run_due()
    retry = await next_job(run_jobs)
    assert timedelta(seconds=5) <= retry.run_at - started <= timedelta(seconds=7)
    await run_jobs.run_due(advance=timedelta(seconds=10))
    retry = await next_job(run_jobs)
    assert timedelta(seconds=60) <= retry.run_at - utcnow() <= timedelta(seconds=73)
    await run_jobs.run_due(advance=timedelta(seconds=80))
    assert await run_jobs.pending() == []

    requests = receiver.on("/hook")
    assert [r.webhook_id for r in requests] == [requests[0].webhook_id] * 3
    for request in requests:
        request.verify(endpoint["secret"])
    (delivery,) = await deliveries(sessions)
    assert delivery.status == "succeeded" and delivery.attempt_count == 3
    attempts = (
        await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/attempts", headers=practice.headers
        )
    ).json()["data"]
    assert [a["attempt_number"] for a in attempts] == [3, 2, 1]
    assert [a["status_code"] for a in attempts] == [200, 500, 503]
    assert len(attempts[2]["response_body"]) == 2048
    async with unit_of_work(sessions) as session:
        row = (await session.execute(select(WebhookEndpoint))).scalar_one()
    assert row.failing_since is None  # cleared by the success


async def test_429_and_503_honor_retry_after(client, practice, receiver, run_jobs, sessions):
    await create_endpoint(client, practice.headers, receiver.url())
    later = utcnow() + timedelta(seconds=300)
    receiver.script(
        "/hook",
        Answer(429, headers={"Retry-After": "120"}),
        Answer(503, headers={"Retry-After": format_datetime(later, usegmt=True)}),
    )
    await record(sessions, practice.tenant.id)
    await run_jobs.run_due()
    retry = await next_job(run_jobs)
    assert timedelta(seconds=119) <= retry.run_at - utcnow() <= timedelta(seconds=121)
    await run_jobs.run_due(advance=timedelta(seconds=130))
    retry = await next_job(run_jobs)
    assert abs((retry.run_at - later).total_seconds()) <= 2
    await run_jobs.run_due(advance=timedelta(seconds=310))
    (delivery,) = await deliveries(sessions)
    assert delivery.status == "succeeded" and delivery.attempt_count == 3


async def test_410_disables_the_endpoint_and_tells_the_others(
    client, practice, receiver, run_jobs, sessions, settings
):
    gone = await create_endpoint(client, practice.headers, receiver.url("/gone"))
    watcher = await create_endpoint(
        client, practice.headers, receiver.url("/watch"), event_types=["endpoint.*"]
    )
    receiver.always("/gone", Answer(410))
    await record(sessions, practice.tenant.id, n=3)
    # One attempt only (a deliverer taking one at a time): the first 410 disables it, the
    # other two deliveries are cancelled and never sent.
    async with new_http_client(settings.webhooks) as http:
        summary = await deliver_due(
            sessions, practice.tenant.id, http=http, settings=settings, batch_size=1, max_rounds=1
        )
    assert summary == {"failed": 1}
    await run_jobs.run_until_idle()

    assert len(receiver.on("/gone")) == 1
    endpoint = (
        await client.get(f"/v1/webhook-endpoints/{gone['id']}", headers=practice.headers)
    ).json()
    assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]
    statuses = sorted(d.status for d in await deliveries(sessions, endpoint_id=gone["id"]))
    assert statuses == ["cancelled", "cancelled", "failed"]

    (notice,) = receiver.on("/watch")
    payload = notice.verify(watcher["secret"])
    assert payload["type"] == "endpoint.disabled"
    assert payload["data"]["endpoint_id"] == gone["id"] and payload["data"]["reason"] == "gone"


async def test_410s_in_one_batch_disable_once(client, practice, receiver, run_jobs, sessions):
    """A batch sends concurrently, so several attempts may meet the 410: each is recorded
    and its delivery failed, the endpoint is disabled once and told about once, and a
    delivery of the batch that got another answer is cancelled with the endpoint."""
    gone = await create_endpoint(client, practice.headers, receiver.url("/gone"))
    watcher = await create_endpoint(
        client, practice.headers, receiver.url("/watch"), event_types=["endpoint.*"]
    )
    receiver.script("/gone", Answer(500))
    receiver.always("/gone", Answer(410))
    await record(sessions, practice.tenant.id, n=4)
    await run_jobs.run_until_idle()

    assert len(receiver.on("/gone")) == 4
    statuses = sorted(d.status for d in await deliveries(sessions, endpoint_id=gone["id"]))
    assert statuses == ["cancelled", "failed", "failed", "failed"]
    attempts = (
        await client.get(f"/v1/webhook-endpoints/{gone['id']}/attempts", headers=practice.headers)
    ).json()["data"]
    assert sorted(a["status_code"] for a in attempts) == [410, 410, 410, 500]
    (notice,) = receiver.on("/watch")
    assert notice.verify(watcher["secret"])["data"]["endpoint_id"] == gone["id"]


async def test_five_failing_days_disable_the_endpoint(
    client, practice, receiver, run_jobs, sessions
):
    failing = await create_endpoint(client, practice.headers, receiver.url("/down"))
    watcher = await create_endpoint(
        client, practice.headers, receiver.url("/watch"), event_types=["endpoint.disabled"]
    )
    receiver.always("/down", Answer(500))
    await record(sessions, practice.tenant.id)
    await run_jobs.run_due()
    async with unit_of_work(sessions) as session:
        row = await session.get(WebhookEndpoint, (practice.tenant.id, failing["id"]))
        assert row is not None and row.failing_since is not None and row.enabled
        # Five days pass with nothing but failures.
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == failing["id"])
            .values(failing_since=utcnow() - timedelta(days=5, minutes=1))
        )
    await run_jobs.run_due(advance=timedelta(seconds=10))
    await run_jobs.run_until_idle()

    endpoint = (
        await client.get(f"/v1/webhook-endpoints/{failing['id']}", headers=practice.headers)
    ).json()
    assert endpoint["enabled"] is False and "5 days" in endpoint["disabled_reason"]
    (notice,) = receiver.on("/watch")
    payload = notice.verify(watcher["secret"])
    assert payload["data"] | {"disabled_at": None} == {
        "endpoint_id": failing["id"],
        "url": failing["url"],
        "reason": "failing",
        "detail": endpoint["disabled_reason"],
        "disabled_at": None,
    }


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    client, practice, receiver, run_jobs
):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    rotate = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    rotated = (await client.post(rotate, headers=practice.headers)).json()
    assert rotated["secret"] != endpoint["secret"]
    expires = rotated["previous_secret_expires_at"]
    assert expires is not None
    await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers)
    await run_jobs.run_due()
    (request,) = receiver.requests
    assert request.headers["webhook-signature"].count("v1,") == 2
    request.verify(endpoint["secret"])
    request.verify(rotated["secret"])

    final = (
        await client.post(rotate, headers=practice.headers, json={"overlap_seconds": 0})
    ).json()
    assert final["previous_secret_expires_at"] is None
    await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers)
    await run_jobs.run_due()
    latest = receiver.requests[-1]
    assert latest.headers["webhook-signature"].count("v1,") == 1
    latest.verify(final["secret"])
    with pytest.raises(WebhookVerificationError):
        latest.verify(rotated["secret"])
    assert json.loads(latest.body)["type"] == "webhook.test"
