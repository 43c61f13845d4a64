"""/v1/webhook-endpoints: CRUD, validation naming the field, tenancy, scopes, secrets."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.core.db import unit_of_work
from api.core.settings import WebhookSettings
from api.main import create_app
from api.webhooks.models import WebhookEndpoint
from api.webhooks.signing import decrypt_secret
from tests.conftest import make_settings
from tests.webhooks.conftest import create_endpoint

BASE = "/v1/webhook-endpoints"


async def test_create_shows_the_secret_once_and_stores_it_encrypted(
    client, practice, receiver, sessions, settings
):
    created = await create_endpoint(
        client,
        practice.headers,
        receiver.url(),
        description="CRM sync",
        event_types=["webhook.*", "endpoint.disabled"],
    )
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 32
    assert created["id"].startswith("whe_")
    assert created["event_types"] == ["endpoint.disabled", "webhook.*"]
    assert created["location_ids"] is None and created["enabled"] is True

    fetched = (await client.get(f"{BASE}/{created['id']}", headers=practice.headers)).json()
    assert "secret" not in fetched
    assert fetched["description"] == "CRM sync"

    async with unit_of_work(sessions) as session:
        row = (await session.execute(select(WebhookEndpoint))).scalar_one()
    assert secret not in row.secret_ciphertext
    assert decrypt_secret(settings.secret_key, row.secret_ciphertext) == secret


async def test_list_update_delete(client, practice, receiver):
    ids = [
        (await create_endpoint(client, practice.headers, receiver.url(f"/h{i}")))["id"]
        for i in range(3)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(BASE, headers=practice.headers, params=params)).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)

    location = practice.locations[0].id
    patched = await client.patch(
        f"{BASE}/{ids[0]}",
        headers=practice.headers,
        json={
            "url": receiver.url("/moved"),
            "description": "moved",
            "event_types": ["*"],
            "location_ids": [location],
            "enabled": False,
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["url"].endswith("/moved") and body["location_ids"] == [location]
    assert body["enabled"] is False and body["disabled_reason"]
    again = await client.patch(f"{BASE}/{ids[0]}", headers=practice.headers, json={"enabled": True})
    assert again.json()["enabled"] is True and again.json()["disabled_reason"] is None

    assert (await client.delete(f"{BASE}/{ids[0]}", headers=practice.headers)).status_code == 204
    assert (await client.get(f"{BASE}/{ids[0]}", headers=practice.headers)).status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x"}, "url"),
        ({"event_types": ["invoice.*"]}, "event_types.0"),
        ({"event_types": ["*", "webhook.tested"]}, "event_types.1"),
        ({"event_types": []}, "event_types"),
        ({"url": None}, "url"),
    ],
)
async def test_validation_names_the_field(client, practice, receiver, payload, field):
    body = {"url": receiver.url()} | payload
    response = await client.post(BASE, headers=practice.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_unknown_location_is_404_naming_it(client, practice, other_practice, receiver):
    foreign = other_practice.locations[0].id
    response = await client.post(
        BASE, headers=practice.headers, json={"url": receiver.url(), "location_ids": [foreign]}
    )
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {"field": "location_ids", "message": f"unknown location {foreign}"}
    ]


async def test_another_tenants_endpoint_is_404(client, practice, other_practice, receiver):
    theirs = await create_endpoint(client, other_practice.headers, receiver.url())
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/attempts"),
    ]:
        kwargs = {"json": {"description": "x"}} if method == "PATCH" else {}
        response = await client.request(
            method, f"{BASE}/{theirs['id']}{suffix}", headers=practice.headers, **kwargs
        )
        assert response.status_code == 404, (method, suffix, response.text)
    listed = (await client.get(BASE, headers=practice.headers)).json()
    assert listed["data"] == []


@pytest.mark.scopes("communications:manage")
async def test_needs_webhooks_manage_scope(client, practice, receiver):
    response = await client.post(BASE, headers=practice.headers, json={"url": receiver.url()})
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["webhooks:manage"]
    assert (await client.get("/v1/events", headers=practice.headers)).status_code == 403


async def test_location_limited_token_sees_only_its_endpoints(
    client, practice, make_token, receiver
):
    main = practice.locations[0].id
    token = await make_token(practice.tenant.id, ["webhooks:manage"], [main])
    limited = {"Authorization": f"Bearer {token}"}
    everywhere = await create_endpoint(client, practice.headers, receiver.url("/all"))
    no_list = await client.post(BASE, headers=limited, json={"url": receiver.url()})
    assert no_list.status_code == 422
    assert no_list.json()["errors"][0]["field"] == "location_ids"
    mine = await create_endpoint(client, limited, receiver.url("/main"), location_ids=[main])
    listed = (await client.get(BASE, headers=limited)).json()["data"]
    assert [e["id"] for e in listed] == [mine["id"]]
    assert (await client.get(f"{BASE}/{everywhere['id']}", headers=limited)).status_code == 404


async def test_create_is_idempotent_with_a_key(client, practice, receiver):
    headers = practice.headers | {"Idempotency-Key": "create-hook-1"}
    first = await client.post(BASE, headers=headers, json={"url": receiver.url()})
    second = await client.post(BASE, headers=headers, json={"url": receiver.url()})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len((await client.get(BASE, headers=practice.headers)).json()["data"]) == 1


async def test_private_targets_refused_when_not_allowed(servers, practice):
    """Production settings: loopback, private and link-local targets are refused, and so is
    plain http."""
    import httpx
    from asgi_lifespan import LifespanManager

    strict = make_settings(servers, webhooks=WebhookSettings(allow_private_targets=False))
    app = create_app(strict)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for url in [
                "http://127.0.0.1:8080/hook",
                "https://10.1.2.3/hook",
                "https://169.254.169.254/latest/meta-data",
                "https://[::1]/hook",
                "https://localhost/hook",
                "https://0.0.0.0/hook",
                "https://224.0.0.1/hook",
            ]:
                response = await c.post(BASE, headers=practice.headers, json={"url": url})
                assert response.status_code == 422, (url, response.text)
                error = response.json()["errors"][0]
                assert error["field"] == "url"
                assert "non-public" in error["message"], error
