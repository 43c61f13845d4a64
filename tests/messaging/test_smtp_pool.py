"""The SMTP provider's wire format and its pooled connections, against a real aiosmtpd
server on loopback.

* the bytes `email_bytes` writes parse to the same message as the standard library's
  `EmailMessage` (hypothesis: any subject, names, text and HTML);
* messages share open connections; a connection the server dropped is replaced without
  failing the message; a refused recipient fails that message only (RSET, and the
  connection carries the next one)."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core.embedded import free_port
from api.core.ids import new_id
from api.messaging.providers.base import OutboundMessage
from api.messaging.providers.pools import close_pools
from api.messaging.providers.smtp import SmtpConfig, SmtpProvider, build_email, render_email

# Text a template can produce: any printable character, spaces and line breaks.
_printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
_text = st.text(st.one_of(_printable, st.sampled_from([" ", "\n", ".", "-"])), max_size=1500)
_line = st.text(st.one_of(_printable, st.just(" ")), max_size=200)
# In a display name Python's parser reads other spaces (no-break, em) as plain ones
# in either message; names keep to plain spaces so the comparison is about our bytes.
_name = st.text(
    st.one_of(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Zs")), st.just(" ")),
    max_size=60,
)


def _parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _parts(message: email.message.EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in message.walk()
        if not part.is_multipart()
    }


@settings(max_examples=60, deadline=None)
@given(
    subject=_line,
    # A practice's name as the API stores it: trimmed.
    from_name=st.one_of(st.none(), _name.map(str.strip).filter(bool)),
    text=_text,
    html=st.one_of(st.none(), _text),
)
def test_written_bytes_read_as_the_standard_library_message(subject, from_name, text, html):
    config = SmtpConfig(
        host="127.0.0.1",
        port=25,
        from_address="hello@brightsmiles.example",
        from_name=from_name,
        reply_to="desk@brightsmiles.example",
    )
    message = OutboundMessage(
        message_id="mes_01hx",
        channel="email",
        to="jordan@example.com",
        body_text=text,
        subject=subject,
        body_html=html,
        headers={"List-Unsubscribe": "<https://chairfill.example/v1/messaging/unsubscribe/x.y>"},
    )
    ours = _parsed(render_email(config, message))
    assert all(len(line) <= 998 for line in render_email(config, message).split(b"\r\n"))
    # Headers read back as what we meant (the standard library's own folding of long
    # encoded names is not the reference: it inserts spaces into them).
    [sender] = ours["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (from_name or "", config.from_address)
    # (Spaces at either end are not kept by any header: they fold into the separator.)
    assert str(ours["Subject"]).strip(" ") == subject.strip(" ")
    assert str(ours["To"]) == message.to and str(ours["Reply-To"]) == config.reply_to
    assert str(ours["Message-ID"]) == "<mes_01hx@brightsmiles.example>"
    assert str(ours["List-Unsubscribe"]) == message.headers["List-Unsubscribe"]
    # The body is what EmailMessage would have sent: the same parts, the same text.
    reference = _parsed(build_email(config, message).as_bytes())
    assert ours.get_content_type() == reference.get_content_type()
    assert _parts(ours) == _parts(reference)


class Server:
    """aiosmtpd on loopback, remembering each message's recipient and connection."""

    def __init__(self, refuse: str | None = None) -> None:
        self.port = free_port()
        self.refuse = refuse
        self.received: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address == self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self.received.extend((to, session.peer) for to in envelope.rcpt_tos)
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        assert self.controller is not None
        self.controller.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(refuse="nobody@example.com")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _provider(server: Server) -> SmtpProvider:
    config = SmtpConfig(
        host="127.0.0.1", port=server.port, from_address="hello@example.com", security="none"
    )
    return SmtpProvider(config, 5, tenant_id=new_id("tenant"))


def _mail(to: str) -> OutboundMessage:
    return OutboundMessage(
        message_id=new_id("message"), channel="email", to=to, body_text="Hi", subject="Hello"
    )


async def test_messages_share_one_connection(server):
    provider = _provider(server)
    try:
        for i in range(5):
            result = await provider.send(_mail(f"p{i}@example.com"))
            assert result.status == "sent"
    finally:
        await close_pools()
    assert [to for to, _ in server.received] == [f"p{i}@example.com" for i in range(5)]
    assert len({peer for _, peer in server.received}) == 1


async def test_a_connection_the_server_dropped_is_replaced_without_failing(server):
    provider = _provider(server)
    try:
        assert (await provider.send(_mail("first@example.com"))).status == "sent"
        # The server restarts: the pooled connection is dead, which the next send finds
        # at MAIL FROM, before the server took anything.
        server.stop()
        server.start()
        assert (await provider.send(_mail("second@example.com"))).status == "sent"
    finally:
        await close_pools()
    assert [to for to, _ in server.received] == ["first@example.com", "second@example.com"]


async def test_a_refused_recipient_fails_only_that_message(server):
    provider = _provider(server)
    try:
        refused = await provider.send(_mail("nobody@example.com"))
        after = await provider.send(_mail("somebody@example.com"))
    finally:
        await close_pools()
    assert refused.status == "failed" and not refused.retryable
    assert refused.error is not None and "550" in refused.error
    assert after.status == "sent"
    [(to, _)] = server.received
    assert to == "somebody@example.com"


async def test_an_unreachable_server_is_a_retryable_failure():
    config = SmtpConfig(
        host="127.0.0.1", port=free_port(), from_address="hello@example.com", security="none"
    )
    try:
        result = await SmtpProvider(config, 2, tenant_id=new_id("tenant")).send(
            _mail("a@b.example")
        )
    finally:
        await close_pools()
    assert result.status == "failed" and result.retryable
