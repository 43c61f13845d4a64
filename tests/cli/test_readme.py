"""The README's configuration table lists every setting, and its two commands stay the
ones that work on a fresh machine."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from api.core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
CONVENTIONAL = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        if name in CONVENTIONAL:
            names.append(CONVENTIONAL[name])
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names += [f"CHAIRFILL_{name}__{sub}".upper() for sub in field.annotation.model_fields]
        else:
            names.append(f"CHAIRFILL_{name}".upper())
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [name for name in env_names() if f"| `{name}` |" not in README]
    assert missing == []


def test_the_fresh_machine_commands() -> None:
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/chairfill up" in README
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest" in README
    )
