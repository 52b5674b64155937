"""Address checks for the crawler: never connect to private, loopback, link-local, multicast,
reserved or cloud-metadata addresses unless a source allows private ones.

The check sits in the connection layer (an httpcore network backend): the host is resolved once,
every resolved address is checked, and the socket is opened to the checked address. So it holds
for every request – robots.txt, sitemaps, pages, every redirect hop – and a DNS answer that
changes between check and connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterable

import certifi
import httpcore
import httpx

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services: blocked even when private addresses are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddress(Exception):
    """A connection to a forbidden address was refused before any packet was sent."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        suffix = "" if host.strip("[]") == address else f" (host {host})"
        super().__init__(f"blocked address {address}{suffix}")


def _embedded_ipv4(ip: IPAddress) -> IPAddress | None:
    """The IPv4 address hidden in an IPv4-mapped, 6to4, NAT64 or Teredo IPv6 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_blocked(
    address: str | IPAddress,
    allow_private: bool = False,
    allowed_networks: Iterable[str] = (),
) -> bool:
    """Whether the crawler must not connect to ``address``.

    Args:
        address: an IPv4 or IPv6 address (a zone suffix like ``%eth0`` is ignored).
        allow_private: allow private, loopback and link-local addresses (demo and tests).
        allowed_networks: CIDR blocks allowed even though they are private (an intranet partner).

    Multicast, unspecified (0.0.0.0, ::) and cloud-metadata addresses are always blocked.
    """
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    candidates = [ip] + ([inner] if (inner := _embedded_ipv4(ip)) is not None else [])
    for cand in candidates:
        if cand in METADATA_ADDRESSES or cand.is_multicast or cand.is_unspecified:
            return True
    if allow_private:
        return False
    effective = candidates[-1]
    for net in allowed_networks:
        network = ipaddress.ip_network(net, strict=False)
        if effective.version == network.version and effective in network:
            return False
    return any(
        not cand.is_global or cand.is_private or cand.is_loopback or cand.is_link_local or cand.is_reserved
        for cand in candidates
    )


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that resolves, checks and then connects to the checked address."""

    def __init__(self, allow_private: bool = False, allowed_networks: Iterable[str] = ()) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._allowed_networks = tuple(allowed_networks)

    def resolve(self, host: str, port: int) -> list[str]:
        """Addresses of ``host``; raises BlockedAddress when any of them is forbidden."""
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"dns lookup failed for {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            if address_blocked(address, self._allow_private, self._allowed_networks):
                raise BlockedAddress(host, address)
        return addresses

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: D102
        error: Exception | None = None
        for address in self.resolve(host, port):
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # refused/unreachable: try the next address
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: D102
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:  # noqa: D102
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx transport whose connections go through :class:`GuardedBackend` (no env proxies)."""

    def __init__(self, allow_private: bool = False, allowed_networks: Iterable[str] = (), max_connections: int = 10) -> None:
        super().__init__(trust_env=False)
        # httpx has no public hook for the network backend: replace the pool it built (httpx 0.28).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private, allowed_networks),
        )
