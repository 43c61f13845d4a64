"""The demo practice `chairfill up` makes once and reuses: tenant "Demo Dental", one
location in America/Chicago and an OAuth client holding every scope.

The database keeps only the hash of the client secret, so the secret itself is kept in
`<data dir>/demo-client.json` (mode 0600) to be printed again on later runs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scopes import ALL_SCOPES
from api.core.security import token_matches
from api.core.settings import OAuthSettings
from api.oauth2 import repository as oauth_repository
from api.oauth2 import service as oauth_service
from api.tenancy import repository as tenancy_repository
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate

DEMO_TENANT = "Demo Dental"
DEMO_LOCATION = "Demo Dental - Main Street"
DEMO_TIMEZONE = "America/Chicago"
DEMO_FILE = "demo-client.json"


@dataclass(frozen=True)
class DemoCredentials:
    tenant_id: str
    location_id: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class DemoPractice:
    credentials: DemoCredentials
    created: bool
    # A ready bearer token (one hour), so the first call needs no token request.
    access_token: str


def read_credentials(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_credentials(path: Path, credentials: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(credentials), handle, indent=2)
    # O_CREAT's mode does not apply to a file that already existed.
    os.chmod(path, 0o600)


async def ensure_demo_practice(
    session: AsyncSession, data_dir: Path, oauth: OAuthSettings
) -> DemoPractice:
    """Reuse the demo client from the data dir when it still works, else make what is
    missing. System unit of work: it looks the client up across tenants."""
    path = data_dir / DEMO_FILE
    stored = read_credentials(path)
    client = None
    if stored.get("client_id"):
        client = await oauth_repository.client_by_id_any_tenant(session, stored["client_id"])
    if client is not None and token_matches(stored.get("client_secret", ""), client.secret_hash):
        credentials = DemoCredentials(
            tenant_id=client.tenant_id,
            location_id=stored.get("location_id", ""),
            client_id=client.id,
            client_secret=stored["client_secret"],
        )
        created = False
    else:
        tenant = None
        if stored.get("tenant_id"):
            tenant = await tenancy_repository.get_tenant(session, stored["tenant_id"])
        if tenant is None:
            tenant = await tenancy_service.create_tenant(session, TenantCreate(name=DEMO_TENANT))
        existing = await tenancy_repository.all_locations(session, tenant.id, None)
        location = existing[0] if existing else None
        if location is None:
            location = await tenancy_service.create_location(
                session, tenant.id, LocationCreate(name=DEMO_LOCATION, timezone=DEMO_TIMEZONE)
            )
        made = await oauth_service.create_client(
            session, tenant.id, name="Demo integration", scopes=list(ALL_SCOPES)
        )
        assert made.client_secret is not None
        credentials = DemoCredentials(
            tenant_id=tenant.id,
            location_id=location.id,
            client_id=made.client.id,
            client_secret=made.client_secret,
        )
        client = made.client
        write_credentials(path, credentials)
        created = True
    minted = await oauth_service.issue_client_token(session, client, oauth)
    return DemoPractice(credentials=credentials, created=created, access_token=minted.access_token)
