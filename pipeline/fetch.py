"""Fetch stage: a polite, bounded, resumable crawler for one source. Bytes in, FetchResults out.

``crawl`` discovers pages from robots.txt (rules, crawl-delay, ``Sitemap:`` lines), sitemaps
(index files, gzip, ``lastmod``), RSS/Atom feeds and same-site links, and fetches them with
conditional GETs. Everything that goes wrong becomes a FetchResult with outcome ``failed`` and a
reason; nothing raises out of ``crawl``. Nothing here touches the database: the caller passes
what it knows (``known``, ``queue``, ``seen``) and persists what comes out.

Threads do the I/O (``global_concurrency`` of them); one thread – the caller's – owns the
frontier, so the iterator stays synchronous. Helpers: ``pipeline.discovery`` (canonical URLs,
links, sitemap/feed parsing) and ``pipeline.netguard`` (which addresses may be connected to).
"""

from __future__ import annotations

import codecs
import hashlib
import heapq
import itertools
import logging
import re
import threading
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urldefrag, urljoin, urlsplit

import charset_normalizer
from protego import Protego

from pipeline.discovery import (
    FEED_TYPES,
    Listing,
    canonicalize,
    extract_links,
    host_of,
    origin_of,
    parse_listing,
    same_site,
    xml_root,
)
from pipeline.netguard import Gate, HttpClient, Inflater, Reply, Stopped
from pipeline.records import FetchResult, Source

__all__ = ["FetchSettings", "PageState", "crawl", "canonicalize", "decode_html"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MB = 1024 * 1024


@dataclass(frozen=True)
class FetchSettings:
    """Knobs of the crawler (times in seconds, sizes in bytes).

    ``delay`` is the minimum pause between two requests to one host, measured from the end of one
    to the start of the next; a larger robots.txt crawl-delay (capped at ``max_crawl_delay``) wins.
    ``retries`` counts extra attempts after the first; the n-th waits ``backoff_base * 2**n`` plus up
    to ``backoff_jitter`` of that at random, or what a 429/503 Retry-After asks (a longer Retry-After
    than ``max_retry_after`` fails at once). ``total_timeout`` bounds one response however slowly it
    trickles in. ``allow_private`` (or ``Source.allow_private``) lifts the address guard for
    loopback/private networks; ``allowed_networks`` lifts it for listed CIDR blocks only.
    ``revisit_known``: URLs in ``known`` that discovery did not reach are revalidated too (last),
    so pages dropped from the site are found ``gone``.
    """

    user_agent: str = "samverkan/0.1 (+https://example.org/samverkan/bot)"
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 60.0
    max_bytes: int = 5 * MB
    max_decompressed_bytes: int = 20 * MB
    max_redirects: int = 5
    delay: float = 1.0
    max_crawl_delay: float = 60.0
    per_host_concurrency: int = 1
    global_concurrency: int = 4
    retries: int = 3
    backoff_base: float = 0.5
    backoff_jitter: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0
    max_sitemap_urls: int = 50_000
    max_sitemap_bytes: int = 50 * MB
    max_sitemaps: int = 100
    max_robots_bytes: int = 512 * 1024
    follow_links: bool = True
    revisit_known: bool = True
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    skip_extensions: tuple[str, ...] = (
        ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff", ".css", ".js",
        ".json", ".zip", ".gz", ".tgz", ".rar", ".7z", ".exe", ".msi", ".dmg", ".mp3", ".mp4", ".m4a",
        ".wav", ".avi", ".mov", ".wmv", ".webm", ".ogg", ".woff", ".woff2", ".ttf", ".eot", ".ics",
        ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp",
    )  # fmt: skip

    @property
    def robots_token(self) -> str:
        """The product token matched against robots.txt ``User-agent`` lines."""
        return self.user_agent.split("/", 1)[0].strip() or "*"


@dataclass(frozen=True)
class PageState:
    """What an earlier crawl learned about a URL (for conditional GETs and sitemap lastmod)."""

    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime | None = None


# -- decoding --------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.IGNORECASE)
def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    # WHATWG: the labels latin1 / iso-8859-1 / us-ascii mean windows-1252.
    return "cp1252" if name in ("latin-1", "iso8859-1", "ascii") else name


def decode_html(content: bytes, content_type: str = "") -> str:
    """Decode an HTML page, getting Swedish windows-1252 / ISO-8859-1 pages right.

    Order: a byte-order mark; valid UTF-8 (a single-byte page with å, ä or ö is practically never
    valid UTF-8, so this also repairs a wrong ``iso-8859-1`` label on a UTF-8 page); the charset of
    the Content-Type header; the ``<meta charset>`` / ``http-equiv`` charset; charset_normalizer,
    otherwise windows-1252 when the text reads as Western (few non-ASCII letters – charset_normalizer
    alone guesses hp_roman8 or cp1250 for short Swedish pages), else charset_normalizer's guess.

    Args:
        content: the body as fetched.
        content_type: the Content-Type header value, parameters included.
    """
    if not content:
        return ""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(encoding, "replace")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    header = _HEADER_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(content[:4096])
    for label in (header.group(1) if header else None, meta.group(1).decode("ascii", "replace") if meta else None):
        codec = _codec(label)
        if codec and not codec.startswith("utf"):
            try:
                return content.decode(codec)
            except (UnicodeDecodeError, LookupError):
                continue
    western = content.decode("cp1252", "replace")
    letters = [c for c in western if c.isalpha()]
    if sum(not c.isascii() for c in letters) <= 0.3 * len(letters):
        return western
    best = charset_normalizer.from_bytes(content[:65536]).best()
    return content.decode(best.encoding, "replace") if best is not None else western


# -- robots.txt ------------------------------------------------------------------------------


@dataclass
class _Robots:
    parser: Protego | None = None  # None: everything allowed
    deny_all: bool = False
    blocked: bool = False  # the origin's address is refused by the guard: no sitemaps either
    error: str | None = None  # why robots.txt could not be used (reported once)
    sitemaps: list[str] = field(default_factory=list)

    def allows(self, url: str, token: str) -> bool:
        if self.deny_all:
            return False
        return self.parser is None or self.parser.can_fetch(url, token)


class _RobotsCache:
    """robots.txt per origin, fetched once (by whichever thread needs it first), RFC 9309 rules."""

    def __init__(self, http: HttpClient, settings: FetchSettings) -> None:
        self._http = http
        self._settings = settings
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._entries: dict[str, _Robots] = {}

    def get(self, origin: str) -> _Robots:
        with self._lock:
            lock = self._locks[origin]
        with lock:
            if origin not in self._entries:
                self._entries[origin] = self._load(origin)
            return self._entries[origin]

    def _load(self, origin: str) -> _Robots:
        s = self._settings
        url = origin + "/robots.txt"
        reply = self._http.get(url, limit=s.max_robots_bytes, decoded_limit=s.max_robots_bytes, truncate_ok=True,
                               headers={"Accept": "text/plain,*/*;q=0.5"})
        if reply.error and reply.error.startswith("blocked address"):
            return _Robots(blocked=True)  # every page request to this origin fails on the guard too
        if reply.error or reply.status is None or reply.status >= 500:
            # RFC 9309 §2.3.1.4: unreachable robots.txt means complete disallow.
            reason = reply.error or f"http {reply.status}"
            return _Robots(deny_all=True, error=f"robots.txt unreachable ({reason}): host treated as disallowed")
        if not 200 <= reply.status < 300:
            return _Robots()  # 4xx: no rules
        try:
            parser = Protego.parse(reply.body.decode("utf-8", "replace"))
        except Exception as exc:  # noqa: BLE001 - a broken file must not stop the crawl
            log.warning("unparsable %s (%s): no rules applied", url, exc)
            return _Robots()
        delay = parser.crawl_delay(s.robots_token) or 0.0
        rate = parser.request_rate(s.robots_token)
        if rate is not None and rate.requests:
            delay = max(delay, rate.seconds / rate.requests)
        if delay:
            self._http.gate.set_delay(host_of(origin), float(delay))
        return _Robots(parser=parser, sitemaps=list(parser.sitemaps))


# -- the crawl -------------------------------------------------------------------------------

_HTML = frozenset({"text/html", "application/xhtml+xml"})
_XML = frozenset({"application/xml", "text/xml"}) | FEED_TYPES
_LISTING_ACCEPT = "application/xml,text/xml,application/rss+xml,application/atom+xml,*/*;q=0.5"
_LISTING_ROOTS = frozenset({"rss", "feed", "rdf", "urlset", "sitemapindex"})
_MAGIC = (
    (b"\x89PNG", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF8", "gif"), (b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gzip"),
    (b"\x7fELF", "elf"), (b"\xd0\xcf\x11\xe0", "ole2"), (b"RIFF", "riff"), (b"OggS", "ogg"), (b"ID3", "mp3"),
    (b"Rar!", "rar"), (b"7z\xbc\xaf", "7z"), (b"\x00asm", "wasm"),
)  # fmt: skip


def _sniff(media: str, body: bytes) -> str:
    """``html`` | ``text`` | ``pdf`` | ``listing`` | ``binary:<what>`` | ``unsupported``."""
    head = body[:1024]
    if media == "application/pdf" or head.startswith(b"%PDF-"):
        return "pdf"
    root = xml_root(head) if media in _XML or media in _HTML or not media else None
    if root in _LISTING_ROOTS and (media in _XML or head.lstrip().startswith(b"<?xml")):
        return "listing"
    if media in _XML:
        return "html" if root == "html" else "unsupported"
    if media in _HTML or media in ("text/plain", ""):
        if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            magic = next((name for sig, name in _MAGIC if head.startswith(sig)), None)
            if magic or b"\x00" in head:
                return f"binary:{magic or 'NUL bytes'}"
        return "text" if media == "text/plain" else "html"
    return "unsupported"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    url: str = field(compare=False)  # canonical (pages) or as found (listings)
    depth: int = field(compare=False)
    kind: str = field(compare=False, default="page")  # page | listing


@dataclass
class _Origin:
    heap: list[_Item] = field(default_factory=list)
    state: str = "new"  # new | loading | ready
    robots: _Robots | None = None


@dataclass
class _Out:
    """What one worker task hands back to the frontier thread."""

    results: list[FetchResult] = field(default_factory=list)
    pages: list[tuple[str, str, int, datetime | None]] = field(default_factory=list)  # canonical, as found, depth, lastmod
    listings: list[tuple[str, int]] = field(default_factory=list)
    robots: _Robots | None = None
    origin: str | None = None  # the origin a bootstrap task loaded
    not_a_page: bool = False  # a page request that turned out to be a feed/sitemap


class _Crawler:
    def __init__(self, source: Source, settings: FetchSettings, known: Mapping[str, PageState], seen: Iterable[str]) -> None:
        self.source = source
        self.s = settings
        self.allowed = tuple(source.allowed_hosts) or tuple(host_of(u) for u in source.start_urls)
        self.stop = threading.Event()
        self.gate = Gate(settings, self.stop)
        self.http = HttpClient(settings, settings.allow_private or source.allow_private, self.gate)
        self.robots = _RobotsCache(self.http, settings)
        self.known = {self._canon(u) or u: state for u, state in known.items()}
        self.lock = threading.Lock()
        self.claimed: dict[str, str] = {}  # canonical page URL -> canonical URL of the task that fetched it ("" = done)
        for url in seen:
            self.claimed[self._canon(url) or url] = ""
        self.best_depth: dict[str, int] = {}
        self.fetch_form: dict[str, str] = {}
        self.found_forms: set[str] = set()
        self.origins: dict[str, _Origin] = {}
        self.listings_done: set[str] = set()
        self.seq = itertools.count()
        self.pages_requested = 0
        self.sitemap_budget = settings.max_sitemap_urls
        self.sitemap_files = 0
        self.inflight: dict[Future, tuple[str, str, _Item | str]] = {}  # future -> (host, kind, item or origin)
        self.host_inflight: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.done_per_host: Counter[str] = Counter()
        self.queued: Counter[str] = Counter()  # page entries on the heaps, per host
        self.progress: Callable[[dict[str, dict[str, int]]], None] | None = None

    # frontier ---------------------------------------------------------------------------

    def _canon(self, url: str, base: str | None = None) -> str | None:
        try:
            canon = canonicalize(url, base)
        except ValueError:
            return None
        return canon if canon.startswith(("http://", "https://")) else None

    def _wanted(self, canon: str) -> bool:
        path = urlsplit(canon).path.lower()
        return same_site(canon, self.allowed) and not path.endswith(self.s.skip_extensions)

    def add_page(self, canon: str, found: str | None, depth: int, priority: int | None = None) -> None:
        if depth > self.source.max_depth or not self._wanted(canon) or canon in self.claimed:
            return
        if found and canon not in self.found_forms:  # fetch a URL as the site wrote it (trailing slash …)
            self.fetch_form[canon] = urldefrag(found)[0]
            self.found_forms.add(canon)
        elif canon not in self.fetch_form:
            self.fetch_form[canon] = canon
        if self.best_depth.get(canon, depth + 1) <= depth:
            return
        self.best_depth[canon] = depth
        origin = self.origins.setdefault(origin_of(canon), _Origin())
        heapq.heappush(origin.heap, _Item(depth if priority is None else priority, next(self.seq), canon, depth))
        self.queued[host_of(canon)] += 1

    def add_listing(self, url: str, depth: int) -> None:
        if url in self.listings_done or not same_site(url, self.allowed):
            return
        origin = self.origins.setdefault(origin_of(url), _Origin())
        heapq.heappush(origin.heap, _Item(-1, next(self.seq), url, depth, "listing"))

    def add_discovered(self, canon: str, found: str, depth: int, lastmod: datetime | None) -> Iterator[FetchResult]:
        state = self.known.get(canon)
        if lastmod and state and state.fetched_at and lastmod <= _aware(state.fetched_at) and canon not in self.claimed:
            if self._wanted(canon):
                with self.lock:
                    self.claimed[canon] = ""
                yield FetchResult(url=canon, source=self.source.name, status=None, fetched_at=_now(), outcome="skipped",
                                  etag=state.etag, last_modified=state.last_modified, depth=depth,
                                  error=f"sitemap lastmod {lastmod.isoformat()} <= last fetch {state.fetched_at.isoformat()}")
            return
        self.add_page(canon, found, depth)

    # main loop --------------------------------------------------------------------------

    def run(self, queue: Iterable[tuple[str, int]] | None) -> Iterator[FetchResult]:
        seeds = [(u, 0) for u in self.source.start_urls] + [(u, int(d)) for u, d in (queue or ())]
        for url, depth in seeds:
            if canon := self._canon(url):
                self.add_page(canon, url, depth)
        if self.s.revisit_known:
            for canon in self.known:
                self.add_page(canon, None, self.source.max_depth, priority=self.source.max_depth + 1)
        pool = ThreadPoolExecutor(self.s.global_concurrency, thread_name_prefix="samverkan-fetch")
        try:
            while True:
                yield from self._dispatch(pool)
                if not self.inflight:
                    break
                finished, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
                for future in finished:
                    host, kind, what = self.inflight.pop(future)
                    self.host_inflight[host] -= 1
                    yield from self._absorb(future, what)
                    self.done_per_host[host] += kind == "page"
                    self._report()
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self.http.close()
            log.info("crawl of %s: %d page requests, outcomes %s", self.source.name, self.pages_requested, dict(self.outcomes))

    def _report(self) -> None:
        if self.progress is None:
            return
        queued = +self.queued
        try:
            self.progress({h: {"done": self.done_per_host[h], "queued": self.queued[h]} for h in queued | self.done_per_host})
        except Exception:  # noqa: BLE001 - a broken progress display must not stop the crawl
            log.exception("progress callback failed")

    def _submit(self, pool: ThreadPoolExecutor, host: str, kind: str, fn: Callable[..., _Out], *args) -> None:
        self.inflight[pool.submit(fn, *args)] = (host, kind, args[0])
        self.host_inflight[host] += 1

    def _dispatch(self, pool: ThreadPoolExecutor) -> list[FetchResult]:
        immediate: list[FetchResult] = []
        progress = True
        while progress and len(self.inflight) < self.s.global_concurrency:
            progress = False
            for key, origin in list(self.origins.items()):
                if len(self.inflight) >= self.s.global_concurrency:
                    break
                host = host_of(key)
                if self.host_inflight[host] >= self.s.per_host_concurrency:
                    continue
                if origin.state == "new" and origin.heap:
                    origin.state = "loading"
                    self._submit(pool, host, "bootstrap", self._bootstrap, key)
                    progress = True
                elif origin.state == "ready" and (item := self._next_item(origin, immediate)) is not None:
                    task = self._page_task if item.kind == "page" else self._listing_task
                    self._submit(pool, host, item.kind, task, item, self.fetch_form.get(item.url, item.url))
                    progress = True
        for r in immediate:
            self.outcomes[r.outcome] += 1
        return immediate

    def _next_item(self, origin: _Origin, immediate: list[FetchResult]) -> _Item | None:
        token = self.s.robots_token
        while origin.heap and self.pages_requested < self.source.page_limit:
            item = heapq.heappop(origin.heap)
            self.queued[host_of(item.url)] -= item.kind == "page"
            if item.kind == "listing":
                if item.url in self.listings_done:
                    continue
                with self.lock:
                    self.listings_done.add(item.url)
                if origin.robots and origin.robots.allows(item.url, token):
                    return item
                continue
            if self.best_depth.get(item.url) != item.depth:
                continue  # a shallower entry for the same URL exists
            with self.lock:
                holder = self.claimed.get(item.url)
                if holder is None:
                    self.claimed[item.url] = item.url
            if holder is not None:
                if holder and holder != item.url:
                    error = f"duplicate: fetched through a redirect from {holder}"
                    immediate.append(self._result(item, outcome="skipped", error=error))
                continue
            if origin.robots and not origin.robots.allows(self.fetch_form.get(item.url, item.url), token):
                reason = origin.robots.error or "disallowed by robots.txt"
                immediate.append(self._result(item, outcome="disallowed", error=reason))
                continue
            self.pages_requested += 1
            return item
        return None

    def _result(self, item: _Item, **fields) -> FetchResult:
        return FetchResult(url=item.url, source=self.source.name, status=None, fetched_at=_now(), depth=item.depth, **fields)

    def _absorb(self, future: Future, what: _Item | str) -> Iterator[FetchResult]:
        try:
            out: _Out = future.result()
        except Stopped:
            return
        except Exception as exc:  # noqa: BLE001 - a bug in one task must not end the crawl
            log.exception("fetch task for %s failed", what)
            error = f"internal error: {exc!r}"
            if isinstance(what, str):  # a bootstrap: without robots.txt the origin stays closed
                out = _Out(robots=_Robots(deny_all=True, error=error), origin=what)
                url = what + "/robots.txt"
            else:
                out, url = _Out(), what.url
            out.results.append(FetchResult(url=url, source=self.source.name, status=None, fetched_at=_now(),
                                           outcome="failed", error=error))
        if out.origin is not None:
            origin = self.origins[out.origin]
            origin.robots, origin.state = out.robots, "ready"
        if out.not_a_page:
            self.pages_requested -= 1
        for r in out.results:
            self.outcomes[r.outcome] += 1
            yield r
        for canon, found, depth, lastmod in out.pages:
            for r in self.add_discovered(canon, found, depth, lastmod):
                self.outcomes[r.outcome] += 1
                yield r
        for url, depth in out.listings:
            self.add_listing(url, depth)

    # worker tasks (run in pool threads) -----------------------------------------------------

    def _bootstrap(self, origin: str) -> _Out:
        """robots.txt of an origin, then its sitemaps (robots ``Sitemap:`` lines, else /sitemap.xml)."""
        robots = self.robots.get(origin)
        out = _Out(robots=robots, origin=origin)
        if robots.error:
            out.results.append(FetchResult(url=origin + "/robots.txt", source=self.source.name, status=None,
                                           fetched_at=_now(), outcome="failed", error=robots.error))
        if robots.deny_all or robots.blocked:
            return out
        guessed = not robots.sitemaps
        todo = deque((url, 0) for url in (robots.sitemaps or [origin + "/sitemap.xml"]))
        done: set[str] = set()
        while todo:
            url, level = todo.popleft()
            if url in done or (guessed and not robots.allows(url, self.s.robots_token)):
                continue
            done.add(url)
            listing = self._read_listing(url, 0, out, silent=guessed, queue_children=False)
            if listing is not None:
                todo.extend((child, level + 1) for child in listing.sitemaps if level < 3)
        with self.lock:
            self.listings_done.update(done)
        return out

    def _read_listing(self, url: str, depth: int, out: _Out, silent: bool = False, reply: Reply | None = None,
                      queue_children: bool = True) -> Listing | None:
        """Fetch (unless ``reply`` is given) and parse a sitemap or feed; entries go into ``out``."""
        def failed(error: str) -> None:
            out.results.append(FetchResult(url=url, source=self.source.name, status=reply.status if reply else None,
                                           fetched_at=_now(), outcome="failed", error=error, depth=depth))

        with self.lock:
            self.sitemap_files += 1
            over = self.sitemap_files > self.s.max_sitemaps
        if over:
            failed(f"sitemap limit: more than {self.s.max_sitemaps} sitemap/feed files")
            return None
        if reply is None:
            s = self.s
            reply = self.http.get(url, limit=s.max_sitemap_bytes, decoded_limit=s.max_sitemap_bytes,
                                  headers={"Accept": _LISTING_ACCEPT}, check_hop=self._listing_hop)
            if reply.error or reply.outcome or not 200 <= (reply.status or 0) < 300:
                if not (silent and reply.status in (404, 410)):
                    failed(f"sitemap/feed: {reply.error or f'http {reply.status}'}")
                return None
        body = reply.body
        if body[:2] == b"\x1f\x8b":  # a .gz sitemap file
            inflater = Inflater("gzip")
            try:
                inflated = inflater.feed(body, self.s.max_sitemap_bytes)
            except zlib.error as exc:
                failed(f"invalid gzip sitemap: {exc}")
                return None
            if inflated is None:
                failed(f"xml bomb/invalid sitemap: gzip inflates to >{self.s.max_sitemap_bytes} bytes")
                return None
            body = inflated
        with self.lock:
            budget = self.sitemap_budget
        listing = parse_listing(body, max(budget, 0))
        with self.lock:
            self.sitemap_budget -= len(listing.pages) + len(listing.sitemaps)
        if listing.error and not (silent and listing.error == "not a sitemap or feed"):
            failed(listing.error if listing.hostile else f"{listing.kind} {url}: {listing.error}")
        if listing.hostile:
            return None
        for page, lastmod in listing.pages:
            if canon := self._canon(page, url):
                out.pages.append((canon, urljoin(url, page), depth, lastmod))
        listing.sitemaps = [urljoin(url, child) for child in listing.sitemaps]
        if queue_children:
            out.listings.extend((child, depth) for child in listing.sitemaps)
        return listing

    def _listing_hop(self, target: str) -> tuple[str, str] | None:
        return None if same_site(target, self.allowed) else ("failed", f"redirect off-site to {target}")

    def _listing_task(self, item: _Item, fetch_url: str) -> _Out:
        out = _Out()
        self._read_listing(fetch_url, item.depth, out)
        return out

    def _page_hop(self, owner: str, target: str) -> tuple[str, str] | None:
        canon = self._canon(target)
        if canon is None:
            return "failed", f"redirect to invalid URL {target}"
        if not same_site(canon, self.allowed):
            return "failed", f"redirect off-site to {canon}"
        robots = self.robots.get(origin_of(canon))
        if not robots.allows(target, self.s.robots_token):
            return "disallowed", f"redirect target disallowed by robots.txt: {canon}"
        if canon != owner:
            with self.lock:
                holder = self.claimed.setdefault(canon, owner)
            if holder != owner:
                return "skipped", f"duplicate: redirects to {canon}, fetched elsewhere"
        return None

    def _page_task(self, item: _Item, fetch_url: str) -> _Out:
        s = self.s
        state = self.known.get(item.url)
        headers = {"Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.5"}
        if state and state.etag:
            headers["If-None-Match"] = state.etag
        if state and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        reply = self.http.get(fetch_url, limit=s.max_bytes, decoded_limit=s.max_decompressed_bytes, headers=headers,
                              check_hop=lambda target: self._page_hop(item.url, target))
        r = FetchResult(url=item.url, source=self.source.name, status=reply.status, fetched_at=_now(), final_url=reply.url,
                        headers=reply.headers, depth=item.depth, etag=reply.headers.get("etag"),
                        last_modified=reply.headers.get("last-modified"))
        out = _Out(results=[r])
        if reply.outcome:
            r.outcome, r.error = reply.outcome, reply.error
        elif reply.error:
            r.outcome, r.error = "failed", reply.error
        elif reply.status == 304:
            r.outcome = "not_modified"
            r.etag = r.etag or (state.etag if state else None)
            r.last_modified = r.last_modified or (state.last_modified if state else None)
        elif reply.status in (404, 410):
            r.outcome = "gone"
        elif not 200 <= (reply.status or 0) < 300:
            r.outcome, r.error = "failed", f"http {reply.status}"
        else:
            self._take_content(item, reply, r, out)
        return out

    def _take_content(self, item: _Item, reply: Reply, r: FetchResult, out: _Out) -> None:
        content_type = reply.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        kind = _sniff(media, reply.body)
        if kind == "listing":
            out.results, out.not_a_page = [], True
            self._read_listing(item.url, item.depth + 1, out, reply=reply)
            return
        if kind.startswith("binary:"):
            r.outcome, r.error = "failed", f"binary content ({kind[7:]}) served as {media or 'no content type'}"
            return
        if kind == "unsupported":
            r.outcome, r.error = "failed", f"unsupported content type: {media}"
            return
        r.content = reply.body
        r.content_type = content_type or {"pdf": "application/pdf", "html": "text/html"}.get(kind, "")
        r.content_hash = hashlib.sha256(reply.body).hexdigest()
        if kind != "html":
            return
        found = extract_links(decode_html(reply.body, content_type), reply.url)
        links: dict[str, str] = {}
        for link in found.links:
            canon = self._canon(link)
            if canon and canon != item.url and self._wanted(canon):
                links.setdefault(canon, link)
        feeds = [feed for feed in dict.fromkeys(found.feeds) if same_site(feed, self.allowed)]
        # Feeds are listed too: a resumed crawl gets them back from the saved frontier and reads them as pages.
        r.links = list(dict.fromkeys([*links, *filter(None, map(self._canon, feeds))]))
        if self.s.follow_links and not found.nofollow and item.depth < self.source.max_depth:
            out.pages.extend((canon, link, item.depth + 1, None) for canon, link in links.items())
            out.listings.extend((feed, item.depth + 1) for feed in feeds)


def crawl(
    source: Source,
    settings: FetchSettings,
    known: Mapping[str, PageState] | None = None,
    queue: Iterable[tuple[str, int]] | None = None,
    seen: Collection[str] | None = None,
    *,
    progress: Callable[[dict[str, dict[str, int]]], None] | None = None,
) -> Iterator[FetchResult]:
    """Crawl one source and yield a FetchResult per page URL handled.

    Args:
        source: the site (start URLs, allowed hosts, page limit, max depth, allow_private).
        settings: crawler settings.
        known: canonical URL -> what earlier crawls learned (conditional GETs, lastmod skips).
        queue: a saved frontier of (url, depth) to resume; the start URLs are added unless in ``seen``.
        seen: URLs finished before (they are not fetched again).
        progress: called after every finished request with ``{host: {"done": n, "queued": m}}``
            (``queued`` is an upper bound: URLs queued twice at different depths count twice).

    Yields:
        One FetchResult per page URL: ``ok``, ``not_modified``, ``gone``, ``failed`` (with ``error``),
        ``disallowed`` or ``skipped`` (no request). Failed robots.txt/sitemap/feed fetches are reported
        as ``failed`` results under their own URL; successful ones yield nothing.
    """
    crawler = _Crawler(source, settings, known or {}, seen or ())
    crawler.progress = progress
    yield from crawler.run(queue)
