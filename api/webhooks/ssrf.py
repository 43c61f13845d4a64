"""Webhook targets must be public: a URL that resolves to a private, loopback, link-local,
multicast, reserved or unspecified address is refused at registration and again at every
send (DNS can change in between). The send then goes to the address that was checked, so
a second lookup cannot swap in another one."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(Exception):
    """The URL is malformed, or points somewhere webhooks may not go."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    address: str  # the checked IP the request connects to


def check_url_shape(url: str, *, require_https: bool) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from exc
    if parts.scheme not in {"http", "https"}:
        raise UnsafeTarget("must be an http(s) URL")
    if require_https and parts.scheme != "https":
        raise UnsafeTarget("must use https")
    if not parts.hostname:
        raise UnsafeTarget("has no host")
    if parts.username or parts.password:
        raise UnsafeTarget("must not carry credentials")
    if parts.fragment:
        raise UnsafeTarget("must not have a fragment")
    if port == 0:
        raise UnsafeTarget("has an invalid port")


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeTarget(f"the host {host!r} does not resolve ({exc.strerror or exc})") from exc
    # Zone ids (`fe80::1%eth0`) are cut off: link-local is refused anyway.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host; refuse it if any address it resolves to is not public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    if not addresses:
        raise UnsafeTarget(f"the host {host!r} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise UnsafeTarget(
                f"the host {host!r} resolves to a non-public address ({refused[0]}); "
                "webhooks only go to public addresses"
            )
    return Target(host=host, port=port, address=str(addresses[0]))
