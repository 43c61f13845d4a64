"""Email over SMTP (aiosmtplib): multipart/alternative text + HTML, with RFC 8058
one-click unsubscribe headers, over persistent connections.

A connection per message (connect, EHLO, maybe STARTTLS and AUTH, then QUIT) costs
several round trips and a TLS handshake; at campaign volume that is most of the
time. Each tenant's SMTP settings get a bounded pool of open connections in the
process (`SmtpPool`), reused across messages and batches: a connection idle for a
while is checked with NOOP before use, a failed transaction is cleared with RSET, and
a connection the server dropped (or closed with 421) is replaced and the message
tried once more on a fresh one, which is safe because the server had taken nothing
yet. Each message carries its Message-ID, the idempotency key that lets a server
recognise a message handed over twice (a worker killed between the provider's 250
and our commit)."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Hashable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Literal

import aiosmtplib

from api.messaging.providers.base import ChannelProvider, OutboundMessage, ProviderResult
from api.messaging.providers.mime import email_bytes
from api.messaging.providers.pools import loop_pools

Security = Literal["none", "starttls", "tls"]
# Open connections per tenant's SMTP settings in one process: what a provider's
# submission server usually allows one client at once.
POOL_SIZE = 8
# An idle connection older than this is asked NOOP before it carries a message (servers
# close idle clients after a few minutes; a dead one is replaced, not failed on).
CHECK_AFTER_IDLE_SECONDS = 30.0


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


def message_id_header(config: SmtpConfig, message: OutboundMessage) -> str:
    domain = config.from_address.rpartition("@")[2] or "chairfill.local"
    return f"<{message.message_id}@{domain}>"


def build_email(config: SmtpConfig, message: OutboundMessage) -> EmailMessage:
    """The message as an `EmailMessage` (what `email_bytes` must agree with)."""
    email = EmailMessage()
    email["From"] = formataddr((config.from_name or "", config.from_address))
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = message_id_header(config, message)
    if config.reply_to:
        email["Reply-To"] = config.reply_to
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def render_email(config: SmtpConfig, message: OutboundMessage) -> bytes:
    return email_bytes(
        message_id=message_id_header(config, message),
        from_address=config.from_address,
        from_name=config.from_name,
        reply_to=config.reply_to,
        to=message.to,
        subject=message.subject or "",
        text=message.body_text,
        html=message.body_html or None,
        headers=message.headers,
    )


@functools.cache
def local_hostname() -> str:
    """Our name in EHLO. aiosmtplib looks it up (a blocking getfqdn) on every connection
    unless told; it does not change while the process runs."""
    return socket.getfqdn()


class _Stale(Exception):
    """A reused connection turned out closed before the server took anything."""


class SmtpPool:
    """Up to `size` open connections to one server with one set of credentials."""

    def __init__(self, config: SmtpConfig, timeout: float, size: int = POOL_SIZE) -> None:
        self.config = config
        self.timeout = timeout
        self._slots = asyncio.Semaphore(size)
        # (connection, when it was last used), most recently used last.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            timeout=self.timeout,
            local_hostname=local_hostname(),
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        return client

    async def _take(self) -> tuple[aiosmtplib.SMTP, bool]:
        """An open connection, and whether it was reused."""
        while self._idle:
            client, used_at = self._idle.pop()
            if not client.is_connected:
                continue
            if time.monotonic() - used_at > CHECK_AFTER_IDLE_SECONDS:
                try:
                    await client.noop(timeout=self.timeout)
                except (aiosmtplib.SMTPException, OSError):
                    _drop(client)
                    continue
            return client, True
        return await self._connect(), False

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        """One SMTP transaction; raises aiosmtplib's errors (or TimeoutError)."""
        async with self._slots:
            client, reused = await self._take()
            try:
                async with asyncio.timeout(self.timeout):
                    try:
                        await self._transaction(client, reused, sender, recipient, data)
                    except _Stale:
                        _drop(client)
                        client = await self._connect()
                        await self._transaction(client, False, sender, recipient, data)
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 421 or not await _reset(client):
                    _drop(client)
                else:
                    self._idle.append((client, time.monotonic()))
                raise
            except BaseException:
                # A timeout or a broken connection: its state is unknown, it goes.
                _drop(client)
                raise
            self._idle.append((client, time.monotonic()))

    @staticmethod
    async def _transaction(
        client: aiosmtplib.SMTP, reused: bool, sender: str, recipient: str, data: bytes
    ) -> None:
        # Timeouts come from the one deadline around the whole transaction: a per-command
        # timeout costs a task per reply in aiosmtplib.
        try:
            await client.mail(sender, timeout=None)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            if reused:
                raise _Stale from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if reused and exc.code == 421:
                raise _Stale from exc
            raise
        await client.rcpt(recipient, timeout=None)
        await client.data(data, timeout=None)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit(timeout=2)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                _drop(client)


def _drop(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        client.close()


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """Clear a refused transaction (RSET) so the connection can carry the next one."""
    try:
        await client.rset(timeout=5)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        return False
    return True


def pool_for(tenant_id: str | None, config: SmtpConfig, timeout: float) -> SmtpPool:
    """The process's pool for this tenant and these settings (a settings change makes a
    new pool; the old one is closed once it falls out of use)."""
    key: Hashable = ("smtp", tenant_id, config, timeout)
    return loop_pools().get(key, lambda: SmtpPool(config, timeout))


class SmtpProvider(ChannelProvider):
    kind = "smtp"

    def __init__(self, config: SmtpConfig, timeout: float, tenant_id: str | None = None) -> None:
        self.config = config
        self.timeout = timeout
        self.tenant_id = tenant_id

    async def send(self, message: OutboundMessage) -> ProviderResult:
        data = render_email(self.config, message)
        pool = pool_for(self.tenant_id, self.config, self.timeout)
        try:
            await pool.send(self.config.from_address, message.to, data)
        except aiosmtplib.SMTPRecipientRefused as exc:
            return ProviderResult(None, "failed", f"recipient refused: {exc.code} {exc.message}")
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx: the server asks us to try again later; 5xx: it will not take it.
            return ProviderResult(
                None, "failed", f"SMTP {exc.code}: {exc.message}", retryable=exc.code < 500
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return ProviderResult(None, "failed", f"SMTP unavailable: {exc}", retryable=True)
        return ProviderResult(message_id_header(self.config, message), "sent")
