"""Alembic runs with the same database URL the app uses (settings or the embedded server).

`chairfill migrate` passes the URL in `config.attributes["database_url"]`."""

from __future__ import annotations

from sqlalchemy import create_engine, pool

from alembic import context
from api.core.all_models import Tenant  # noqa: F401  (fills Base.metadata)
from api.core.db import Base, sync_url
from api.core.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or get_settings().database_url
    if not url:
        raise SystemExit(
            "No database: set DATABASE_URL or run `chairfill migrate` (embedded default)"
        )
    return sync_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
