"""The benchmark's message sinks, one process per channel (so each has a core's worth of
room and its CPU time is measured on its own):

    python -m bench.sends.sinks --channel email --port 2525 --control-port 8767
    python -m bench.sends.sinks --channel sms --port 8766

* email: a real SMTP server (aiosmtpd) that takes any number of messages per connection,
  the way a provider's submission server does for a pooled client;
* sms: a loopback HTTP/1.1 server (keep-alive) speaking Twilio's Messages API (POST
  /2010-04-01/Accounts/{sid}/Messages.json, form fields, 201 with a message resource).

Both honour an idempotency key the way a provider that supports one does: the email's
`Message-ID`, the SMS request's `Idempotency-Key` header. A handoff whose key was seen
before is acknowledged (the same 250, the same message resource) and not delivered again,
and counted as a re-handoff. So the figures say, separately: handoffs (every acceptance),
re-handoffs (a key handed over again: our at-least-once retries), delivered (distinct
keys), and duplicates delivered (recipients that got more than one distinct message).

Control on the HTTP port (the email sink's `--control-port`): `GET /_stats`,
`POST /_reset`. Stats include this process's CPU seconds (user + system).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import resource
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class Ledger:
    """What one channel's sink received."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Idempotency key -> the answer given the first time (an SMS sid, or None).
        self.keys: dict[str, str | None] = {}
        self.deliveries: Counter[str] = Counter()
        self.handoffs = 0
        self.re_handoffs = 0
        self.first: float | None = None
        self.last: float | None = None

    def take(self, recipient: str, key: str | None, answer: str | None = None) -> str | None:
        """Record a handoff; returns the answer of the key's first handoff (or `answer`)."""
        now = time.time()
        self.handoffs += 1
        if self.first is None:
            self.first = now
        self.last = now
        if key is not None:
            if key in self.keys:
                self.re_handoffs += 1
                return self.keys[key]
            self.keys[key] = answer
        self.deliveries[recipient] += 1
        return answer

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "handoffs": self.handoffs,
            "re_handoffs": self.re_handoffs,
            "delivered": sum(self.deliveries.values()),
            "distinct": len(self.deliveries),
            "duplicates_delivered": sum(n - 1 for n in self.deliveries.values() if n > 1),
            "first": self.first,
            "last": self.last,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }


LEDGER = Ledger()
_sids = itertools.count(1)


class SinkSMTP(SMTP):
    """aiosmtpd's server, reading a message's data in one go.

    aiosmtpd reads DATA a line at a time (one await per line), which costs more CPU
    than the rest of the conversation; a sink only needs the whole message, so it reads
    up to the terminating <CRLF>.<CRLF> at once and undoes dot-stuffing (RFC 5321
    4.5.2)."""

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if self.envelope is None or not self.envelope.rcpt_tos or arg:
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        first = await self._reader.readuntil(b"\r\n")
        if first == b".\r\n":
            data = b""
        else:
            # The reader's limit is aiosmtpd's line length: take what it lets through
            # and look again (it keeps a separator that straddles two reads).
            chunks = [b"\r\n", first]
            while True:
                try:
                    chunks.append(await self._reader.readuntil(b"\r\n.\r\n"))
                    break
                except asyncio.LimitOverrunError as exc:
                    chunks.append(await self._reader.read(exc.consumed))
            data = b"".join(chunks)[:-3].replace(b"\r\n..", b"\r\n.")[2:]
        self.envelope.content = self.envelope.original_content = data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)


class MailSink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        data: bytes = envelope.original_content or b""
        head = data.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        key = found.group(1).decode("ascii", "replace") if found else None
        for recipient in envelope.rcpt_tos:
            LEDGER.take(recipient, key)
        return "250 OK"


async def _body(receive: Any) -> bytes | None:
    """The request body; None when the client went away before sending all of it (a
    killed worker): such a request was never handed over, and its partial form must
    not count as a recipient."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    body = await _body(receive)
    if body is None:
        return
    if scope["method"] == "POST" and path.endswith("/Messages.json"):
        form = parse_qs(body.decode())
        key = _header(scope, b"idempotency-key")
        sid = LEDGER.take(form.get("To", [""])[0], key, f"SM{next(_sids):032x}")
        await _answer(send, 201, json.dumps({"sid": sid, "status": "queued"}).encode())
    elif path == "/_stats":
        await _answer(send, 200, json.dumps(LEDGER.stats()).encode())
    elif path == "/_reset":
        LEDGER.reset()
        await _answer(send, 200, b"{}")
    else:
        await _answer(send, 404, b"{}")


async def serve(channel: str, port: int, control_port: int | None) -> None:
    loop = asyncio.get_running_loop()
    smtp = None
    if channel == "email":
        smtp = await loop.create_server(
            lambda: SinkSMTP(MailSink(), hostname="sinks.bench.local"),
            "127.0.0.1",
            port,
            backlog=4096,
        )
        if control_port is None:
            raise SystemExit("the email sink needs --control-port")
        port = control_port
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=60,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        if smtp is not None:
            smtp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="benchmark SMTP or SMS sink")
    parser.add_argument("--channel", choices=["email", "sms"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.channel, args.port, args.control_port))


if __name__ == "__main__":
    main()
