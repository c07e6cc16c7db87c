"""`ClientAddress`: who is on the other end of a request, and whether a proxy may say otherwise.

The peer address of the TCP connection is the client's address, unless the peer is one of the
configured trusted proxies (`XINLIAN_TRUSTED_PROXIES`, `xinlian serve --trusted-proxy`; none by
default). Then `X-Forwarded-For` is read from the right: the first address that is not itself a
trusted proxy is the client. An address that does not parse is ignored (the peer stands), so a
caller can never choose the address that rate limits count and the audit records.
`X-Forwarded-Proto` is honoured from trusted proxies only, too.

Budgets counted per address (rate limits, the authentication lockout, refusal counts) count an
IPv6 client per /64 (`budget_key`): one subscriber usually holds a whole /64, and counting each
of its 2^64 addresses apart would let it step around every limit. The audit keeps the address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses ("10.0.0.5", "10.0.0.0/24", "::1"); a bad one is a ValueError."""
    networks = []
    for spec in specs:
        text = spec.strip()
        if text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def within(address: Address | str | None, networks: tuple[Network, ...]) -> bool:
    """Whether `address` (parsed, or text) lies in any of `networks`; False for one that does not parse."""
    parsed = _address(address) if isinstance(address, str) else address
    return parsed is not None and any(parsed in network for network in networks)


@dataclass(frozen=True)
class ClientAddress:
    """Resolves a connection's client address and scheme against the trusted proxies."""

    trusted_proxies: tuple[Network, ...] = ()

    @staticmethod
    def budget_key(address: str) -> str:
        """The key budgets count `address` under: itself, or its /64 for IPv6."""
        parsed = _address(address)
        if not isinstance(parsed, ipaddress.IPv6Address):
            return address
        if parsed.ipv4_mapped is not None:  # ::ffff:a.b.c.d is an IPv4 client
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))

    def trusted(self, address: Address | None) -> bool:
        return within(address, self.trusted_proxies)

    def of(self, connection: HTTPConnection) -> tuple[str, str]:
        """(client address, scheme) of a request."""
        peer_text = connection.client.host if connection.client else "unknown"
        scheme = connection.url.scheme
        peer = _address(peer_text)
        if not self.trusted(peer):
            return peer_text, scheme
        forwarded = ",".join(connection.headers.getlist("x-forwarded-for"))
        client = peer_text
        for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
            address = _address(hop)
            if address is None:
                break  # a hop that does not parse: stop at the last address we could trust
            client = str(address)
            if not self.trusted(address):
                break
        proto = ",".join(connection.headers.getlist("x-forwarded-proto")).split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
        return client, scheme
