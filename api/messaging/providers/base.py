"""One base class per capability: a channel provider sends one message and says what
happened. Each vendor is one module (smtp, twilio, sandbox); tests swap the vendor for a
local server behind the same interface, never a stub of ours."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

ProviderStatus = Literal["sent", "delivered", "failed"]


@dataclass(frozen=True)
class OutboundMessage:
    message_id: str
    channel: Literal["sms", "email"]
    to: str
    body_text: str
    subject: str | None = None
    body_html: str | None = None
    # Email: List-Unsubscribe and friends.
    headers: dict[str, str] = field(default_factory=dict)
    # SMS: where the provider reports delivery.
    status_callback_url: str | None = None


@dataclass(frozen=True)
class ProviderResult:
    provider_message_id: str | None
    status: ProviderStatus
    error: str | None = None
    # A failure worth trying again later (timeouts, 4xx SMTP replies, HTTP 429/5xx).
    retryable: bool = False


class ChannelProvider(ABC):
    kind: ClassVar[str]

    @abstractmethod
    async def send(self, message: OutboundMessage) -> ProviderResult:
        """Hand the message to the vendor. Never raises for a vendor's refusal or outage:
        those are results (failed, maybe retryable)."""
