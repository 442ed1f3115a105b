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
import json
import socket
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import httpx

from dpi.keys import SigningKey
from dpi.signing import sign_request

__all__ = ["NOT_HTTPS", "NOT_PUBLIC", "UNREACHABLE", "is_public", "post_signed", "refusal"]

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


async def post_signed(
    client: httpx.AsyncClient,
    key: SigningKey,
    url: str,
    envelope: Mapping[str, Any],
    idempotency_key: str,
    *,
    allow_private_networks: bool,
    send_timeout: timedelta = timedelta(seconds=15),
) -> str | None:
    """POST ``envelope`` as JSON to ``url``, signed with ``key`` (RFC 9421) and carrying
    ``Idempotency-Key``, once the URL has passed :func:`refusal`; None when the receiver took it (2xx),
    else why not (never the network error's own text, so that delivery records cannot probe ports)."""
    target = httpx.URL(url)
    refused = await refusal(target, allow_private_networks=allow_private_networks)
    if refused is not None:
        return refused
    body = json.dumps(envelope, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    headers.update(sign_request("POST", str(target), headers, body, key))
    try:
        response = await client.post(
            target, content=body, headers=headers, timeout=send_timeout.total_seconds()
        )
    except httpx.HTTPError:
        return UNREACHABLE
    return None if response.is_success else f"the receiver answered HTTP {response.status_code}"
