from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from api.cli import app
from tests.practice.connectors.test_opendental import seed
from tests.practice.connectors.test_opendental_accounts import seed_accounts


def query(servers, sql: str) -> list[tuple]:
    with psycopg.connect(servers.database_url.replace("+psycopg", "")) as connection:
        return connection.execute(sql).fetchall()


def invoke(servers, *args: str):
    env = {"DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}
    return CliRunner().invoke(app, list(args), env=env)


def test_sync_opendental_runs_once_and_prints_counts(od, practice, servers):
    dsn, execute = od
    seed(execute)
    seed_accounts(execute)
    location = practice.locations[0].id
    result = invoke(servers, "sync", "opendental", "--location", location, "--dsn", dsn, "--save")
    assert result.exit_code == 0, result.output
    assert "patients" in result.stdout and "procedures" in result.stdout
    # (An 80-column terminal shortens the longer entity names, e.g. "communicatio…".)
    assert "│ ledger " in result.stdout and "│ opt-outs " in result.stdout
    assert query(servers, "SELECT count(*) FROM patients") == [(4,)]
    # The accounts, contacts and opt-outs come along in the same run.
    assert query(servers, "SELECT external_id, in_collections FROM ledger_balances ORDER BY 1") == [
        ("10", True),
        ("12", False),
    ]
    assert query(servers, "SELECT count(*) FROM communication_log") == [(4,)]
    assert query(servers, "SELECT count(*) FROM opt_outs") == [(4,)]
    # The stored (encrypted) DSN is used when none is given.
    again = invoke(servers, "sync", "opendental", "--location", location)
    assert again.exit_code == 0, again.output
    missing = invoke(servers, "sync", "opendental", "--location", "loc_nope", "--dsn", dsn)
    assert missing.exit_code == 1 and "no location" in missing.output


def test_demo_command_builds_a_practice(servers, practice):
    result = invoke(servers, "demo", "--patients", "400", "--locations", "2", "--seed", "9")
    assert result.exit_code == 0, result.output
    assert "patients" in result.stdout
    counts = query(servers, "SELECT count(*) FROM patients GROUP BY location_id")
    assert counts == [(200,), (200,)]
    tenant = practice.tenant.id
    into_existing = invoke(servers, "demo", "--patients", "50", "--tenant", tenant)
    assert into_existing.exit_code == 0, into_existing.output
    again = invoke(servers, "demo", "--patients", "50", "--tenant", tenant)
    assert again.exit_code == 1 and "already has patients" in again.output
