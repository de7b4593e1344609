"""The address of the client behind the request, believing only trusted proxies.

The peer of the connection is the client unless it lies in one of the trusted-proxy CIDRs
(`BYTEOR_CLOUD_TRUSTED_PROXIES`). Then `X-Forwarded-For` is walked from the right — each
trusted proxy appends the address it received the request from — skipping trusted hops;
the first untrusted address is the client. Anything left of it was written by the client
and is never believed. A header from an untrusted peer is ignored altogether.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN_CLIENT = "unknown"


def parse_address(text: str) -> IPAddress | None:
    """An IP address from `1.2.3.4`, `1.2.3.4:80`, `::1` or `[::1]:80`; None if not one."""
    value = text.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; match them to IPv4 CIDRs.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def _forwarded_hops(request: HTTPConnection) -> list[str]:
    # Several X-Forwarded-For headers are one list in order (RFC 9110 §5.3).
    return [
        hop
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]


def client_address(request: HTTPConnection, trusted_proxies: Iterable[Network]) -> str:
    """See module docstring."""
    peer_text = request.client.host if request.client else ""
    peer = parse_address(peer_text)
    if peer is None:
        return peer_text or UNKNOWN_CLIENT
    proxies = tuple(trusted_proxies)
    if not _trusted(peer, proxies):
        return str(peer)
    nearest = peer
    for hop in reversed(_forwarded_hops(request)):
        address = parse_address(hop)
        if address is None:
            # Not an address: nothing further left can be checked, so the nearest hop
            # known to be a trusted proxy stands for the client.
            break
        if not _trusted(address, proxies):
            return str(address)
        nearest = address
    return str(nearest)
