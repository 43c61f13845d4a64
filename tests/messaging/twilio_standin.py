"""A real loopback HTTP server standing in for Twilio's Messages API: the same URL shape
(POST /2010-04-01/Accounts/{sid}/Messages.json), form fields and basic auth, answering
201 with a message resource as Twilio does (401 for wrong credentials)."""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class SentSms:
    account_sid: str
    auth: tuple[str, str]
    form: dict[str, str]
    sid: str
    # The request's Idempotency-Key header (our message id).
    idempotency_key: str | None = None


class TwilioStandIn:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sent: list[SentSms] = []
        self.rejections: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def bodies_to(self, number: str) -> list[str]:
        with self._lock:
            return [s.form["Body"] for s in self.sent if s.form["To"] == number]

    def handle(
        self, path: str, authorization: str, body: bytes, idempotency_key: str | None = None
    ) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "2010-04-01" or parts[3] != "Messages.json":
            return 404, {"code": 20404, "message": "The requested resource was not found"}
        user, _, password = (
            base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
        )
        if (user, password) != (self.account_sid, self.auth_token) or parts[2] != user:
            with self._lock:
                self.rejections.append(path)
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if "To" not in form or "Body" not in form:
            return 400, {"code": 21604, "message": "A 'To' phone number is required."}
        sid = f"SM{next(self._ids):032x}"
        with self._lock:
            self.sent.append(SentSms(parts[2], (user, password), form, sid, idempotency_key))
        return 201, {
            "sid": sid,
            "account_sid": user,
            "to": form["To"],
            "from": form.get("From"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
        }


@contextmanager
def running_twilio(account_sid: str, auth_token: str) -> Iterator[TwilioStandIn]:
    standin = TwilioStandIn(account_sid, auth_token)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, payload = standin.handle(
                self.path,
                self.headers.get("authorization", ""),
                body,
                self.headers.get("idempotency-key"),
            )
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    standin.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
