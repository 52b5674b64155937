"""The fault table: each misbehaving-server case against tests/faultserver.py, and what crawl makes of it.
No case may raise out of crawl; each ends as a FetchResult with a reason."""

import gzip
import os

import pytest
from faultserver import FaultServer, Reply, blackhole, fast_settings, html, source_for

from pipeline.fetch import crawl
from pipeline.records import Source


@pytest.fixture
def srv():
    with FaultServer() as server:
        yield server


def one(srv, path, **settings):
    """Crawl ``path`` alone (links not followed) and return its result."""
    results = {r.url: r for r in crawl(source_for(srv, path), fast_settings(follow_links=False, **settings))}
    return results[srv.url(path).rstrip("/") if path != "/" else srv.url("/")]


def gaps(hits):
    return [b.time - a.time for a, b in zip(hits, hits[1:])]


def test_5xx_is_retried_with_backoff_then_succeeds(srv):
    srv.route("/", [Reply(500), Reply(503), Reply(502), Reply(body=html("äntligen"))])
    result = one(srv, "/", retries=3, backoff_base=0.1)
    assert result.outcome == "ok" and result.status == 200
    hits = srv.hits("/")
    assert len(hits) == 4
    spacing = gaps(hits)
    assert spacing[0] >= 0.1 and spacing[1] >= 0.2 and spacing[2] >= 0.4, spacing  # exponential


def test_5xx_gives_up_after_the_retries(srv):
    srv.route("/", Reply(500))
    result = one(srv, "/", retries=2)
    assert result.outcome == "failed" and result.error == "http 500 after 2 retries" and result.status == 500
    assert len(srv.hits("/")) == 3


def test_429_waits_for_retry_after(srv):
    srv.route("/", [Reply(429, headers={"Retry-After": "1"}), Reply(body=html("ok"))])
    result = one(srv, "/")
    assert result.outcome == "ok"
    assert gaps(srv.hits("/"))[0] >= 0.95


def test_429_retry_after_over_the_cap_fails_at_once(srv):
    srv.route("/", Reply(429, headers={"Retry-After": "3600"}))
    result = one(srv, "/")
    assert result.outcome == "failed" and "Retry-After 3600s over the 60s cap" in result.error
    assert len(srv.hits("/")) == 1


def test_connect_timeout():
    with blackhole() as port:
        source = Source(name="t", start_urls=(f"http://127.0.0.1:{port}/",), allowed_hosts=("127.0.0.1",), allow_private=True)
        results = list(crawl(source, fast_settings(connect_timeout=0.2, retries=1)))
    robots, page = results
    assert robots.url.endswith("/robots.txt") and robots.outcome == "failed"
    assert robots.error.startswith("robots.txt unreachable (timeout: connect after 1 retry)")
    assert page.outcome == "disallowed"  # RFC 9309: unreachable robots.txt means complete disallow


def test_read_timeout(srv):
    srv.route("/", Reply(body=html("sent too late"), delay=3))
    result = one(srv, "/", read_timeout=0.3, retries=1)
    assert result.outcome == "failed" and result.error == "timeout: read after 1 retry"
    assert len(srv.hits("/")) == 2


def test_slow_drip_body_hits_the_total_timeout(srv):
    import time

    def drip():
        for _ in range(20):
            yield b"<p>" + b"x" * 10
            time.sleep(0.1)

    srv.route("/", Reply(chunks=drip))
    result = one(srv, "/", total_timeout=0.5, retries=0)
    assert result.outcome == "failed" and result.error.startswith("timeout: total")


def test_truncated_body(srv):
    srv.route("/", Reply(body=html("halv sida"), content_length=5000))
    result = one(srv, "/", retries=1)
    assert result.outcome == "failed" and result.error.startswith("truncated body") and result.content == b""
    assert len(srv.hits("/")) == 2  # retried once


def test_redirect_chain_is_followed(srv):
    for i in range(1, 4):
        srv.route(f"/r{i}", Reply(301 if i % 2 else 302, headers={"Location": f"/r{i + 1}"}))
    srv.route("/r4", Reply(body=html("framme")))
    result = one(srv, "/r1")
    assert result.outcome == "ok" and result.url == srv.url("/r1") and result.final_url == srv.url("/r4")
    assert b"framme" in result.content


def test_redirect_loop_is_stopped(srv):
    srv.route("/a", Reply(302, headers={"Location": "/b"}))
    srv.route("/b", Reply(302, headers={"Location": srv.url("/a")}))
    result = one(srv, "/a")
    assert result.outcome == "failed" and result.error.startswith("redirect loop")
    assert len(srv.hits("/a")) == 1 and len(srv.hits("/b")) == 1  # not retried


def test_too_many_redirects(srv):
    for i in range(10):
        srv.route(f"/h{i}", Reply(301, headers={"Location": f"/h{i + 1}"}))
    result = one(srv, "/h0", max_redirects=3)
    assert result.outcome == "failed" and result.error == "too many redirects: >3"
    assert len(srv.hits()) == 1 + 1 + 4  # robots.txt, sitemap.xml, 4 hops


def test_redirect_to_already_fetched_page_is_a_duplicate(srv):
    srv.route("/", Reply(body=html('<a href="/gammal">g</a>')))
    srv.route("/gammal", Reply(301, headers={"Location": "/"}))
    results = {r.url: r for r in crawl(source_for(srv), fast_settings())}
    assert results[srv.url("/gammal")].outcome == "skipped" and "duplicate" in results[srv.url("/gammal")].error


def test_body_over_the_size_limit_is_cut_off(srv):
    def endless():
        for _ in range(200):  # 12.8 MB if nobody stops us
            yield b"<p>" + b"a" * 65533

    srv.route("/", Reply(chunks=endless))
    result = one(srv, "/", max_bytes=1_000_000)
    assert result.outcome == "failed" and result.error == "too large: >1000000 bytes" and result.content == b""


def test_declared_length_over_the_limit_is_refused_before_reading(srv):
    srv.route("/", Reply(body=b"x" * 2_000_000))
    result = one(srv, "/", max_bytes=1_000_000)
    assert result.outcome == "failed" and result.error == "too large: >1000000 bytes (Content-Length 2000000)"


def test_gzip_bomb(srv):
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)  # ~50 kB on the wire
    srv.route("/", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    result = one(srv, "/", max_decompressed_bytes=2_000_000)
    assert len(bomb) < 100_000
    assert result.outcome == "failed" and result.error == "too large: decompressed >2000000 bytes (gzip bomb)"


def test_gzip_encoded_page_is_decoded(srv):
    srv.route("/", Reply(body=html("komprimerad sida åäö"), gzip=True))
    result = one(srv, "/")
    assert result.ok and result.content == html("komprimerad sida åäö")


@pytest.mark.parametrize(
    ("body", "what"),
    [(b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "png"), (b"PK\x03\x04" + os.urandom(2000), "zip"),
     (b"<ht" + b"\x00\x01\x02" * 500, "NUL bytes")],
)
def test_binary_served_as_html(srv, body, what):
    srv.route("/", Reply(body=body, content_type="text/html"))
    result = one(srv, "/")
    assert result.outcome == "failed" and result.error == f"binary content ({what}) served as text/html"


def test_pdf_served_as_html_is_kept_as_pdf(srv):
    srv.route("/", Reply(body=b"%PDF-1.4\n%%EOF\n", content_type="text/html"))
    result = one(srv, "/")
    assert result.ok and result.content.startswith(b"%PDF")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>/&lol9;</loc></url></urlset>"""


def robots_with_sitemap(srv, path):
    srv.route("/robots.txt", Reply(body=f"User-agent: *\nSitemap: {srv.url(path)}\n".encode(), content_type="text/plain"))


def test_xml_bomb_sitemap_is_refused_and_the_crawl_goes_on(srv):
    robots_with_sitemap(srv, "/sitemap.xml")
    srv.route("/sitemap.xml", Reply(body=BILLION_LAUGHS, content_type="application/xml"))
    srv.route("/", Reply(body=html("start")))
    results = {r.url: r for r in crawl(source_for(srv), fast_settings())}
    bomb = results[srv.url("/sitemap.xml")]
    assert bomb.outcome == "failed" and bomb.error == "xml bomb/invalid sitemap: EntitiesForbidden"
    assert results[srv.url("/")].ok and len(results) == 2


def test_enormous_sitemap_is_cut_at_the_url_limit(srv):
    robots_with_sitemap(srv, "/sitemap.xml")
    urls = "".join(f"<url><loc>/sida/{i}</loc></url>" for i in range(5000))
    srv.route("/sitemap.xml", Reply(body=f"<urlset>{urls}</urlset>".encode(), content_type="text/xml"))
    srv.route("/", Reply(body=html("start")))
    results = list(crawl(source_for(srv, page_limit=1000), fast_settings(max_sitemap_urls=50)))
    failed = [r for r in results if r.outcome == "failed"]
    assert len(failed) == 1 and "over limit: >50 urls, kept the first 50" in failed[0].error
    assert sum(r.outcome == "gone" for r in results) == 50  # /sida/0 … /sida/49, all 404 here
    assert not srv.hits("/sida/50")


def test_sitemap_over_the_byte_limit(srv):
    robots_with_sitemap(srv, "/sitemap.xml")
    urls = "".join(f"<url><loc>/sida/{i}</loc></url>" for i in range(50_000))
    srv.route("/sitemap.xml", Reply(body=f"<urlset>{urls}</urlset>".encode(), content_type="text/xml"))
    srv.route("/", Reply(body=html("start")))
    results = {r.url: r for r in crawl(source_for(srv, page_limit=3), fast_settings(max_sitemap_bytes=100_000))}
    assert results[srv.url("/sitemap.xml")].error.startswith("sitemap/feed: too large: >100000 bytes")


def test_robots_txt_server_error_disallows_the_host(srv):
    srv.route("/robots.txt", Reply(503))
    srv.route("/", Reply(body=html("start")))
    results = {r.url: r for r in crawl(source_for(srv), fast_settings(retries=1))}
    assert results[srv.url("/robots.txt")].outcome == "failed"
    assert results[srv.url("/")].outcome == "disallowed" and srv.hits("/") == []


def test_unsupported_content_type(srv):
    srv.route("/", Reply(body=b"BEGIN:VCALENDAR", content_type="text/calendar"))
    result = one(srv, "/")
    assert result.outcome == "failed" and result.error == "unsupported content type: text/calendar"


def test_gone_and_forbidden(srv):
    srv.route("/", Reply(body=html('<a href="/borta">b</a><a href="/stangd">s</a><a href="/tidigare">t</a>')))
    srv.route("/borta", Reply(404))
    srv.route("/tidigare", Reply(410))
    srv.route("/stangd", Reply(403))
    results = {r.url: r for r in crawl(source_for(srv), fast_settings())}
    assert results[srv.url("/borta")].outcome == "gone" and results[srv.url("/tidigare")].outcome == "gone"
    assert results[srv.url("/stangd")].outcome == "failed" and results[srv.url("/stangd")].error == "http 403"
    assert len(srv.hits("/stangd")) == 1  # 4xx is not retried


def test_a_bug_in_one_task_becomes_a_failed_result(srv, monkeypatch):
    import pipeline.fetch

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline.fetch, "extract_links", boom)
    srv.route("/", Reply(body=html("x")))
    (result,) = crawl(source_for(srv), fast_settings())
    assert result.url == srv.url("/") and result.outcome == "failed" and result.error == "internal error: RuntimeError('boom')"
