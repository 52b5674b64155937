"""Discovery helpers for the crawler: URL canonicalisation, same-site checks, links in HTML,
and sitemap / RSS / Atom parsing with limits. No network access here.

Canonical URL rules (``canonicalize``):

* relative URLs are resolved against ``base``; surrounding whitespace and tabs/newlines inside are removed;
* scheme and host are lower-cased, an IDN host is written in punycode, a trailing dot is dropped;
* user:password@ is dropped, and the default port (80 for http, 443 for https);
* the fragment is dropped; ``.`` and ``..`` path segments are resolved;
* percent-escapes are upper-cased, escapes of unreserved characters decoded, and spaces,
  non-ASCII characters (as UTF-8) and other unsafe characters escaped;
* ``;jsessionid=…`` path parameters and session/tracking query parameters (``utm_*``, ``fbclid``,
  ``gclid``, ``mc_cid``, ``mc_eid``, ``msclkid``, ``_ga``, ``phpsessid`` …) are removed; the remaining
  ``key=value`` pairs are sorted, each kept exactly as written (``?a`` and ``?a=`` stay different);
* **trailing slash**: the root path is always ``/``; every other path loses its trailing slash
  (``/nyheter/`` → ``/nyheter``). The canonical URL is the page's identity; the crawler still
  fetches a URL in the form it was found, so a server that wants the slash costs no redirect.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import defusedxml.ElementTree as SafeET
import lxml.html
from defusedxml import DefusedXmlException

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING = re.compile(
    r"^(utm_.*|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|msclkid|yclid|twclid|ttclid|igshid|srsltid"
    r"|mc_cid|mc_eid|_ga|_gl|_hsenc|_hsmi|__hstc|__hssc|__hsfp|mkt_tok|oly_anon_id|oly_enc_id"
    r"|vero_id|vero_conv|wickedid|rb_clickid|s_cid|_openstat"
    r"|jsessionid|phpsessid|aspsessionid\w*|sessionid)$",
    re.IGNORECASE,
)
_SESSION_PARAM = re.compile(r";jsessionid=[^/?#]*", re.IGNORECASE)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = "/?:@!$'()*+,;=-._~%"
_QUERY_KEY_SAFE = "/?:@!$'()*+,;-._~%"
_CONTROL = re.compile(r"[\t\n\r]")

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"})
_KINDS = {"urlset": "urlset", "sitemapindex": "sitemapindex", "rss": "rss", "feed": "atom", "rdf": "rdf"}
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(rss|feed|RDF|urlset|sitemapindex|html)[\s>/]", re.IGNORECASE)


def canonicalize(url: str, base: str | None = None) -> str:
    """The canonical form of ``url`` (see the module docstring for the rules).

    Args:
        url: an absolute URL, or a relative one when ``base`` is given.
        base: the URL of the page the link was found on (its final URL after redirects).

    Returns:
        The canonical URL. Non-http(s) URLs (mailto:, javascript: …) come back stripped but unchanged.

    Raises:
        ValueError: an http(s) URL without a host, or with an invalid port.
    """
    url = _CONTROL.sub("", url.strip())
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return url
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    host = _ascii_host(host)
    port = parts.port  # raises ValueError on a bad port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = _SESSION_PARAM.sub("", parts.path) or "/"
    if not path.startswith("/"):
        path = "/" + path
    path = _normalise_escapes(quote(_remove_dot_segments(path), safe=_PATH_SAFE))
    if path != "/":
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, _canonical_query(parts.query), ""))


def _ascii_host(host: str) -> str:
    host = host.lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return quote(host, safe=".-")


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")
    out: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg in (".", ".."):
            if seg == ".." and len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    joined = "/".join(out)
    return joined if joined.startswith("/") else "/" + joined


def _normalise_escapes(text: str) -> str:
    text = _LONE_PERCENT.sub("%25", text)

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(fix, text)


def _canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if _TRACKING.match(unquote(key.replace("+", " ")).strip()):
            continue
        key = _normalise_escapes(quote(key, safe=_QUERY_KEY_SAFE))
        value = _normalise_escapes(quote(value, safe=_QUERY_SAFE))
        pairs.append((key, sep, value))
    pairs.sort()
    return "&".join(k + s + v for k, s, v in pairs)


def host_of(url: str) -> str:
    """Lower-case host name of a URL ('' when it has none)."""
    return (urlsplit(url).hostname or "").rstrip(".")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (robots.txt and sitemaps are per origin)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower().rsplit('@', 1)[-1]}"


def _bare(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def same_site(url: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether ``url`` is on one of ``allowed_hosts`` (``www.`` ignored; ``host:port`` entries match the port)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return False
    host = _bare(parts.hostname)
    netloc = f"{host}:{parts.port or _DEFAULT_PORTS[parts.scheme.lower()]}"
    for allowed in allowed_hosts:
        allowed = allowed.strip().lower()
        if ":" in allowed and not allowed.startswith("["):
            name, _, port = allowed.rpartition(":")
            if netloc == f"{_bare(name)}:{port}":
                return True
        elif host == _bare(allowed.strip("[]")):
            return True
    return False


# -- HTML links ------------------------------------------------------------------------------


@dataclass
class PageLinks:
    """Links found in one HTML page (absolute URLs, as written, in page order)."""

    links: list[str] = field(default_factory=list)
    feeds: list[str] = field(default_factory=list)
    nofollow: bool = False


def extract_links(html: str, page_url: str) -> PageLinks:
    """``<a>``/``<area>``/``<iframe>`` targets and ``<link rel=alternate>`` feeds of an HTML page.

    Args:
        html: the decoded page.
        page_url: the URL the page was served from (after redirects); ``<base href>`` wins over it.
    """
    found = PageLinks()
    try:
        doc = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (lxml.etree.ParserError, ValueError):
        return found
    base = page_url
    for el in doc.iter("base"):
        if el.get("href"):
            base = urljoin(page_url, el.get("href").strip())
            break
    for el in doc.iter("meta"):
        if (el.get("name") or "").lower() == "robots" and "nofollow" in (el.get("content") or "").lower():
            found.nofollow = True
    for el in doc.iter("a", "area", "iframe", "frame", "link"):
        attr = "src" if el.tag in ("iframe", "frame") else "href"
        target = (el.get(attr) or "").strip()
        if not target or target.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
            continue
        absolute = urljoin(base, _CONTROL.sub("", target))
        if el.tag == "link":
            rel = (el.get("rel") or "").lower().split()
            if "alternate" in rel and (el.get("type") or "").lower().split(";")[0].strip() in FEED_TYPES:
                found.feeds.append(absolute)
            continue
        found.links.append(absolute)
    return found


# -- sitemaps and feeds ----------------------------------------------------------------------


@dataclass
class Listing:
    """What a sitemap, sitemap index or feed lists."""

    kind: str = "unknown"  # urlset | sitemapindex | rss | atom | rdf | text | unknown
    pages: list[tuple[str, datetime | None]] = field(default_factory=list)  # (url, lastmod)
    sitemaps: list[str] = field(default_factory=list)
    error: str | None = None
    hostile: bool = False  # an entity/DTD attack: nothing of it is used


def xml_root(content: bytes) -> str | None:
    """Local name of the root element of an XML document (only the first 2 KB are looked at)."""
    match = _ROOT.search(content[:2048])
    return match.group(1).decode("ascii").lower() if match else None


def parse_listing(content: bytes, max_urls: int) -> Listing:
    """Parse a sitemap (XML or plain text), sitemap index, RSS 2.0/1.0 or Atom feed.

    Parsing streams with defusedxml: entity declarations (billion laughs, quadratic blow-up) and
    external references are refused, and at most ``max_urls`` entries are read.
    """
    stripped = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(b"<"):
        return _parse_text_sitemap(stripped, max_urls)
    listing = Listing()
    count = 0
    try:
        for event, el in SafeET.iterparse(io.BytesIO(content), events=("start", "end")):
            name = _local(el.tag)
            if event == "start":
                if listing.kind == "unknown":
                    listing.kind = _KINDS.get(name.lower(), "unknown")
                continue
            entry = _entry(listing.kind, name, el)
            if entry is None:
                continue
            el.clear()
            url, lastmod = entry
            if not url:
                continue
            if count >= max_urls:
                listing.error = f"over limit: >{max_urls} urls, kept the first {max_urls}"
                break
            count += 1
            if listing.kind == "sitemapindex":
                listing.sitemaps.append(url)
            else:
                listing.pages.append((url, lastmod))
    except DefusedXmlException as exc:
        return Listing(kind=listing.kind, error=f"xml bomb/invalid sitemap: {type(exc).__name__}", hostile=True)
    except SafeET.ParseError as exc:
        listing.error = f"invalid xml: {exc}"
    if listing.kind == "unknown" and not listing.error:
        listing.error = "not a sitemap or feed"
    return listing


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child_text(el, *names: str) -> str | None:
    for child in el:
        if _local(child.tag) in names and child.text and child.text.strip():
            return child.text.strip()
    return None


def _entry(kind: str, name: str, el) -> tuple[str | None, datetime | None] | None:
    if kind == "urlset" and name == "url":
        return _child_text(el, "loc"), parse_lastmod(_child_text(el, "lastmod"))
    if kind == "sitemapindex" and name == "sitemap":
        return _child_text(el, "loc"), None
    if kind in ("rss", "rdf") and name == "item":
        about = next((v for k, v in el.attrib.items() if _local(k) == "about"), None)
        return _child_text(el, "link") or about, None
    if kind == "atom" and name == "entry":
        href = None
        for child in el:
            if _local(child.tag) == "link" and child.get("rel", "alternate") == "alternate" and child.get("href"):
                href = child.get("href").strip()
                break
        return href, parse_lastmod(_child_text(el, "updated"))
    return None


def _parse_text_sitemap(content: bytes, max_urls: int) -> Listing:
    listing = Listing(kind="text")
    for line in content.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line.startswith(("http://", "https://")):
            continue
        if len(listing.pages) >= max_urls:
            listing.error = f"over limit: >{max_urls} urls, kept the first {max_urls}"
            break
        listing.pages.append((line, None))
    if not listing.pages and not listing.error:
        listing.error = "not a sitemap or feed"
    return listing


def parse_lastmod(text: str | None) -> datetime | None:
    """A sitemap ``lastmod`` (W3C datetime) as an aware UTC datetime, or None.

    A date without time (``2024-05-01``, ``2024-05``, ``2024``) stands for the *end* of that period,
    so a page changed later on the day of our last visit is not skipped.
    """
    if not text:
        return None
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}", text):
            return datetime(int(text) + 1, 1, 1, tzinfo=timezone.utc)
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = map(int, text.split("-"))
            return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text) + timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
