from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from authlib.integrations.base_client import OAuthError

from api.main import create_app
from tests.conftest import make_settings

TOKEN_URL = "/oauth/token"


async def _me(client, access_token: str):
    return await client.get("/v1/me", headers={"Authorization": f"Bearer {access_token}"})


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_issue_a_working_token(
    client, practice, make_client, oauth_client, auth_method
):
    created = await make_client(practice.tenant.id, ["schedule:read", "patients:read"])
    oauth = oauth_client(created, token_endpoint_auth_method=auth_method)

    token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")

    assert token["token_type"] == "Bearer"
    assert token["scope"] == "patients:read schedule:read"
    assert token["expires_in"] == 3600
    assert "refresh_token" not in token
    response = oauth.responses[-1]
    assert response.headers["cache-control"] == "no-store"
    me = (await _me(client, token["access_token"])).json()
    assert me["principal_type"] == "client"
    assert me["client_id"] == created.client.id
    assert sorted(me["scopes"]) == ["patients:read", "schedule:read"]
    # The token is a real API credential: the Authlib client signs requests with it.
    assert (await oauth.get("/v1/me")).json()["tenant"]["id"] == practice.tenant.id


async def test_requested_scope_subset_is_granted(client, practice, make_client, oauth_client):
    created = await make_client(practice.tenant.id, ["schedule:read", "patients:read"])
    oauth = oauth_client(created, scope="schedule:read")

    token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")

    assert token["scope"] == "schedule:read"
    assert (await _me(client, token["access_token"])).json()["scopes"] == ["schedule:read"]


async def test_token_carries_the_clients_locations(client, practice, make_client, oauth_client):
    main = practice.locations[0]
    created = await make_client(practice.tenant.id, ["schedule:read"], location_ids=[main.id])
    token = await oauth_client(created).fetch_token(TOKEN_URL, grant_type="client_credentials")

    me = (await _me(client, token["access_token"])).json()
    assert me["all_locations"] is False
    assert [loc["id"] for loc in me["locations"]] == [main.id]


@pytest.mark.parametrize(
    ("scope", "message"),
    [("schedule:read teeth:whiten", "Unknown scope"), ("webhooks:manage", "may not request")],
)
async def test_unknown_or_disallowed_scope_is_invalid_scope(
    practice, make_client, oauth_client, scope, message
):
    created = await make_client(practice.tenant.id, ["schedule:read"])
    oauth = oauth_client(created, scope=scope)

    with pytest.raises(OAuthError) as raised:
        await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")

    assert raised.value.error == "invalid_scope"
    assert message in raised.value.description
    assert oauth.responses[-1].status_code == 400


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_wrong_secret_is_invalid_client(practice, make_client, oauth_client, auth_method):
    created = await make_client(practice.tenant.id, ["schedule:read"])
    oauth = oauth_client(created, token_endpoint_auth_method=auth_method)
    oauth.client_secret = "cfcs_not-the-secret"

    with pytest.raises(OAuthError) as raised:
        await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")

    assert raised.value.error == "invalid_client"
    response = oauth.responses[-1]
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_public_client_cannot_use_client_credentials(practice, make_client, oauth_client):
    created = await make_client(
        practice.tenant.id, ["schedule:read"], public=True, redirect_uris=["https://app.example/cb"]
    )
    oauth = oauth_client(created)

    with pytest.raises(OAuthError) as raised:
        await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")

    assert raised.value.error == "invalid_client"


async def test_unsupported_grant_type_is_an_oauth_error(client, practice):
    response = await client.post(TOKEN_URL, data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_outside_development_plain_http_is_refused(app, servers, practice, make_client):
    created = await make_client(practice.tenant.id, ["schedule:read"])
    prod_settings = make_settings(servers, env="prod", secret_key="s" * 40)
    production = create_app(prod_settings)
    # The running app's connections, with production settings (no second lifespan, whose
    # shutdown would close what the session's app still uses).
    production.state.chairfill = replace(app.state.chairfill, settings=prod_settings)
    auth = (created.client.id, created.client_secret)
    form = {"grant_type": "client_credentials"}
    transport = httpx.ASGITransport(app=production)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        refused = await plain.post(TOKEN_URL, data=form, auth=auth)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as tls:
        issued = await tls.post(TOKEN_URL, data=form, auth=auth)

    assert refused.status_code == 400
    assert refused.json()["error"] == "insecure_transport"
    assert issued.status_code == 200, issued.text
