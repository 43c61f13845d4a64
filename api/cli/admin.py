"""Admin commands: tenants, locations, OAuth clients, staff users and publishable keys.

Each runs one unit of work through the same services the API uses. With --json each
prints exactly one JSON object. Secrets (client secrets) are shown once; only their
SHA-256 is stored."""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import urlsplit

import typer
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from api.cli.common import database, emit, fail, load_settings, run_unit_of_work
from api.oauth2 import service as oauth_service
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate

tenants = typer.Typer(help="Practices and DSOs.", no_args_is_help=True)
locations = typer.Typer(
    help="A tenant's offices (each with its own time zone).", no_args_is_help=True
)
clients = typer.Typer(help="OAuth clients for integrators.", no_args_is_help=True)
users = typer.Typer(help="Staff users with Dentrix-like rights per location.", no_args_is_help=True)
keys = typer.Typer(help="Publishable keys for booking widgets.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant id (ten_...).")]
MIN_PASSWORD_LENGTH = 10


@tenants.command("create")
def create_tenant(
    name: str,
    kind: Annotated[str, typer.Option(help="practice or dso")] = "practice",
    as_json: JsonOption = False,
) -> None:
    if kind not in ("practice", "dso"):
        fail(f"--kind must be practice or dso, not {kind!r}")
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, str]:
        tenant = await tenancy_service.create_tenant(session, TenantCreate(name=name, kind=kind))
        return {"id": tenant.id, "name": tenant.name, "kind": tenant.kind}

    with database(settings) as url:
        out = run_unit_of_work(url, work)
    emit(out, as_json, f"Created tenant {out['id']} ({out['name']}, {out['kind']})")


@locations.command("create")
def create_location(
    name: str,
    tenant: TenantOption,
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. America/Chicago")],
    sms_registered: Annotated[
        bool, typer.Option("--sms-registered", help="SMS (10DLC) registration is complete.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, object]:
        data = LocationCreate(
            name=name, timezone=timezone, sms_registration_complete=sms_registered
        )
        location = await tenancy_service.create_location(session, tenant, data)
        return {
            "id": location.id,
            "tenant_id": location.tenant_id,
            "name": location.name,
            "timezone": location.timezone,
            "sms_registration_complete": location.sms_registration_complete,
        }

    with database(settings) as url:
        out = run_unit_of_work(url, work, tenant_id=tenant)
    emit(out, as_json, f"Created location {out['id']} ({out['name']}, {out['timezone']})")


@clients.command("create")
def create_client(
    tenant: TenantOption,
    scope: Annotated[list[str], typer.Option("--scope", help="A scope; repeat for more.")],
    location: Annotated[
        list[str] | None, typer.Option("--location", help="Limit to a location; repeatable.")
    ] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="Enables authorization code + PKCE; repeatable."),
    ] = None,
    name: Annotated[str, typer.Option(help="Shown on the consent page.")] = "Integration",
    as_json: JsonOption = False,
) -> None:
    settings = load_settings()
    # "--scope a --scope b" and "--scope 'a b'" both work.
    scopes = [s for value in scope for s in value.replace(",", " ").split()]

    async def work(session: AsyncSession) -> dict[str, object]:
        created = await oauth_service.create_client(
            session,
            tenant,
            name=name,
            scopes=scopes,
            location_ids=location or None,
            redirect_uris=redirect_uri or None,
        )
        client = created.client
        return {
            "id": client.id,
            "client_id": client.id,
            "client_secret": created.client_secret,
            "tenant_id": client.tenant_id,
            "name": client.name,
            "scopes": client.scopes,
            "location_ids": client.location_ids,
            "redirect_uris": client.redirect_uris,
            "grant_types": client.grant_types,
        }

    with database(settings) as url:
        out = run_unit_of_work(url, work, tenant_id=tenant)
    emit(
        out,
        as_json,
        f"Created client {out['client_id']}\n"
        f"client_secret: {out['client_secret']}\n"
        "Store the secret now: it is shown once (only its hash is kept).",
    )


def parse_rights(values: list[str]) -> dict[str, list[str]]:
    """["loc_1=communications:review,communications:manage", ...] -> {loc_1: [...]}"""
    rights: dict[str, list[str]] = {}
    for value in values:
        location_id, sep, names = value.partition("=")
        granted = [n.strip() for n in names.split(",") if n.strip()]
        if not sep or not location_id.strip() or not granted:
            fail(f"--right must look like LOCATION_ID=RIGHT[,RIGHT], not {value!r}")
        rights.setdefault(location_id.strip(), []).extend(granted)
    return rights


@users.command("create")
def create_user(
    tenant: TenantOption,
    email: Annotated[str, typer.Option(help="Sign-in e-mail address.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    right: Annotated[
        list[str], typer.Option("--right", help="LOCATION_ID=RIGHT[,RIGHT]; repeat per location.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    if not password_stdin:
        fail("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        fail(f"--email: {exc}")
    rights = parse_rights(right)
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, object]:
        user = await tenancy_service.create_staff_user(
            session, tenant, email=address, name=name, password=password, rights=rights
        )
        return {
            "id": user.id,
            "tenant_id": user.tenant_id,
            "email": user.email,
            "name": user.name,
            "rights": {loc: sorted(set(r)) for loc, r in sorted(rights.items())},
        }

    with database(settings) as url:
        out = run_unit_of_work(url, work, tenant_id=tenant)
    emit(out, as_json, f"Created staff user {out['id']} ({out['email']})")


@keys.command("create")
def create_key(
    tenant: TenantOption,
    location: Annotated[list[str], typer.Option("--location", help="A location; repeatable.")],
    origin: Annotated[
        list[str], typer.Option("--origin", help="Allowed web origin (CORS); repeatable.")
    ],
    name: Annotated[str, typer.Option(help="Where the widget lives.")] = "Booking widget",
    as_json: JsonOption = False,
) -> None:
    for value in origin:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            fail(f"--origin must look like https://booking.example.com, not {value!r}")
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, object]:
        key = await oauth_service.create_publishable_key(
            session, tenant, name=name, location_ids=location, allowed_origins=origin
        )
        return {
            "id": key.id,
            "key": key.key,
            "tenant_id": key.tenant_id,
            "name": key.name,
            "location_ids": key.location_ids,
            "allowed_origins": key.allowed_origins,
        }

    with database(settings) as url:
        out = run_unit_of_work(url, work, tenant_id=tenant)
    emit(out, as_json, f"Created publishable key {out['key']} ({out['id']})")
