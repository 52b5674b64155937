"""The bundled demo partner site and its local server (pipeline.demo_site)."""

from __future__ import annotations

import http.client
import io
import socket
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from defusedxml import ElementTree
from protego import Protego
from pypdf import PdfReader

from pipeline.demo_site import DEFAULT_ROOT, running

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CHROME = ["Vi använder kakor", "Senaste nyheterna", "Dela på Facebook", "Dela på LinkedIn", "Lämna ett svar",
          "E-postadressen publiceras inte. Obligatoriska fält är märkta", "Tillgänglighetsredogörelse", "Till toppen"]


@pytest.fixture(scope="module")
def base():
    with running(0) as url:
        yield url


@pytest.fixture(scope="module")
def client(base):
    with httpx.Client(base_url=base, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def sitemap(client):
    """(loc, lastmod) of every sitemap entry."""
    root = ElementTree.fromstring(client.get("/sitemap.xml").content)
    return [(u.findtext(f"{SM}loc"), u.findtext(f"{SM}lastmod")) for u in root.iter(f"{SM}url")]


class _PageParser(HTMLParser):
    """Collects links and meta tags and checks that elements nest properly."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.links: list[str] = []
        self.meta: dict[str, str] = {}
        self.alternate: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "meta" and (a.get("name") or a.get("property")):
            self.meta[a.get("name") or a.get("property")] = a.get("content", "")
        if tag == "link" and a.get("rel") == "alternate":
            self.alternate.append(a.get("type", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


def test_robots_txt_has_absolute_sitemap_and_disallows_admin(client, base):
    resp = client.get("/robots.txt")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert "{{" not in resp.text and "crawl-delay" not in resp.text.lower()
    robots = Protego.parse(resp.text)
    assert list(robots.sitemaps) == [f"{base}/sitemap.xml"]
    assert not robots.can_fetch(f"{base}/admin/", "samverkan")
    assert robots.can_fetch(f"{base}/nyheter/", "samverkan")


def test_every_sitemap_url_is_served_with_lastmod(client, base, sitemap):
    assert len(sitemap) >= 15
    for loc, lastmod in sitemap:
        assert loc.startswith(base + "/"), loc
        assert lastmod and lastmod[:2] == "20", loc
        resp = client.get(loc)
        assert resp.status_code == 200, loc
        assert resp.headers["content-type"] in ("text/html; charset=utf-8", "application/pdf"), loc
    assert not any("/admin/" in loc for loc, _ in sitemap)


def test_rss_feed_lists_the_news_with_absolute_links(client, base, sitemap):
    resp = client.get("/rss.xml")
    assert resp.headers["content-type"].startswith("application/rss+xml")
    channel = ElementTree.fromstring(resp.content).find("channel")
    links = [item.findtext("link") for item in channel.iter("item")]
    assert len(links) >= 5
    assert {loc for loc, _ in sitemap} >= set(links)
    assert all(link.startswith(f"{base}/nyheter/") for link in links)


def test_crawl_from_start_page_reaches_every_sitemap_url(client, base, sitemap):
    seen, queue = set(), [f"{base}/"]
    while queue:
        url = queue.pop()
        if url in seen or urlsplit(url).path.startswith("/admin/"):
            continue
        seen.add(url)
        resp = client.get(url)
        if resp.headers["content-type"].startswith("text/html"):
            for href in _parse(resp.text).links:
                target = urljoin(url, href).split("#")[0]
                if target.startswith(base + "/"):
                    queue.append(target)
    assert {loc for loc, _ in sitemap} <= seen


def test_pages_are_well_formed_with_chrome_and_metadata(client, sitemap):
    for loc, _ in sitemap:
        if loc.endswith(".pdf"):
            continue
        html = client.get(loc).text
        page = _parse(html)
        assert not page.errors and not page.stack, (loc, page.errors[:3], page.stack)
        assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
        assert page.meta.get("author") and page.meta.get("description"), loc
        assert "application/rss+xml" in page.alternate, loc
        for text in CHROME:
            assert text in html, (loc, text)
        if "/nyheter/" in loc and not loc.endswith("/nyheter/"):
            assert page.meta["article:published_time"][:4] in ("2023", "2024", "2025"), loc


def test_conditional_requests_get_304(client):
    first = client.get("/nyheter/")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.status_code == 200 and etag and modified
    by_etag = client.get("/nyheter/", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304 and by_etag.content == b"" and by_etag.headers["etag"] == etag
    assert client.get("/nyheter/", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/nyheter/", headers={"If-None-Match": '"stale"', "If-Modified-Since": modified}).status_code == 200
    assert client.get("/nyheter/", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_directory_without_slash_redirects(client):
    resp = client.get("/nyheter")
    assert resp.status_code == 301 and resp.headers["location"] == "/nyheter/"


@pytest.mark.parametrize("path", ["/finns-inte/", "/nyheter/saknas.html", "/_src/start.html", "/build_site.py",
                                  "/make_pdf.py", "/../../pyproject.toml", "/%2e%2e/%2E%2E/pyproject.toml",
                                  "/assets/../../../pyproject.toml", "/nyheter/%00"])
def test_missing_private_or_outside_paths_are_404(base, path):
    # http.client sends the path verbatim (httpx would normalise the dot segments away)
    conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 404, path
        assert b"[project]" not in resp.read()
    finally:
        conn.close()


def test_pdf_minutes_have_extractable_swedish_text(client):
    resp = client.get("/dokument/protokoll-samverkansgruppen-2024-09-18.pdf")
    assert resp.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.content)).pages)
    assert "Vid pennan" in text and "å" in text and "Peter Nordin, Norrsunds kommun (ej närvarande)" in text


def test_server_listens_on_loopback_127_0_0_1_only(base):
    host, port = urlsplit(base).hostname, urlsplit(base).port
    assert host == "127.0.0.1"
    with socket.create_connection((host, port), timeout=2):
        pass
    if not sys.platform.startswith("linux"):
        pytest.skip("127.0.0.2 is only routed to loopback by default on Linux")
    with pytest.raises(OSError):  # bound to 0.0.0.0 this would connect
        socket.create_connection(("127.0.0.2", port), timeout=2).close()


def test_site_stays_small():
    total = sum(f.stat().st_size for f in DEFAULT_ROOT.rglob("*") if f.is_file())
    assert total < 1_000_000
