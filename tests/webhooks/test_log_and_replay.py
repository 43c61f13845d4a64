"""The event log, attempts per event, redelivery, replay of a window, and the catalog in
the OpenAPI `webhooks` section."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.events import record_event
from api.webhooks import catalog
from tests.webhooks.conftest import create_endpoint, deliveries
from tests.webhooks.test_delivery import record


async def test_events_list_newest_first_with_type_filter(
    client, practice, other_practice, receiver, sessions
):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    events = await record(sessions, practice.tenant.id, n=3)
    await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=practice.headers)
    await record(sessions, other_practice.tenant.id)

    listed = (await client.get("/v1/events", headers=practice.headers)).json()
    assert len(listed["data"]) == 4 and listed["next_cursor"] is None
    ids = [e["id"] for e in listed["data"]]
    assert ids == sorted(ids, reverse=True)
    page1 = (await client.get("/v1/events", headers=practice.headers, params={"limit": 3})).json()
    page2 = (
        await client.get(
            "/v1/events",
            headers=practice.headers,
            params={"limit": 3, "cursor": page1["next_cursor"]},
        )
    ).json()
    assert [e["id"] for e in page1["data"] + page2["data"]] == ids
    none = await client.get(
        "/v1/events", headers=practice.headers, params={"type": "endpoint.disabled"}
    )
    assert none.json()["data"] == []
    one = (await client.get(f"/v1/events/{events[0].id}", headers=practice.headers)).json()
    assert one["type"] == "webhook.test" and one["data"]["message"] == "event 0"
    theirs = (await client.get("/v1/events", headers=other_practice.headers)).json()["data"]
    assert len(theirs) == 1
    foreign = await client.get(f"/v1/events/{theirs[0]['id']}", headers=practice.headers)
    assert foreign.status_code == 404
    assert (
        await client.post(f"/v1/events/{theirs[0]['id']}/redeliver", headers=practice.headers)
    ).status_code == 404


async def test_redeliver_to_all_or_one_endpoint(client, practice, receiver, run_jobs, sessions):
    first = await create_endpoint(client, practice.headers, receiver.url("/a"))
    second = await create_endpoint(client, practice.headers, receiver.url("/b"))
    (event,) = await record(sessions, practice.tenant.id)
    await run_jobs.run_until_idle()

    again = await client.post(f"/v1/events/{event.id}/redeliver", headers=practice.headers)
    assert again.status_code == 202, again.text
    redelivered = again.json()["deliveries"]
    assert {d["endpoint_id"] for d in redelivered} == {first["id"], second["id"]}
    assert {d["trigger"] for d in redelivered} == {"manual"}
    only = await client.post(
        f"/v1/events/{event.id}/redeliver",
        headers=practice.headers,
        params={"endpoint_id": second["id"]},
    )
    assert [d["endpoint_id"] for d in only.json()["deliveries"]] == [second["id"]]
    missing = await client.post(
        f"/v1/events/{event.id}/redeliver",
        headers=practice.headers,
        params={"endpoint_id": "whe_nope"},
    )
    assert missing.status_code == 404
    await run_jobs.run_until_idle()

    assert len(receiver.on("/a")) == 2 and len(receiver.on("/b")) == 3
    for request in receiver.on("/b"):
        request.verify(second["secret"])
    attempts = (
        await client.get(f"/v1/events/{event.id}/attempts", headers=practice.headers)
    ).json()["data"]
    assert sorted(a["trigger"] for a in attempts) == ["automatic"] * 2 + ["manual"] * 3


async def test_replay_a_window_to_one_endpoint(client, practice, receiver, run_jobs, sessions):
    main = practice.locations[0].id
    old = await create_endpoint(client, practice.headers, receiver.url("/old"))
    now = utcnow()
    async with unit_of_work(sessions, practice.tenant.id) as session:
        for hours_ago, location in [(30, main), (20, main), (10, None), (2, main)]:
            await record_event(
                session,
                tenant_id=practice.tenant.id,
                type="webhook.test",
                data={"endpoint_id": "-", "message": f"{hours_ago} h ago"},
                location_id=location,
                occurred_at=now - timedelta(hours=hours_ago),
            )
    await run_jobs.run_until_idle()
    assert len(receiver.on("/old")) == 4
    late = await create_endpoint(
        client, practice.headers, receiver.url("/new"), location_ids=[main]
    )
    window = {
        "since": (now - timedelta(hours=24)).isoformat(),
        "until": (now - timedelta(hours=1)).isoformat(),
    }
    url = f"/v1/webhook-endpoints/{late['id']}/replay"
    no_key = await client.post(url, headers=practice.headers, json=window)
    assert no_key.status_code == 400
    keyed = practice.headers | {"Idempotency-Key": "replay-1"}
    replayed = await client.post(url, headers=keyed, json=window)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["deliveries_scheduled"] == 3
    repeat = await client.post(url, headers=keyed, json=window)
    assert repeat.json() == replayed.json()
    await run_jobs.run_until_idle()

    messages = sorted(r.verify(late["secret"])["data"]["message"] for r in receiver.on("/new"))
    assert messages == ["10 h ago", "2 h ago", "20 h ago"]
    assert {d.trigger for d in await deliveries(sessions, endpoint_id=late["id"])} == {"replay"}
    backwards = await client.post(
        url,
        headers=practice.headers | {"Idempotency-Key": "replay-2"},
        json={"since": window["until"], "until": window["since"]},
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "until"
    assert old["id"]


async def test_disabled_endpoint_refuses_test_and_replay(client, practice, receiver):
    endpoint = await create_endpoint(client, practice.headers, receiver.url())
    base = f"/v1/webhook-endpoints/{endpoint['id']}"
    await client.patch(base, headers=practice.headers, json={"enabled": False})
    assert (await client.post(f"{base}/test", headers=practice.headers)).status_code == 409


def test_catalog_patterns():
    assert catalog.matches(["*"], "endpoint.disabled")
    assert catalog.matches(["webhook.*"], "webhook.test")
    assert not catalog.matches(["webhook.*"], "endpoint.disabled")
    assert not catalog.matches(["web.*"], "webhook.test")
    assert catalog.pattern_problem("endpoint.*") is None
    assert "unknown resource" in (catalog.pattern_problem("invoice.*") or "")


async def test_record_event_checks_type_and_data(practice, sessions):
    async with unit_of_work(sessions, practice.tenant.id) as session:
        with pytest.raises(ValueError, match="unknown event type"):
            await record_event(session, tenant_id=practice.tenant.id, type="nope.x", data={})
        with pytest.raises(ValueError, match="endpoint_id"):
            await record_event(
                session, tenant_id=practice.tenant.id, type="webhook.test", data={"message": "m"}
            )


async def test_openapi_documents_every_event_type(client):
    document = (await client.get("/openapi.json")).json()
    assert set(document["webhooks"]) == set(catalog.CATALOG)
    operation = document["webhooks"]["endpoint.disabled"]["post"]
    assert "dedupe by `webhook-id`" in operation["description"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"type", "timestamp", "data"}
    create = document["paths"]["/v1/webhook-endpoints"]["post"]
    assert "at-least-once" in create["description"]
    assert create["security"] == [{"OAuth2": ["webhooks:manage"]}]
