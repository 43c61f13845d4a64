"""Endpoint secrets (`whsec_` + base64 of 24 random bytes), kept encrypted at rest, and the
Standard Webhooks headers of one attempt."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_endpoint_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    # A key of its own, derived from the app secret: rotating what signs sessions does not
    # have to be the same decision as what encrypts webhook secrets, but both follow it.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"chairfill webhook secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(secret_key: str, secret: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def decrypt_secret(secret_key: str, ciphertext: str) -> str:
    return _fernet(secret_key).decrypt(ciphertext.encode()).decode()


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def signature_headers(
    webhook_id: str, timestamp: datetime, body: str, secrets_: Sequence[str]
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and one `v1,` signature per valid secret."""
    signatures = " ".join(_signer(s).sign(webhook_id, timestamp, body) for s in secrets_)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
