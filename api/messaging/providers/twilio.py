"""SMS through Twilio's Messages API (or anything that speaks it: the base URL is per
tenant). Delivery reports come back to /v1/messaging/twilio/status, signed with the
account's auth token (verified with the `twilio` library's RequestValidator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from twilio.request_validator import RequestValidator

from api.messaging.providers.base import ChannelProvider, OutboundMessage, ProviderResult

TWILIO_API = "https://api.twilio.com"
# Twilio's message states, and what they mean for our ledger.
STATUS_MAP = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str = TWILIO_API


def signature_is_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


class TwilioProvider(ChannelProvider):
    kind = "twilio"

    def __init__(
        self, config: TwilioConfig, timeout: float, client: httpx.AsyncClient | None = None
    ) -> None:
        self.config = config
        self.timeout = timeout
        # A batch shares one client: building one (its TLS context) costs more than a
        # loopback request; a lone send makes its own.
        self.client = client

    def messages_url(self) -> str:
        base = self.config.base_url.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"

    async def send(self, message: OutboundMessage) -> ProviderResult:
        config = self.config
        form = {"To": message.to, "Body": message.body_text}
        if config.messaging_service_sid:
            form["MessagingServiceSid"] = config.messaging_service_sid
        elif config.from_number:
            form["From"] = config.from_number
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        auth = (config.account_sid, config.auth_token)
        try:
            if self.client is not None:
                response = await self.client.post(
                    self.messages_url(), data=form, auth=auth, timeout=self.timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(self.messages_url(), data=form, auth=auth)
        except httpx.HTTPError as exc:
            return ProviderResult(None, "failed", f"Twilio unreachable: {exc}", retryable=True)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            detail = f"Twilio {response.status_code}"
            if isinstance(body, dict) and body.get("code"):
                detail += f" (error {body['code']}: {body.get('message', '')})"
            retryable = response.status_code == 429 or response.status_code >= 500
            return ProviderResult(None, "failed", detail, retryable=retryable)
        sid = body.get("sid") if isinstance(body, dict) else None
        status = STATUS_MAP.get(str(body.get("status", "queued")), "sent")
        if status == "failed":
            return ProviderResult(sid, "failed", f"Twilio error {body.get('error_code')}")
        return ProviderResult(sid, "sent" if status == "sent" else "delivered")
