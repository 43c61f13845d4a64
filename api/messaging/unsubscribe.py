"""One-click unsubscribe links: a token naming the tenant, the patient and the channel,
signed with a key derived from CHAIRFILL_SECRET_KEY. The same inputs give the same token,
so a link in an old email keeps working and a retried send carries the same header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from api.core.settings import Settings

_INFO = b"chairfill unsubscribe links"


@dataclass(frozen=True)
class UnsubscribeTarget:
    tenant_id: str
    patient_id: str
    channel: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, payload: str) -> str:
    key = hmac.new(secret_key.encode(), _INFO, hashlib.sha256).digest()
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:18])


def make_token(secret_key: str, target: UnsubscribeTarget) -> str:
    payload = _b64(json.dumps([target.tenant_id, target.patient_id, target.channel]).encode())
    return f"{payload}.{_mac(secret_key, payload)}"


def read_token(secret_key: str, token: str) -> UnsubscribeTarget | None:
    payload, _, mac = token.partition(".")
    # compare_digest refuses non-ASCII text; a token with any is forged anyway.
    if (
        not payload
        or not token.isascii()
        or not hmac.compare_digest(mac, _mac(secret_key, payload))
    ):
        return None
    try:
        tenant_id, patient_id, channel = json.loads(_unb64(payload))
    except ValueError:
        return None
    return UnsubscribeTarget(str(tenant_id), str(patient_id), str(channel))


def public_base(settings: Settings) -> str:
    return settings.public_url.rstrip("/") or "http://localhost:8000"


def unsubscribe_url(settings: Settings, target: UnsubscribeTarget) -> str:
    token = make_token(settings.secret_key, target)
    return f"{public_base(settings)}/v1/messaging/unsubscribe/{token}"


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 + RFC 8058: mail apps show an unsubscribe button that POSTs to `url`."""
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
