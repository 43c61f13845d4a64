"""The `chairfill` command.

chairfill up                 embedded PostgreSQL + Redis (unless configured), API, workers
chairfill serve | worker     the API or the workers alone (configured servers)
chairfill migrate            run the Alembic migrations
chairfill openapi [--check]  write (or check) openapi/openapi.json and schema.graphql
chairfill tenants|locations|clients|users|keys create ...
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.cli import admin, practice_data
from api.cli.common import database, fail, load_settings, state
from api.cli.up import up
from api.core.jobs import QUEUES
from api.core.migrate import upgrade

app = typer.Typer(
    name="chairfill",
    help="Chairfill: the API between dental practice management systems and the tools "
    "that talk to patients.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.tenants, name="tenants")
app.add_typer(admin.locations, name="locations")
app.add_typer(admin.clients, name="clients")
app.add_typer(admin.users, name="users")
app.add_typer(admin.keys, name="keys")
app.command()(up)
app.command()(practice_data.demo)
app.add_typer(practice_data.sync, name="sync")


@app.callback()
def main(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Embedded servers' data (used when DATABASE_URL/REDIS_URL are not set).",
        ),
    ] = None,
) -> None:
    state.data_dir = data_dir


def _require_servers() -> None:
    settings = load_settings()
    if not settings.database_url or not settings.redis_url:
        fail(
            "DATABASE_URL and REDIS_URL are not set. Set them, or run `chairfill up`, which "
            "starts embedded PostgreSQL and Redis."
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """The API alone (uvicorn), against DATABASE_URL and REDIS_URL."""
    _require_servers()
    import uvicorn

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, proxy_headers=True)


@app.command()
def worker(
    queue: Annotated[
        list[str] | None, typer.Option("--queue", help=f"One of {', '.join(QUEUES)}; repeatable.")
    ] = None,
) -> None:
    """The arq workers (default: every queue), against DATABASE_URL and REDIS_URL."""
    unknown = sorted(set(queue or []) - set(QUEUES))
    if unknown:
        fail(f"unknown queue {', '.join(unknown)}; queues are {', '.join(QUEUES)}")
    _require_servers()
    arguments = [sys.executable, "-m", "workers"]
    for name in queue or []:
        arguments += ["--queue", name]
    # The workers run as their own program: the API package never imports them.
    os.execv(sys.executable, arguments)  # noqa: S606


@app.command()
def migrate() -> None:
    """Run the migrations (on the embedded PostgreSQL when DATABASE_URL is not set)."""
    settings = load_settings()
    with database(settings) as url:
        if settings.database_url:
            upgrade(url)
    typer.echo("The database is at the latest migration.")


@app.command()
def openapi(
    check: Annotated[
        bool, typer.Option("--check", help="Fail when the committed files are out of date.")
    ] = False,
    root: Annotated[Path, typer.Option(help="The repository root.")] = Path(),
) -> None:
    """Write openapi/openapi.json and openapi/schema.graphql from the app's code."""
    from api.openapi_export import check_schemas, write_schemas

    if check:
        drifted = check_schemas(root)
        if drifted:
            fail(f"out of date: {', '.join(str(p) for p in drifted)}; run `chairfill openapi`")
        typer.echo("openapi/ is up to date.")
        return
    written = write_schemas(root)
    typer.echo(f"Wrote {', '.join(str(p) for p in written)}" if written else "Nothing changed.")
