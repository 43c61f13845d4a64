from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError

from tests.oauth2.conftest import PASSWORD, REDIRECT_URI, hidden_fields

TOKEN_URL = "/oauth/token"
REVIEW = "communications:review"
MANAGE = "communications:manage"


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
async def app_client(practice, make_client):
    """A confidential partner app that may ask for the communications scopes."""
    return await make_client(
        practice.tenant.id, [REVIEW, MANAGE, "schedule:read"], redirect_uris=[REDIRECT_URI]
    )


@pytest.fixture
async def manager(practice, make_staff):
    """Holds review + manage at Main Street, only review at Lakeside."""
    main, lakeside = practice.locations
    await make_staff(
        practice.tenant.id,
        "dana@bright.example",
        {main.id: [REVIEW, MANAGE], lakeside.id: [REVIEW]},
    )
    return "dana@bright.example"


async def _exchange(oauth, walk):
    return await oauth.fetch_token(
        TOKEN_URL,
        authorization_response=walk.location,
        state=walk.state,
        code_verifier=walk.code_verifier,
    )


async def test_full_flow_with_pkce_s256(
    client, practice, app_client, manager, oauth_client, authorize
):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email=manager, scope=f"{REVIEW} {MANAGE}")

    page = walk.page
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "Recall Pro" in page.text
    assert "Review Communications setup" in page.text and "Manage Communications setup" in page.text
    assert walk.location.startswith(REDIRECT_URI + "?")
    assert _query(walk.location)["state"] == walk.state

    token = await _exchange(oauth, walk)

    assert token["scope"] == f"{REVIEW} {MANAGE}"
    assert token["refresh_token"].startswith("cfrt_")
    me = (await oauth.get("/v1/me")).json()
    assert me["principal_type"] == "user"
    assert me["user_id"].startswith("usr_")
    # Dana holds both rights only at Main Street.
    assert [loc["id"] for loc in me["locations"]] == [practice.locations[0].id]


async def test_user_grants_only_scopes_their_rights_allow(
    practice, app_client, make_staff, oauth_client, authorize
):
    main, lakeside = practice.locations
    await make_staff(
        practice.tenant.id, "rey@bright.example", {main.id: [REVIEW], lakeside.id: [REVIEW]}
    )
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email="rey@bright.example", scope=f"{REVIEW} {MANAGE}")
    token = await _exchange(oauth, walk)

    assert token["scope"] == REVIEW
    me = (await oauth.get("/v1/me")).json()
    assert me["scopes"] == [REVIEW]
    assert {loc["id"] for loc in me["locations"]} == {main.id, lakeside.id}


async def test_locations_narrow_to_where_all_granted_rights_are_held(
    practice, make_client, make_location, make_staff, oauth_client, authorize
):
    main, lakeside = practice.locations
    uptown = await make_location(practice.tenant.id, "Uptown", "America/Chicago")
    # The client itself may act only at Main Street and Uptown.
    created = await make_client(
        practice.tenant.id,
        [REVIEW, MANAGE],
        redirect_uris=[REDIRECT_URI],
        location_ids=[main.id, uptown.id],
    )
    await make_staff(
        practice.tenant.id,
        "kim@bright.example",
        {main.id: [REVIEW], lakeside.id: [REVIEW, MANAGE], uptown.id: [REVIEW, MANAGE]},
    )
    oauth = oauth_client(created, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    token = await _exchange(oauth, await authorize(oauth, email="kim@bright.example"))

    assert token["scope"] == f"{REVIEW} {MANAGE}"
    me = (await oauth.get("/v1/me")).json()
    assert me["all_locations"] is False
    assert [loc["id"] for loc in me["locations"]] == [uptown.id]


async def test_user_without_any_requested_right_sees_a_clear_error(
    practice, app_client, make_staff, oauth_client, authorize
):
    await make_staff(
        practice.tenant.id, "sam@bright.example", {practice.locations[0].id: ["tasks:manage"]}
    )
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email="sam@bright.example", scope=REVIEW)

    assert walk.decision.status_code == 403
    assert "hold none of the rights" in walk.decision.text
    assert "location" not in walk.decision.headers


async def test_no_location_with_all_granted_rights_is_refused(
    practice, app_client, make_staff, oauth_client, authorize
):
    main, lakeside = practice.locations
    await make_staff(
        practice.tenant.id, "lee@bright.example", {main.id: [REVIEW], lakeside.id: [MANAGE]}
    )
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email="lee@bright.example", scope=f"{REVIEW} {MANAGE}")

    assert walk.decision.status_code == 403
    assert "no location where you hold all" in walk.decision.text


async def test_wrong_password_shows_the_form_again(app_client, manager, oauth_client, authorize):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email=manager, password="wrong")

    assert walk.decision.status_code == 200
    assert "The email or password is not correct." in walk.decision.text
    assert 'name="csrf_token"' in walk.decision.text
    assert manager in walk.decision.text


async def test_deny_redirects_with_access_denied(app_client, manager, oauth_client, authorize):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email=manager, decision="deny")

    params = _query(walk.location)
    assert params["error"] == "access_denied" and params["state"] == walk.state


async def test_plain_pkce_is_refused(app_client, oauth_client, authorize):
    oauth = oauth_client(app_client, redirect_uri=REDIRECT_URI)
    verifier = generate_token(64)

    walk = await authorize(
        oauth, email=None, code_challenge=verifier, code_challenge_method="plain"
    )

    assert walk.page.status_code == 302
    params = _query(walk.page.headers["location"])
    assert params["error"] == "invalid_request"
    assert "S256" in params["error_description"]


async def test_missing_pkce_is_refused(app_client, oauth_client, authorize):
    oauth = oauth_client(app_client, redirect_uri=REDIRECT_URI)

    walk = await authorize(oauth, email=None)

    params = _query(walk.page.headers["location"])
    assert params["error"] == "invalid_request"
    assert "PKCE is required" in params["error_description"]


async def test_unregistered_redirect_uri_is_not_followed(app_client, oauth_client, authorize):
    oauth = oauth_client(app_client, code_challenge_method="S256")

    walk = await authorize(oauth, email=None, redirect_uri="https://evil.example/cb")

    assert walk.page.status_code == 400
    assert "location" not in walk.page.headers
    assert "not supported by client" in walk.page.text


async def test_wrong_verifier_is_refused(app_client, manager, oauth_client, authorize):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)
    walk = await authorize(oauth, email=manager)

    with pytest.raises(OAuthError) as raised:
        await oauth.fetch_token(
            TOKEN_URL,
            authorization_response=walk.location,
            state=walk.state,
            code_verifier=generate_token(64),
        )

    assert raised.value.error == "invalid_grant"


async def test_code_reuse_is_refused_and_revokes_its_tokens(
    client, app_client, manager, oauth_client, authorize
):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)
    walk = await authorize(oauth, email=manager)
    token = await _exchange(oauth, walk)

    with pytest.raises(OAuthError) as raised:
        await _exchange(oauth, walk)

    assert raised.value.error == "invalid_grant"
    # The first exchange's tokens were issued from an intercepted code: revoked too.
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await client.get("/v1/me", headers=headers)).status_code == 401


async def test_public_client_uses_pkce_without_a_secret(
    practice, make_client, manager, oauth_client, authorize
):
    created = await make_client(
        practice.tenant.id, [REVIEW], public=True, redirect_uris=[REDIRECT_URI]
    )
    assert created.client_secret is None
    oauth = oauth_client(created, code_challenge_method="S256", redirect_uri=REDIRECT_URI)

    token = await _exchange(oauth, await authorize(oauth, email=manager))

    assert token["scope"] == REVIEW
    assert (await oauth.get("/v1/me")).json()["principal_type"] == "user"


async def test_tampered_form_is_refused(client, app_client, manager, oauth_client):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)
    url, _ = oauth.create_authorization_url(
        "http://testserver/oauth/authorize", code_verifier=generate_token(64), scope=REVIEW
    )
    page = await client.get(url)
    form = dict(hidden_fields(page.text))
    form.update(scope=f"{REVIEW} {MANAGE}", email=manager, password=PASSWORD, decision="approve")

    response = await client.post("/oauth/authorize", data=form)

    assert response.status_code == 400
    assert "start again" in response.text


async def test_expired_code_is_refused(app_client, manager, oauth_client, authorize, settings):
    oauth = oauth_client(app_client, code_challenge_method="S256", redirect_uri=REDIRECT_URI)
    walk = await authorize(oauth, email=manager)

    later = settings.oauth.authorization_code_ttl_seconds + 1
    travel = time_machine.travel(datetime.now(UTC) + timedelta(seconds=later), tick=True)
    with travel, pytest.raises(OAuthError) as raised:
        await _exchange(oauth, walk)

    assert raised.value.error == "invalid_grant"
