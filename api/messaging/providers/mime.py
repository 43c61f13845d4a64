"""An outbound email as the bytes an SMTP server receives, built directly.

The standard library's `EmailMessage` (its policy machinery, header registry and
generator) costs about 3 ms of CPU per message here, more than everything else a send
does; at campaign volume that alone caps one worker below 400 emails/s. Our messages
have one fixed shape, so they are written out directly: RFC 5322 headers (RFC 2047
encoded words only when a value is not plain ASCII, folded where long),
multipart/alternative with a text and an HTML part, each 7bit when it can be and
quoted-printable (RFC 2045) otherwise, CRLF line ends throughout.
tests/messaging/test_mime.py checks the result parses to what `EmailMessage` says."""

from __future__ import annotations

import binascii
from email.header import Header
from email.utils import formataddr, formatdate

# RFC 5322 2.1.1: lines of at most 998 characters; 78 is what headers should keep to.
_MAX_LINE = 998
_HEADER_WIDTH = 78


def _header(name: str, value: str) -> bytes:
    """`Name: value` CRLF; the value on one line (a CR or LF in it could smuggle in
    another header), encoded (RFC 2047) if not ASCII, folded where long."""
    value = " ".join(value.splitlines())
    if not value.isascii():
        encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
        return f"{name}: {encoded}\r\n".encode("ascii")
    # Folding puts a CRLF before a space, so unfolding gives the value back exactly; a
    # long run without spaces (a URL) stays whole, as RFC 5322 allows up to 998.
    lines = [f"{name}:"]
    for word in value.split(" "):
        if len(lines[-1]) + 1 + len(word) > _HEADER_WIDTH and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _address(name: str | None, address: str) -> str:
    # formataddr encodes a non-ASCII display name itself (RFC 2047).
    return formataddr((name or "", address))


def _part(text: str, subtype: str, boundary: str) -> bytes:
    """A text part's headers and body, CRLF line ends; the text ends with a line break
    (as `EmailMessage.set_content` makes it)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    lines = text[:-1].split("\n")
    plain = (
        text.isascii()
        and all(len(line) <= _MAX_LINE for line in lines)
        and not (boundary and any(line.startswith("--" + boundary) for line in lines))
    )
    if plain:
        charset, encoding = "us-ascii", "7bit"
        body = text.replace("\n", "\r\n").encode("ascii")
    else:
        charset, encoding = "utf-8", "quoted-printable"
        # b2a_qp keeps LF as a line break and writes soft breaks as "=\n"; both become CRLF.
        body = binascii.b2a_qp(text.encode("utf-8"), istext=True)
        body = body.replace(b"\n", b"\r\n")
    head = (
        f'Content-Type: text/{subtype}; charset="{charset}"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode("ascii")
    return head + body


def email_bytes(
    *,
    message_id: str,
    from_address: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    from_name: str | None = None,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
    date: str | None = None,
) -> bytes:
    """The whole message. `message_id` is the angle-bracketed Message-ID, which providers
    (and our benchmark's sink) use as the message's idempotency key."""
    out = [
        _header("From", _address(from_name, from_address)),
        _header("To", to),
        _header("Subject", subject),
        _header("Date", date or formatdate(localtime=False)),
        _header("Message-ID", message_id),
    ]
    if reply_to:
        out.append(_header("Reply-To", reply_to))
    for name, value in (headers or {}).items():
        out.append(_header(name, value))
    out.append(b"MIME-Version: 1.0\r\n")
    if html is None:
        out.append(_part(text, "plain", ""))
        return b"".join(out)
    # The Message-ID's local part is ours and unique: a boundary no other message shares,
    # which no quoted-printable body can contain ("=" is always followed by hex there).
    boundary = "=_" + "".join(c for c in message_id if c.isalnum() or c in "._-")
    out.append(
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    )
    for subtype, body in (("plain", text), ("html", html)):
        out.append(f"--{boundary}\r\n".encode("ascii"))
        out.append(_part(body, subtype, boundary))
        # The line break before a boundary belongs to the boundary (RFC 2046 5.1.1).
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)
