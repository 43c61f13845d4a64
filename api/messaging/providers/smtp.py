"""Email over SMTP (aiosmtplib): multipart/alternative text + HTML, with RFC 8058
one-click unsubscribe headers."""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Literal

import aiosmtplib

from api.messaging.providers.base import ChannelProvider, OutboundMessage, ProviderResult

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    from_address: str
    from_name: str | None = None
    reply_to: str | None = None
    username: str | None = None
    password: str | None = None
    security: Security = "starttls"


def build_email(config: SmtpConfig, message: OutboundMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = formataddr((config.from_name or "", config.from_address))
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    domain = config.from_address.rpartition("@")[2] or "chairfill.local"
    email["Message-ID"] = f"<{message.message_id}@{domain}>"
    if config.reply_to:
        email["Reply-To"] = config.reply_to
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


@functools.cache
def local_hostname() -> str:
    """Our name in EHLO. aiosmtplib looks it up (a blocking getfqdn) on every connection
    unless told; it does not change while the process runs."""
    return socket.getfqdn()


class SmtpProvider(ChannelProvider):
    kind = "smtp"

    def __init__(self, config: SmtpConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout

    async def send(self, message: OutboundMessage) -> ProviderResult:
        email = build_email(self.config, message)
        config = self.config
        try:
            await aiosmtplib.send(
                email,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                timeout=self.timeout,
                local_hostname=local_hostname(),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            return ProviderResult(None, "failed", f"recipient refused: {refused}")
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx: the server asks us to try again later; 5xx: it will not take it.
            return ProviderResult(
                None, "failed", f"SMTP {exc.code}: {exc.message}", retryable=exc.code < 500
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return ProviderResult(None, "failed", f"SMTP unavailable: {exc}", retryable=True)
        return ProviderResult(str(email["Message-ID"]), "sent")
