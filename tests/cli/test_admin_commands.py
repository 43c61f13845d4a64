"""`chairfill tenants|locations|clients|users|keys create` against the real test database."""

from __future__ import annotations

import asyncio
import hashlib

import psycopg
import pytest

from api.auth.scopes import ALL_SCOPES
from api.core.db import unit_of_work
from api.core.security import token_matches
from api.oauth2 import repository as oauth_repository
from api.oauth2 import service as oauth_service
from tests.support.servers import TestServers


def query(servers: TestServers, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(servers.database_url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def practice_ids(chairfill_json) -> dict[str, str]:
    tenant = chairfill_json("tenants", "create", "Bright Smiles Dental")
    location = chairfill_json(
        "locations",
        "create",
        "Main Street",
        "--tenant",
        tenant["id"],
        "--timezone",
        "America/Chicago",
    )
    return {"tenant": tenant["id"], "location": location["id"]}


def test_tenant_and_location_create(chairfill_json, servers: TestServers) -> None:
    tenant = chairfill_json("tenants", "create", "Lakeside Dental Group", "--kind", "dso")
    assert tenant["id"].startswith("ten_") and tenant["kind"] == "dso"

    location = chairfill_json(
        "locations",
        "create",
        "Lakeside",
        "--tenant",
        tenant["id"],
        "--timezone",
        "America/New_York",
        "--sms-registered",
    )

    assert location["tenant_id"] == tenant["id"]
    assert location["timezone"] == "America/New_York"
    assert location["sms_registration_complete"] is True
    assert query(servers, "SELECT name, kind FROM tenants WHERE id = %s", tenant["id"]) == [
        ("Lakeside Dental Group", "dso")
    ]


def test_client_secret_is_shown_once_and_stored_hashed(
    chairfill_json, practice_ids, servers: TestServers
) -> None:
    client = chairfill_json(
        "clients",
        "create",
        "--tenant",
        practice_ids["tenant"],
        "--scope",
        "communications:review",
        "--scope",
        "schedule:read",
        "--location",
        practice_ids["location"],
        "--name",
        "Recall reminders",
    )

    secret = client["client_secret"]
    assert client["client_id"] == client["id"] and secret.startswith("cfcs_")
    assert client["scopes"] == ["communications:review", "schedule:read"]
    assert client["grant_types"] == ["client_credentials"]
    [(stored_hash, scopes, locations)] = query(
        servers,
        "SELECT secret_hash, scopes, location_ids FROM oauth_clients WHERE id = %s",
        client["client_id"],
    )
    assert stored_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert scopes == ["communications:review", "schedule:read"]
    assert locations == [practice_ids["location"]]
    # The secret itself is nowhere in the table.
    assert query(
        servers,
        "SELECT count(*) FROM oauth_clients WHERE oauth_clients::text LIKE %s",
        f"%{secret}%",
    ) == [(0,)]


def test_client_with_redirect_uri_gets_the_authorization_code_grant(
    chairfill_json, practice_ids
) -> None:
    client = chairfill_json(
        "clients",
        "create",
        "--tenant",
        practice_ids["tenant"],
        "--scope",
        "communications:manage",
        "--redirect-uri",
        "https://partner.example/callback",
    )
    assert client["grant_types"] == ["client_credentials", "authorization_code", "refresh_token"]
    assert client["redirect_uris"] == ["https://partner.example/callback"]


def test_staff_user_gets_rights_per_location(chairfill_json, practice_ids, servers) -> None:
    user = chairfill_json(
        "users",
        "create",
        "--tenant",
        practice_ids["tenant"],
        "--email",
        "Dana@Example.com",
        "--name",
        "Dana Front Desk",
        "--password-stdin",
        "--right",
        f"{practice_ids['location']}=communications:review,communications:manage",
        input="correct horse battery staple\n",
    )

    assert user["email"] == "dana@example.com"
    assert user["rights"] == {
        practice_ids["location"]: ["communications:manage", "communications:review"]
    }
    [(password_hash,)] = query(
        servers, "SELECT password_hash FROM staff_users WHERE id = %s", user["id"]
    )
    assert password_hash.startswith("$argon2") and "horse" not in password_hash


def test_publishable_key(chairfill_json, practice_ids) -> None:
    key = chairfill_json(
        "keys",
        "create",
        "--tenant",
        practice_ids["tenant"],
        "--location",
        practice_ids["location"],
        "--origin",
        "https://brightsmiles.example/",
    )
    assert key["key"].startswith("pk_") and key["id"].startswith("pkr_")
    assert key["allowed_origins"] == ["https://brightsmiles.example"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("locations", "create", "X", "--tenant", "ten_nope", "--timezone", "America/Chicago"),
            "There is no tenant ten_nope.",
        ),
        (
            ("clients", "create", "--tenant", "ten_nope", "--scope", "schedule:read"),
            "There is no tenant ten_nope.",
        ),
        (("tenants", "create", "X", "--kind", "chain"), "--kind must be practice or dso"),
    ],
)
def test_bad_input_is_one_clear_line(chairfill, args, message) -> None:
    result = chairfill(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_bad_timezone_scope_location_right_and_origin(chairfill, practice_ids, servers) -> None:
    tenant, location = practice_ids["tenant"], practice_ids["location"]
    cases = [
        (
            ("locations", "create", "Moon Base", "--tenant", tenant, "--timezone", "Mars/Olympus"),
            "timezone",
        ),
        (
            ("clients", "create", "--tenant", tenant, "--scope", "patients:delete"),
            "Unknown scopes: patients:delete",
        ),
        (
            (
                "clients",
                "create",
                "--tenant",
                tenant,
                "--scope",
                "schedule:read",
                "--location",
                "loc_elsewhere",
            ),
            "loc_elsewhere",
        ),
        (
            (
                "keys",
                "create",
                "--tenant",
                tenant,
                "--location",
                location,
                "--origin",
                "brightsmiles",
            ),
            "--origin must look like",
        ),
        (
            (
                "users",
                "create",
                "--tenant",
                tenant,
                "--email",
                "a@example.com",
                "--name",
                "A",
                "--password-stdin",
                "--right",
                f"{location}=teeth:whiten",
            ),
            "Unknown rights",
        ),
        (
            (
                "users",
                "create",
                "--tenant",
                tenant,
                "--email",
                "a@example.com",
                "--name",
                "A",
                "--password-stdin",
                "--right",
                location,
            ),
            "LOCATION_ID=RIGHT",
        ),
    ]
    for args, message in cases:
        result = chairfill(*args, input="correct horse battery staple\n")
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    # Nothing half-written: only the fixture's location and no clients, keys or users.
    assert query(servers, "SELECT count(*) FROM locations") == [(1,)]
    for table in ("oauth_clients", "publishable_keys", "staff_users"):
        assert query(servers, f"SELECT count(*) FROM {table}") == [(0,)]


async def test_created_client_authenticates_and_calls_the_api(
    chairfill_json, sessions, settings, client
) -> None:
    # The CLI runs its own event loop; keep it off the test's loop.
    tenant = await asyncio.to_thread(chairfill_json, "tenants", "create", "Bright Smiles")
    created = await asyncio.to_thread(
        chairfill_json, "clients", "create", "--tenant", tenant["id"], "--scope", *ALL_SCOPES[:1]
    )

    async with unit_of_work(sessions) as session:
        stored = await oauth_repository.client_by_id_any_tenant(session, created["client_id"])
        assert stored is not None
        assert token_matches(created["client_secret"], stored.secret_hash)
        minted = await oauth_service.issue_client_token(session, stored, settings.oauth)

    response = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {minted.access_token}"}
    )
    assert response.status_code == 200
    assert response.json()["client_id"] == created["client_id"]
    assert response.json()["scopes"] == [ALL_SCOPES[0]]
