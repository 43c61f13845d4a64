"""Opaque, type-prefixed ids (`loc_01J...`): sortable by creation, readable in logs."""

from __future__ import annotations

import secrets

from ulid import ULID

PREFIXES = {
    "tenant": "ten",
    "location": "loc",
    "staff_user": "usr",
    "oauth_client": "cli",
    "oauth_token": "tok",
    "authorization_code": "acd",
    "publishable_key": "pkr",
    "job": "job",
}


def new_id(kind: str) -> str:
    return f"{PREFIXES[kind]}_{str(ULID()).lower()}"


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """A credential: prefix (so secret scanners can spot it) plus URL-safe randomness."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
