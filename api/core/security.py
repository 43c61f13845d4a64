"""Hashing of secrets and passwords."""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_passwords = PasswordHasher()


def hash_token(value: str) -> str:
    """SHA-256 of a long random credential (tokens, client secrets, codes)."""
    return hashlib.sha256(value.encode()).hexdigest()


def token_matches(value: str, stored_hash: str | None) -> bool:
    return stored_hash is not None and hmac.compare_digest(hash_token(value), stored_hash)


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password: str, stored_hash: str) -> bool:
    try:
        return _passwords.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
