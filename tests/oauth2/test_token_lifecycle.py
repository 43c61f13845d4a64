"""Refresh rotation, revocation (RFC 7009), introspection (RFC 7662) and metadata (RFC 8414)."""

from __future__ import annotations

import pytest
from authlib.integrations.base_client import OAuthError

from api.auth.scopes import ALL_SCOPES
from tests.oauth2.conftest import REDIRECT_URI

TOKEN_URL = "/oauth/token"
REVOKE_URL = "/oauth/revoke"
INTROSPECT_URL = "/oauth/introspect"
REVIEW = "communications:review"


@pytest.fixture
async def user_token(practice, make_client, make_staff, oauth_client, authorize):
    """An Authlib client holding a user token (with refresh token) for the practice."""
    created = await make_client(practice.tenant.id, [REVIEW], redirect_uris=[REDIRECT_URI])
    await make_staff(
        practice.tenant.id, "dana@bright.example", {practice.locations[0].id: [REVIEW]}
    )
    oauth = oauth_client(created, code_challenge_method="S256", redirect_uri=REDIRECT_URI)
    walk = await authorize(oauth, email="dana@bright.example")
    await oauth.fetch_token(
        TOKEN_URL,
        authorization_response=walk.location,
        state=walk.state,
        code_verifier=walk.code_verifier,
    )
    return oauth


async def _status(client, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return (await client.get("/v1/me", headers=headers)).status_code


async def test_refresh_rotates_and_reuse_revokes_the_family(client, user_token):
    oauth = user_token
    first = dict(oauth.token)

    second = dict(await oauth.refresh_token(TOKEN_URL))

    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == REVIEW
    assert await _status(client, second["access_token"]) == 200

    # The old refresh token shows up again: someone holds a copy.
    with pytest.raises(OAuthError) as raised:
        await oauth.refresh_token(TOKEN_URL, refresh_token=first["refresh_token"])
    assert raised.value.error == "invalid_grant"

    for access in (first["access_token"], second["access_token"]):
        assert await _status(client, access) == 401
    with pytest.raises(OAuthError):
        await oauth.refresh_token(TOKEN_URL, refresh_token=second["refresh_token"])


async def test_revoking_an_access_token_ends_it_at_once(
    client, practice, make_client, oauth_client
):
    created = await make_client(practice.tenant.id, ["schedule:read"])
    oauth = oauth_client(created)
    token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert await _status(client, token["access_token"]) == 200

    response = await oauth.revoke_token(
        REVOKE_URL, token=token["access_token"], token_type_hint="access_token"
    )

    assert response.status_code == 200
    assert await _status(client, token["access_token"]) == 401


async def test_revoking_a_refresh_token_revokes_its_family(client, user_token):
    oauth = user_token
    first = dict(oauth.token)
    second = dict(await oauth.refresh_token(TOKEN_URL))

    response = await oauth.revoke_token(
        REVOKE_URL, token=second["refresh_token"], token_type_hint="refresh_token"
    )

    assert response.status_code == 200
    assert await _status(client, first["access_token"]) == 401
    assert await _status(client, second["access_token"]) == 401
    with pytest.raises(OAuthError) as raised:
        await oauth.refresh_token(TOKEN_URL, refresh_token=second["refresh_token"])
    assert raised.value.error == "invalid_grant"


async def test_revoking_an_unknown_token_answers_200(practice, make_client, oauth_client):
    oauth = oauth_client(await make_client(practice.tenant.id, ["schedule:read"]))

    response = await oauth.revoke_token(REVOKE_URL, token="cfat_never-issued")

    assert response.status_code == 200


async def test_introspection_reports_active_and_inactive(practice, make_client, oauth_client):
    main = practice.locations[0]
    created = await make_client(practice.tenant.id, ["schedule:read"], location_ids=[main.id])
    oauth = oauth_client(created)
    token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")

    body = (await oauth.introspect_token(INTROSPECT_URL, token=token["access_token"])).json()

    assert body["active"] is True
    assert body["scope"] == "schedule:read"
    assert body["client_id"] == created.client.id == body["sub"]
    assert body["token_type"] == "Bearer"
    assert body["tenant_id"] == practice.tenant.id
    assert body["location_ids"] == [main.id]
    assert body["exp"] - body["iat"] == 3600
    assert body["iss"] == "http://testserver"

    await oauth.revoke_token(REVOKE_URL, token=token["access_token"])
    revoked = await oauth.introspect_token(INTROSPECT_URL, token=token["access_token"])
    assert revoked.json() == {"active": False}
    unknown = await oauth.introspect_token(INTROSPECT_URL, token="cfat_never-issued")
    assert unknown.json() == {"active": False}


async def test_introspection_of_a_user_refresh_token(user_token, practice):
    oauth = user_token
    body = (
        await oauth.introspect_token(
            INTROSPECT_URL, token=oauth.token["refresh_token"], token_type_hint="refresh_token"
        )
    ).json()
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert body["sub"].startswith("usr_")
    assert body["location_ids"] == [practice.locations[0].id]


async def test_introspecting_another_tenants_token_is_inactive(
    practice, other_practice, make_client, oauth_client
):
    ours = oauth_client(await make_client(practice.tenant.id, ["schedule:read"]))
    theirs = oauth_client(await make_client(other_practice.tenant.id, ["schedule:read"]))
    foreign = await theirs.fetch_token(TOKEN_URL, grant_type="client_credentials")

    response = await ours.introspect_token(INTROSPECT_URL, token=foreign["access_token"])

    assert response.status_code == 200
    assert response.json() == {"active": False}
    own = await theirs.introspect_token(INTROSPECT_URL, token=foreign["access_token"])
    assert own.json()["active"] is True


async def test_introspection_needs_client_authentication(client, practice):
    response = await client.post(INTROSPECT_URL, data={"token": practice.token})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_metadata_document(client):
    response = await client.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    body = response.json()
    issuer = "http://testserver"
    assert body["issuer"] == issuer
    assert body["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert body["token_endpoint"] == f"{issuer}/oauth/token"
    assert body["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert body["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert body["scopes_supported"] == list(ALL_SCOPES)
    assert set(body["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
    }
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert {"client_secret_basic", "client_secret_post", "none"} == set(
        body["token_endpoint_auth_methods_supported"]
    )


async def test_oauth_routes_are_documented(client):
    spec = (await client.get("/openapi.json")).json()
    token = spec["paths"]["/oauth/token"]["post"]
    assert token["tags"] == ["oauth"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert "grant_type" in form["required"]
    for path in ("/oauth/revoke", "/oauth/introspect", "/oauth/authorize"):
        assert "oauth" in next(iter(spec["paths"][path].values()))["tags"]
    assert "/.well-known/oauth-authorization-server" in spec["paths"]
