"""Running the Alembic migrations from code (CLI, `chairfill up`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

_SOURCE_ROOT = Path(__file__).resolve().parents[2]
# A checkout has alembic/ beside api/; an installed package (the Docker image) finds
# alembic.ini and alembic/ in the working directory instead.
ROOT = _SOURCE_ROOT if (_SOURCE_ROOT / "alembic.ini").exists() else Path.cwd()


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
