"""Engines, sessions and the tenant wall.

A request, job or CLI command works inside one *unit of work*: one session, one
transaction, committed once at the end (services never commit). A tenant unit of work
switches, for its transaction only, to the `chairfill_app` role and sets
`app.tenant_id`, so PostgreSQL's row-level security policies hide every other tenant's
rows even if a query forgets its filter. System units of work (token look-ups, the
reconciler's fan-out, migrations) run as the connecting role and see everything.

Work to do after the commit (jobs to push to Redis) is collected on the session and run
only once the commit succeeded, so a rolled-back transaction enqueues nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

APP_ROLE = "chairfill_app"

AfterCommit = Callable[[], Awaitable[Any]]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    """`postgresql://...` (what people paste) -> the asyncpg dialect URL."""
    u = make_url(url)
    return u.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def new_engine(database_url: str) -> AsyncEngine:
    """An engine of its own (each app instance owns one and disposes it at shutdown)."""
    engine = create_async_engine(
        async_url(database_url),
        # Connections kept open for reuse. With 10, a process serving 16 requests at once
        # closed and reopened overflow connections continuously (a Postgres backend started
        # per request beyond the tenth: bench/booking/slots.py at 16 in flight went from
        # 297 to 330 req/s and its p99 from 178 to 76 ms at 20). Opened only when needed.
        pool_size=20,
        max_overflow=20,
        # Liveness is checked on checkout without a round trip (`_discard_closed`); the
        # pre-ping would cost three (BEGIN, an empty query, ROLLBACK) on every checkout.
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "chairfill"}},
    )
    discard_closed_connections(engine)
    return engine


def discard_closed_connections(engine: AsyncEngine) -> None:
    """Check each pooled connection's liveness on checkout, for free (`_discard_closed`)."""
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed)


def _discard_closed(
    dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """Hand out no pooled connection the server has closed (a restart, a terminated
    backend, an idle timeout). asyncpg keeps reading every idle connection, so the server's
    goodbye has already marked it closed by the time it is checked out; the pool then
    discards it and connects afresh, as it does after a failed pre-ping."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


@lru_cache(maxsize=8)
def get_engine(database_url: str) -> AsyncEngine:
    """A shared engine per URL for one-loop programs (CLI commands, tests, workers)."""
    return new_engine(database_url)


@lru_cache(maxsize=8)
def get_sync_engine(database_url: str) -> Engine:
    # The OAuth authorization server (Authlib) calls back synchronously; it runs in a
    # thread with its own small pool.
    return create_engine(sync_url(database_url), pool_size=5, max_overflow=5, pool_pre_ping=True)


def session_maker(database_url: str) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(get_engine(database_url), expire_on_commit=False)


def sync_session_maker(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(get_sync_engine(database_url), expire_on_commit=False)


_ENTER_TENANT = text(
    "SELECT set_config('role', :role, true), set_config('app.tenant_id', :tenant, true)"
)


@event.listens_for(Session, "after_begin")
def _enter_tenant_on_begin(session: Session, _transaction: Any, connection: Connection) -> None:
    # Every transaction a tenant session begins is narrowed again, so a commit in the
    # middle of a unit of work cannot silently drop the wall.
    tenant_id = session.info.get("tenant_id")
    if tenant_id is not None:
        connection.execute(_ENTER_TENANT, {"role": APP_ROLE, "tenant": tenant_id})


def bind_tenant(session: AsyncSession | Session, tenant_id: str) -> None:
    """Narrow this session's transactions to one tenant (second wall: row-level security).

    Call before the session's first statement."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    if sync.in_transaction():
        raise RuntimeError("bind_tenant must be called before the session's first statement")
    sync.info["tenant_id"] = tenant_id


def after_commit(session: AsyncSession | Session, callback: AfterCommit) -> None:
    """Run `callback` only if and after this session's transaction commits."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    sync.info.setdefault("after_commit", []).append(callback)


async def commit(session: AsyncSession) -> None:
    """Commit the unit of work, then run what was waiting for the commit."""
    await session.commit()
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        await callback()


async def rollback(session: AsyncSession) -> None:
    session.info.pop("after_commit", None)
    await session.rollback()


@asynccontextmanager
async def unit_of_work(
    maker: async_sessionmaker[AsyncSession], tenant_id: str | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success (then after-commit work), roll back on error.

    With `tenant_id`, the transaction runs behind row-level security for that tenant;
    without it, it is a system unit of work.
    """
    async with maker() as session:
        try:
            if tenant_id is not None:
                bind_tenant(session, tenant_id)
            yield session
        except BaseException:
            await rollback(session)
            raise
        else:
            await commit(session)


@asynccontextmanager
async def single_read(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A system session for one read statement, run outside any transaction (autocommit):
    a single SELECT sees one snapshot anyway, and skipping BEGIN and COMMIT saves two
    round trips on paths every request takes (credential look-ups). Nothing written here
    would be committed as a unit: use `unit_of_work` for anything else."""
    async with maker() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
