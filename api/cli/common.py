"""What every `chairfill` command shares: the settings, a database (configured or the
embedded one), one unit of work per command, and errors printed as one clear line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.core.db import new_engine, unit_of_work
from api.core.embedded import EmbeddedServers
from api.core.errors import Problem
from api.core.migrate import upgrade
from api.core.settings import Settings

T = TypeVar("T")


class State:
    """Options given before the command (`chairfill --data-dir D tenants create ...`)."""

    data_dir: Path | None = None


state = State()


def load_settings() -> Settings:
    # Read afresh per command (not the cached get_settings()): tests change the env.
    try:
        return Settings()
    except ValidationError as exc:
        fail(describe_validation_error(exc))


def data_dir(settings: Settings, override: Path | None = None) -> Path:
    return override or state.data_dir or settings.data_dir


def fail(message: str) -> NoReturn:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    """Exactly one JSON object with --json, else a short human line."""
    typer.echo(json.dumps(payload) if as_json else human)


def describe_problem(problem: Problem) -> str:
    message = problem.detail or problem.title
    fields = [f"{e.field}: {e.message}" for e in problem.errors]
    return message if not fields or message.endswith(".") else f"{message} ({'; '.join(fields)})"


def describe_validation_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}" for err in exc.errors()
    )


@contextmanager
def database(settings: Settings, directory: Path | None = None) -> Iterator[str]:
    """The configured DATABASE_URL, or the embedded PostgreSQL in the data dir (started,
    migrated, and stopped again afterwards unless `chairfill up` also holds it)."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedServers(data_dir(settings, directory)).start(redis=False)
    try:
        upgrade(embedded.database_url)
        yield embedded.database_url
    finally:
        embedded.stop()


def run_unit_of_work(
    database_url: str,
    work: Callable[[AsyncSession], Awaitable[T]],
    tenant_id: str | None = None,
) -> T:
    """Run `work` in one unit of work (tenant-bound when `tenant_id` is given) on an engine
    of its own, so every command starts and ends clean."""

    async def main() -> T:
        engine = new_engine(database_url)
        try:
            maker = async_sessionmaker(engine, expire_on_commit=False)
            async with unit_of_work(maker, tenant_id) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except Problem as problem:
        fail(describe_problem(problem))
    except ValidationError as exc:
        fail(describe_validation_error(exc))
    except (OSError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        fail(f"the database refused the command: {reason}")
