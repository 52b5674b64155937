"""The crawler's wire layer: which addresses may be connected to, how often, and how much is read.

1. Address guard: never connect to private, loopback, link-local, multicast, reserved or
   cloud-metadata addresses unless a source allows private ones. The check sits in the
   connection layer (an httpcore network backend): the host is resolved once, every resolved
   address is checked, and the socket is opened to the checked address. So it holds for every
   request – robots.txt, sitemaps, pages, every redirect hop – and a DNS answer that changes
   between check and connect (DNS rebinding) cannot slip through.
2. Politeness gate (``Gate``): per-host concurrency and the pause between requests to one host.
3. Bounded GET (``HttpClient``): redirects followed by hand (each hop checked), responses streamed
   with caps on wire and decompressed size (gzip bombs), a total time cap, retries with
   exponential backoff and jitter, and Retry-After for 429/503.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit

import certifi
import httpcore
import httpx

from pipeline.discovery import host_of

if TYPE_CHECKING:
    from pipeline.fetch import FetchSettings

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


# -- politeness ------------------------------------------------------------------------------


class Stopped(Exception):
    """The crawl was closed while a worker waited for its turn."""


class Gate:
    """Per-host politeness: at most ``per_host_concurrency`` requests at a time to one host, and
    ``delay`` seconds (or the host's crawl-delay) from the end of one request to the start of the next."""

    def __init__(self, settings: FetchSettings, stop: threading.Event) -> None:
        self._settings = settings
        self._stop = stop
        self._cond = threading.Condition()
        self._next: dict[str, float] = {}
        self._active: Counter[str] = Counter()
        self._delay: dict[str, float] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        """Raise the host's delay to a robots.txt crawl-delay (never below the configured one)."""
        with self._cond:
            self._delay[host] = max(self._settings.delay, min(seconds, self._settings.max_crawl_delay))
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + self._delay[host])

    def delay(self, host: str) -> float:
        """Current pause between two requests to ``host``."""
        return self._delay.get(host, self._settings.delay)

    def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` (backoff, Retry-After)."""
        with self._cond:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)
            self._cond.notify_all()

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one request slot of ``host``; waits for its turn, raises Stopped when the crawl ends."""
        with self._cond:
            while True:
                if self._stop.is_set():
                    raise Stopped
                wait_for = self._next.get(host, 0.0) - time.monotonic()
                if wait_for <= 0 and self._active[host] < self._settings.per_host_concurrency:
                    break
                self._cond.wait(min(max(wait_for, 0.01), 0.2))
            self._active[host] += 1
            self._next[host] = time.monotonic() + self.delay(host)
        try:
            yield
        finally:
            with self._cond:
                self._active[host] -= 1
                self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + self.delay(host))
                self._cond.notify_all()


# -- HTTP ------------------------------------------------------------------------------------

_REDIRECTS = {301, 302, 303, 307, 308}
_TIMEOUT_KINDS = {httpx.ConnectTimeout: "connect", httpx.ReadTimeout: "read", httpx.WriteTimeout: "write"}
_RETRY_STATUS = {408, 429, 500, 502, 503, 504, 507, 509, 520, 521, 522, 523, 524}
HopCheck = Callable[[str], "tuple[str, str] | None"]


@dataclass
class Reply:
    """Outcome of one bounded GET (after redirects and retries)."""

    url: str  # the URL finally requested
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    outcome: str | None = None  # set when a redirect check stopped the fetch
    retryable: bool = False


class Inflater:
    """Content-Encoding decoder that never produces more than it is allowed to (gzip bombs)."""

    def __init__(self, encoding: str) -> None:
        self.mode = {"": None, "identity": None, "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}.get(encoding, "?")
        if self.mode == "?":
            raise ValueError(f"unsupported content-encoding: {encoding}")
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.mode == "gzip" else None
        self._seen = False

    def feed(self, data: bytes, room: int) -> bytes | None:
        """Decoded bytes of ``data``, or None when they would exceed ``room``."""
        if self.mode is None:
            return data if len(data) <= room else None
        if self._obj is None:  # deflate: zlib-wrapped (RFC) or raw (what some servers send)
            zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        self._seen = self._seen or bool(data)
        out = bytearray()
        while data:
            out += self._obj.decompress(data, room - len(out) + 1)
            if len(out) > room:
                return None
            if self._obj.eof and self._obj.unused_data and self.mode == "gzip":  # another gzip member
                data = self._obj.unused_data
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = self._obj.unconsumed_tail
        return bytes(out)

    @property
    def complete(self) -> bool:
        """False when a compressed body ended before its end marker (a truncated transfer)."""
        return self.mode is None or not self._seen or (self._obj is not None and self._obj.eof)


def backoff(settings: FetchSettings, attempt: int) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential, capped, with jitter."""
    base = min(settings.max_backoff, settings.backoff_base * 2**attempt)
    return base * (1 + settings.backoff_jitter * random.random())


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or HTTP date) in seconds from now, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HttpClient:
    """GET with our own redirect handling, size limits and retries, through the politeness gate."""

    def __init__(self, settings: FetchSettings, allow_private: bool, gate: Gate) -> None:
        self.settings = settings
        self.gate = gate
        timeout = httpx.Timeout(
            connect=settings.connect_timeout, read=settings.read_timeout, write=settings.read_timeout, pool=settings.total_timeout
        )
        self.client = httpx.Client(
            transport=GuardedTransport(
                allow_private, settings.allowed_networks, max_connections=2 * settings.global_concurrency + 2
            ),
            timeout=timeout,
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def get(self, url: str, *, limit: int, decoded_limit: int, headers: Mapping[str, str] | None = None,
            check_hop: HopCheck | None = None, truncate_ok: bool = False) -> Reply:
        """Fetch ``url``: redirects followed (``check_hop`` may stop them), failures retried with backoff."""
        s = self.settings
        for attempt in range(s.retries + 1):
            reply = self._follow(url, headers, limit, decoded_limit, check_hop, truncate_ok)
            wait_for = self._retry_wait(reply, attempt)
            if wait_for is None:
                return reply
            if attempt == s.retries:
                break
            log.info("retrying %s in %.2fs (%s)", url, wait_for, reply.error or f"http {reply.status}")
            self.gate.defer(host_of(reply.url), wait_for)
        reply.error = f"{reply.error or f'http {reply.status}'} after {s.retries} {'retry' if s.retries == 1 else 'retries'}"
        return reply

    def _retry_wait(self, reply: Reply, attempt: int) -> float | None:
        if reply.outcome:
            return None
        if reply.error:
            return backoff(self.settings, attempt) if reply.retryable else None
        if reply.status not in _RETRY_STATUS:
            return None
        asked = retry_after_seconds(reply.headers.get("retry-after")) if reply.status in (429, 503) else None
        if asked is None:
            return backoff(self.settings, attempt)
        if asked > self.settings.max_retry_after:
            reply.error = f"http {reply.status}: Retry-After {asked:.0f}s over the {self.settings.max_retry_after:.0f}s cap"
            return None
        return asked

    def _follow(self, url, headers, limit, decoded_limit, check_hop, truncate_ok) -> Reply:
        chain = [url]
        for hop in range(self.settings.max_redirects + 1):
            reply = self._request(chain[-1], headers if hop == 0 else None, limit, decoded_limit, truncate_ok)
            if reply.error or reply.status not in _REDIRECTS:
                return reply
            location = reply.headers.get("location", "").strip()
            if not location:
                return _fail(reply, f"http {reply.status} redirect without Location")
            target = urldefrag(urljoin(chain[-1], location))[0]
            if urlsplit(target).scheme not in ("http", "https"):
                return _fail(reply, f"redirect to unsupported URL {target}")
            if target in chain:
                return _fail(reply, "redirect loop: " + " -> ".join([*chain[chain.index(target) :], target]))
            if hop == self.settings.max_redirects:
                return _fail(reply, f"too many redirects: >{self.settings.max_redirects}")
            if check_hop is not None and (stop := check_hop(target)) is not None:
                reply.outcome, reply.error = stop
                reply.url = target
                return reply
            chain.append(target)
        raise AssertionError("unreachable")

    def _request(self, url, headers, limit, decoded_limit, truncate_ok) -> Reply:
        reply = Reply(url=url)
        try:
            with self.gate.slot(host_of(url)), self.client.stream("GET", url, headers=headers) as resp:
                reply.status = resp.status_code
                reply.headers = dict(resp.headers.items())
                if 200 <= resp.status_code < 300:
                    self._read(resp, reply, limit, decoded_limit, truncate_ok)
        except Stopped:
            raise
        except BlockedAddress as exc:
            reply.error = str(exc)
        except httpx.TimeoutException as exc:
            kind = _TIMEOUT_KINDS.get(type(exc), "pool")
            reply.error, reply.retryable = f"timeout: {kind}", True
        except httpx.RemoteProtocolError as exc:
            text = str(exc) or type(exc).__name__
            truncated = "incomplete" in text or "peer closed" in text
            reply.error, reply.retryable = (f"truncated body: {text}" if truncated else f"protocol error: {text}"), True
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            reply.error = f"invalid url: {exc}"
        except httpx.TransportError as exc:
            reply.error, reply.retryable = f"connection error: {exc or type(exc).__name__}", True
        return reply

    def _read(self, resp: httpx.Response, reply: Reply, limit: int, decoded_limit: int, truncate_ok: bool) -> None:
        try:
            inflater = Inflater(resp.headers.get("content-encoding", "").strip().lower())
        except ValueError as exc:
            reply.error = str(exc)
            return
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and not truncate_ok:
            reply.error = f"too large: >{limit} bytes (Content-Length {declared})"
            return
        deadline = time.monotonic() + self.settings.total_timeout
        parts, raw, size = [], 0, 0
        try:
            for chunk in resp.iter_raw():
                raw += len(chunk)
                out = inflater.feed(chunk, decoded_limit - size) if raw <= limit else None
                if out is None:
                    if truncate_ok:
                        break
                    reply.error = (f"too large: >{limit} bytes" if raw > limit
                                   else f"too large: decompressed >{decoded_limit} bytes (gzip bomb)")
                    return
                parts.append(out)
                size += len(out)
                if time.monotonic() > deadline:
                    reply.error = f"timeout: total >{self.settings.total_timeout:g}s"
                    return
        except zlib.error as exc:
            reply.error = f"invalid compressed body: {exc}"
            return
        if not inflater.complete and not truncate_ok:
            reply.error, reply.retryable = "truncated body: compressed stream incomplete", True
            return
        reply.body = b"".join(parts)


def _fail(reply: Reply, error: str) -> Reply:
    reply.error = error
    return reply
