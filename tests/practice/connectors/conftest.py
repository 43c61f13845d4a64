"""A real Open Dental-shaped database on the machine's MariaDB: one database of our own
per test worker, tables rebuilt for each test. It is named after the run's own Postgres
test database (CHAIRFILL_TEST_DB) and the worker, so checkouts testing side by side on one
MariaDB never share one, and a database a killed run left behind is dropped next time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from api.practice.connectors.opendental_schema import TABLES, create_statements
from tests.support.servers import worker_index

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@pytest.fixture(scope="session")
def od_server_database() -> Iterator[str]:
    name = f"od_{os.environ.get('CHAIRFILL_TEST_DB', 'chairfill_test')}_{worker_index()}"
    try:
        admin = pymysql.connect(**MARIADB, connect_timeout=3, autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB does not answer at 127.0.0.1:3306 ({exc})")
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


OdExecute = Callable[..., None]


@pytest.fixture
def od(od_server_database: str) -> Iterator[tuple[str, OdExecute]]:
    """(dsn, execute): an empty Open Dental schema, and a way to write rows into it."""
    connection = pymysql.connect(**MARIADB, database=od_server_database, autocommit=True)
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in create_statements():
            cursor.execute(statement)

    def execute(sql: str, *rows: tuple[Any, ...]) -> None:
        with connection.cursor() as cursor:
            if rows:
                cursor.executemany(sql, rows)
            else:
                cursor.execute(sql)

    yield f"mysql://root@127.0.0.1:3306/{od_server_database}", execute
    connection.close()


# The scheduled-sync test runs the real worker (tests/workers' fixtures).
from tests.workers.conftest import run_burst, worker_context  # noqa: E402, F401
