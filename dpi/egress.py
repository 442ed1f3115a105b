"""Where a block may send callbacks and notifications (server-side request forgery guard).

A receiver URL must be ``https`` and its host must be, and resolve to, public internet addresses only:
never loopback, link-local, private, shared, multicast, reserved or unspecified ones. The host is resolved
again before every attempt, so a name later pointed at an internal address is not followed; callers send
with an HTTP client that never follows redirects. ``allow_private_networks`` (the kernel setting
``DPI_ALLOW_PRIVATE_CALLBACKS``: development and single-machine demos) lifts these rules and allows
``http``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Final

import httpx

__all__ = ["NOT_HTTPS", "NOT_PUBLIC", "UNREACHABLE", "is_public", "refusal"]

NOT_HTTPS: Final = "the receiver's URL is not https"
NOT_PUBLIC: Final = "the receiver's address is not a public internet address"
# One text for every network failure, so that delivery records cannot be used to probe ports.
UNREACHABLE: Final = "the receiver could not be reached"
_RESOLVE_TIMEOUT: Final = 5.0

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: _Address) -> bool:
    """Whether ``address`` is a public internet address (an IPv4-mapped IPv6 address judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def _addresses(host: str, port: int) -> list[_Address] | None:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return None
    addresses: list[_Address] = []
    for *_, sockaddr in found:
        try:
            addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            return None
    return addresses or None


async def refusal(url: httpx.URL, *, allow_private_networks: bool) -> str | None:
    """Why nothing may be sent to ``url`` now (:data:`NOT_HTTPS`, :data:`NOT_PUBLIC`,
    :data:`UNREACHABLE`), or None."""
    if allow_private_networks:
        return None
    if url.scheme != "https":
        return NOT_HTTPS
    addresses = await _addresses(url.host, url.port or 443)
    if addresses is None:
        return UNREACHABLE
    return None if all(is_public(address) for address in addresses) else NOT_PUBLIC
