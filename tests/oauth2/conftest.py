"""OAuth fixtures: clients, staff users, Authlib's own OAuth client over the app's ASGI
transport, and a "browser" that walks the sign-in and consent page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx
import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from api.core.db import unit_of_work
from api.oauth2 import service as oauth_service
from api.oauth2.service import CreatedClient
from api.tenancy import service as tenancy_service

BASE_URL = "http://testserver"
REDIRECT_URI = "https://app.example/callback"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_client(sessions) -> Callable[..., Awaitable[CreatedClient]]:
    async def _make(tenant_id: str, scopes: list[str], **kw: Any) -> CreatedClient:
        async with unit_of_work(sessions) as session:
            return await oauth_service.create_client(
                session, tenant_id, name=kw.pop("name", "Recall Pro"), scopes=scopes, **kw
            )

    return _make


@pytest.fixture
def make_staff(sessions) -> Callable[..., Awaitable[str]]:
    """A staff user; `rights` maps a location id to the rights held there. Returns the id."""

    async def _make(tenant_id: str, email: str, rights: dict[str, list[str]]) -> str:
        async with unit_of_work(sessions) as session:
            user = await tenancy_service.create_staff_user(
                session,
                tenant_id,
                email=email,
                name=email.split("@")[0],
                password=PASSWORD,
                rights=rights,
            )
            return user.id

    return _make


class RecordingOAuth2Client(AsyncOAuth2Client):
    """Authlib's client; `responses` keeps every HTTP response it received."""

    responses: list[httpx2.Response]


@pytest.fixture
async def oauth_client(app) -> AsyncIterator[Callable[..., RecordingOAuth2Client]]:
    made: list[RecordingOAuth2Client] = []

    def _make(created: CreatedClient, **kw: Any) -> RecordingOAuth2Client:
        responses: list[httpx2.Response] = []

        async def record(response: httpx2.Response) -> None:
            await response.aread()
            responses.append(response)

        client = RecordingOAuth2Client(
            client_id=created.client.id,
            client_secret=created.client_secret,
            transport=httpx2.ASGITransport(app=app),
            base_url=BASE_URL,
            event_hooks={"response": [record]},
            **kw,
        )
        client.responses = responses
        made.append(client)
        return client

    yield _make
    for client in made:
        await client.aclose()


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields.append((a["name"] or "", a.get("value") or ""))


def hidden_fields(html: str) -> list[tuple[str, str]]:
    parser = _FormParser()
    parser.feed(html)
    return parser.fields


@dataclass
class Authorization:
    """One walk through /oauth/authorize, as a browser does it."""

    page: httpx.Response
    decision: httpx.Response | None
    state: str
    code_verifier: str

    @property
    def location(self) -> str:
        assert self.decision is not None and self.decision.status_code == 302, (
            self.decision.text if self.decision is not None else self.page.text
        )
        return self.decision.headers["location"]


@pytest.fixture
def authorize(client) -> Callable[..., Awaitable[Authorization]]:
    """GET the consent page for an authorization URL built by Authlib's client, then POST
    the form with the staff user's login (the browser is the app's httpx client, with
    cookies)."""

    async def _walk(
        oauth: AsyncOAuth2Client,
        *,
        email: str | None,
        password: str = PASSWORD,
        scope: str | None = None,
        decision: str = "approve",
        code_verifier: str | None = None,
        **params: Any,
    ) -> Authorization:
        verifier = code_verifier or generate_token(64)
        kwargs: dict[str, Any] = {"redirect_uri": REDIRECT_URI, **params}
        if scope is not None:
            kwargs["scope"] = scope
        url, state = oauth.create_authorization_url(
            f"{BASE_URL}/oauth/authorize", code_verifier=verifier, **kwargs
        )
        page = await client.get(url)
        if email is None or page.status_code != 200:
            return Authorization(page, None, state, verifier)
        form = [*hidden_fields(page.text), ("email", email), ("password", password)]
        form.append(("decision", decision))
        decision_response = await client.post("/oauth/authorize", data=dict(form))
        return Authorization(page, decision_response, state, verifier)

    return _walk
