"""What the booking benchmarks share: a scratch database, one practice pushed through the
bridge's ingest, and real uvicorn processes (tests.support.live.live_server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.core.clock import utcnow
from api.core.db import session_maker, unit_of_work
from api.core.settings import OAuthSettings
from api.oauth2 import service as oauth_service
from api.practice import ingest
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate
from tests.support.live import live_server
from tests.support.servers import TestServers

TIME_ZONE = "America/Chicago"


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def scratch_database(admin_url: str, name: str) -> str:
    """`name` dropped and created again on the admin URL's server; its URL."""
    with psycopg.connect(conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(database_url: str, redis_url: str, admin_url: str, **env: str) -> Iterator[str]:
    """One real uvicorn process on loopback; its base URL. Keep-alive is long so a
    benchmark's pooled connections survive pauses between rounds."""
    servers = TestServers(
        database_url=database_url, redis_url=redis_url, admin_database_url=admin_url
    )
    with live_server(servers, UVICORN_TIMEOUT_KEEP_ALIVE="600", **env) as base:
        yield base


@dataclass(frozen=True)
class Practice:
    tenant_id: str
    location_id: str
    token: str
    type_id: str


async def practice(
    database_url: str,
    name: str,
    scopes: list[str],
    batches: list[tuple[str, list[dict[str, Any]]]],
) -> Practice:
    """A tenant with one location (America/Chicago), a client token (6 h) with `scopes`,
    and `batches` of (entity, rows) pushed through ingest.sync_batch, one transaction each.
    The rows must hold exactly one appointment type."""
    sessions = session_maker(database_url)
    async with unit_of_work(sessions) as session:
        tenant = await tenancy_service.create_tenant(session, TenantCreate(name=name))
        location = await tenancy_service.create_location(
            session, tenant.id, LocationCreate(name="Main", timezone=TIME_ZONE)
        )
        client = await oauth_service.create_client(
            session, tenant.id, name="bench", scopes=scopes, location_ids=None
        )
        token = (
            await oauth_service.issue_client_token(
                session, client.client, OAuthSettings(access_token_ttl_seconds=6 * 3600)
            )
        ).access_token
    for entity, rows in batches:
        async with unit_of_work(sessions, tenant.id) as session:
            now = utcnow()
            await ingest.sync_batch(
                session,
                tenant_id=tenant.id,
                location_id=location.id,
                entity=entity,
                rows=rows,
                watermark=now,
                now=now,
            )
    async with sessions() as session:
        type_id = (await session.execute(text("SELECT id FROM appointment_types"))).scalar_one()
    return Practice(tenant.id, location.id, token, type_id)
