"""The benchmark's message sinks, in a process of their own:

    python -m bench.sends.sinks --smtp-port 2525 --http-port 8766

* a real SMTP server (aiosmtpd) that accepts every message and records its recipient;
* a loopback HTTP server speaking Twilio's Messages API (POST
  /2010-04-01/Accounts/{sid}/Messages.json, form fields, 201 with a message resource)
  that records the `To` of every text.

Control: `GET /_stats` (per channel: received, distinct recipients, recipients received
more than once, first and last arrival as `time.time()`), `POST /_reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from aiosmtpd.smtp import SMTP

_received: dict[str, Counter[str]] = {"sms": Counter(), "email": Counter()}
_times: dict[str, list[float]] = {"sms": [], "email": []}
_sids = itertools.count(1)


def _record(channel: str, recipient: str) -> None:
    now = time.time()
    _received[channel][recipient] += 1
    times = _times[channel]
    if not times:
        times.extend([now, now])
    else:
        times[1] = now


class MailSink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            _record("email", recipient)
        return "250 OK"


def _stats() -> dict[str, Any]:
    return {
        channel: {
            "received": sum(counter.values()),
            "distinct": len(counter),
            "repeated": sum(1 for n in counter.values() if n > 1),
            "first": _times[channel][0] if _times[channel] else None,
            "last": _times[channel][1] if _times[channel] else None,
        }
        for channel, counter in _received.items()
    }


async def _body(receive: Any) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
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


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    body = await _body(receive)
    if scope["method"] == "POST" and path.endswith("/Messages.json"):
        form = parse_qs(body.decode())
        _record("sms", form.get("To", [""])[0])
        sid = f"SM{next(_sids):032x}"
        await _answer(send, 201, json.dumps({"sid": sid, "status": "queued"}).encode())
    elif path == "/_stats":
        await _answer(send, 200, json.dumps(_stats()).encode())
    elif path == "/_reset":
        for channel in _received:
            _received[channel].clear()
            _times[channel].clear()
        await _answer(send, 200, b"{}")
    else:
        await _answer(send, 404, b"{}")


async def serve(smtp_port: int, http_port: int) -> None:
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(MailSink(), hostname="sinks.bench.local"), "127.0.0.1", smtp_port
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=http_port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        smtp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="benchmark SMTP and SMS sinks")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.smtp_port, args.http_port))


if __name__ == "__main__":
    main()
