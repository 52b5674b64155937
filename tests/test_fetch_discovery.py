"""Discovery: robots.txt, sitemaps (index, gzip, lastmod), RSS/Atom, links with depth and page limit,
PDFs, conditional GETs, and resuming from a saved frontier. Every test runs against tests/faultserver.py."""

import gzip
from datetime import datetime, timezone

import pytest
from faultserver import FaultServer, Reply, fast_settings, html, source_for

from pipeline.fetch import PageState, crawl

XML = "application/xml"


@pytest.fixture
def srv():
    with FaultServer() as server:
        yield server


def by_url(results):
    return {r.url: r for r in results}


def page_paths(srv):
    return [h.path for h in srv.hits() if not h.path.startswith(("/robots.txt", "/sitemap"))]


def test_robots_disallow_is_respected_and_user_agent_sent(srv):
    srv.route("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /\n\nUser-agent: samverkan\nDisallow: /hemligt\n",
                                   content_type="text/plain"))
    srv.route("/", Reply(body=html('<a href="/hemligt/protokoll">x</a> <a href="/oppet">y</a>')))
    srv.route("/oppet", Reply(body=html("öppet")))
    results = by_url(crawl(source_for(srv), fast_settings()))
    assert results[srv.url("/hemligt/protokoll")].outcome == "disallowed"
    assert results[srv.url("/oppet")].outcome == "ok"
    assert srv.hits("/hemligt/protokoll") == []
    assert all(h.headers["user-agent"] == fast_settings().user_agent for h in srv.hits())
    assert srv.hits()[0].path == "/robots.txt"


@pytest.mark.parametrize(("robots", "delay", "expected"), [("Crawl-delay: 0.4\n", 0.0, 0.4), ("", 0.25, 0.25)])
def test_crawl_delay_and_default_delay_space_requests(srv, robots, delay, expected):
    srv.route("/robots.txt", Reply(body=f"User-agent: samverkan\n{robots}Disallow:\n".encode(), content_type="text/plain"))
    srv.route("/", Reply(body=html('<a href="/a">a</a><a href="/b">b</a><a href="/c">c</a>')))
    for path in ("/a", "/b", "/c"):
        srv.route(path, Reply(body=html(path)))
    results = list(crawl(source_for(srv), fast_settings(delay=delay, global_concurrency=4)))
    assert [r.outcome for r in results] == ["ok"] * 4
    times = [h.time for h in srv.hits()]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) >= 4 and min(gaps) >= expected * 0.95, gaps


def test_sitemap_index_gzip_and_lastmod_skip(srv):
    srv.route("/robots.txt", Reply(body=f"User-agent: *\nDisallow:\nSitemap: {srv.url('/sitemap_index.xml')}\n".encode(),
                                   content_type="text/plain"))
    srv.route("/sitemap_index.xml", Reply(content_type=XML, body=(
        '<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>/sitemap-nyheter.xml.gz</loc></sitemap><sitemap><loc>/sitemap-sidor.xml</loc></sitemap>"
        "</sitemapindex>").encode()))
    news = ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            "<url><loc>/nyheter/gammal</loc><lastmod>2024-01-15</lastmod></url>"
            "<url><loc>/nyheter/samma-dag</loc><lastmod>2024-03-01</lastmod></url>"
            "<url><loc>/nyheter/ny</loc><lastmod>2024-06-01T10:00:00+02:00</lastmod></url></urlset>")
    srv.route("/sitemap-nyheter.xml.gz", Reply(body=gzip.compress(news.encode()), content_type="application/gzip"))
    srv.route("/sitemap-sidor.xml", Reply(content_type=XML, body=(
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>/om-oss/</loc></url></urlset>').encode()))
    srv.route("/", Reply(body=html('<a href="/nyheter/gammal">gammal</a>')))
    for path in ("/nyheter/samma-dag", "/nyheter/ny", "/om-oss/"):
        srv.route(path, Reply(body=html(path)))
    fetched = datetime(2024, 3, 1, 8, 0)  # naive = UTC, as DuckDB gives it back
    known = {srv.url(p): PageState(etag=None, last_modified=None, fetched_at=fetched)
             for p in ("/nyheter/gammal", "/nyheter/samma-dag", "/nyheter/ny")}
    results = by_url(crawl(source_for(srv), fast_settings(), known=known))
    skipped = results[srv.url("/nyheter/gammal")]
    assert skipped.outcome == "skipped" and skipped.status is None
    assert srv.hits("/nyheter/gammal") == []  # neither from the sitemap nor from the link on /
    assert results[srv.url("/nyheter/samma-dag")].outcome == "ok"  # lastmod is a date: end of that day counts
    assert results[srv.url("/nyheter/ny")].outcome == "ok"
    assert results[srv.url("/om-oss")].outcome == "ok"
    assert srv.hits("/om-oss/") and srv.hits("/om-oss") == []  # fetched as written, identified canonically
    assert results[srv.url("/om-oss")].final_url == srv.url("/om-oss/")
    assert set(results) == {srv.url(p) for p in ("/", "/nyheter/gammal", "/nyheter/samma-dag", "/nyheter/ny", "/om-oss")}


def test_rss_and_atom_feeds_are_discovered(srv):
    head = ('<link rel="alternate" type="application/rss+xml" href="/rss.xml">'
            '<link rel="alternate" type="application/atom+xml" href="/atom.xml">')
    srv.route("/", Reply(body=html("start", head)))
    srv.route("/rss.xml", Reply(content_type="application/rss+xml; charset=utf-8", body=(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Nyheter</title>'
        f"<item><title>A</title><link>{srv.url('/nyheter/a')}</link></item>"
        "<item><title>Extern</title><link>https://other.example/x</link></item></channel></rss>").encode()))
    srv.route("/atom.xml", Reply(content_type="application/atom+xml", body=(
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Protokoll</title>'
        '<entry><title>B</title><link rel="alternate" href="/protokoll/b"/><updated>2024-02-01T00:00:00Z</updated></entry>'
        "</feed>").encode()))
    srv.route("/nyheter/a", Reply(body=html("a")))
    srv.route("/protokoll/b", Reply(body=html("b")))
    results = by_url(crawl(source_for(srv), fast_settings()))
    assert results[srv.url("/nyheter/a")].outcome == "ok"
    assert results[srv.url("/protokoll/b")].outcome == "ok"
    assert srv.url("/rss.xml") not in results and srv.url("/atom.xml") not in results  # feeds are not pages
    assert all(r.ok for r in results.values())


def test_feed_listed_in_robots_as_sitemap(srv):
    srv.route("/robots.txt", Reply(body=f"User-agent: *\nSitemap: {srv.url('/feed')}\n".encode(), content_type="text/plain"))
    srv.route("/feed", Reply(content_type="application/rss+xml", body=(
        "<rss><channel><item><link>/kalender/1</link></item></channel></rss>").encode()))
    srv.route("/", Reply(body=html("start")))
    srv.route("/kalender/1", Reply(body=html("möte")))
    results = by_url(crawl(source_for(srv), fast_settings()))
    assert results[srv.url("/kalender/1")].outcome == "ok"


def _chain(srv, length):
    for i in range(length):
        srv.route(f"/p{i}", Reply(body=html(f'<a href="/p{i + 1}">next</a>')))


def test_link_following_respects_max_depth(srv):
    _chain(srv, 6)
    results = list(crawl(source_for(srv, "/p0", max_depth=2), fast_settings()))
    assert [(r.url, r.depth) for r in results] == [(srv.url(f"/p{i}"), i) for i in range(3)]
    assert results[2].links == [srv.url("/p3")]  # reported for the frontier, not followed
    assert srv.hits("/p3") == []


def test_page_limit_counts_page_requests(srv):
    srv.route("/", Reply(body=html("".join(f'<a href="/n{i}">{i}</a>' for i in range(20)))))
    for i in range(20):
        srv.route(f"/n{i}", Reply(body=html(str(i))))
    results = list(crawl(source_for(srv, page_limit=5), fast_settings()))
    assert len(results) == 5 and len(page_paths(srv)) == 5
    assert len(results[0].links) == 20


def test_follow_links_off_fetches_only_the_start(srv):
    srv.route("/", Reply(body=html('<a href="/a">a</a>')))
    results = list(crawl(source_for(srv), fast_settings(follow_links=False)))
    assert [r.url for r in results] == [srv.url("/")] and results[0].links == [srv.url("/a")]


def test_linked_pdf_is_fetched_as_pdf(srv):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    srv.route("/", Reply(body=html('<a href="/protokoll/2024-03-01.pdf">Protokoll (pdf)</a> <a href="/bild.png">bild</a>')))
    srv.route("/protokoll/2024-03-01.pdf", Reply(body=pdf, content_type="application/pdf"))
    results = by_url(crawl(source_for(srv), fast_settings()))
    doc = results[srv.url("/protokoll/2024-03-01.pdf")]
    assert doc.ok and doc.content_type == "application/pdf" and doc.content == pdf and doc.depth == 1
    assert srv.url("/bild.png") not in results and srv.hits("/bild.png") == []


def test_conditional_get_gives_not_modified(srv):
    def page(hit):
        if hit.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(body=html("möte"), headers={"ETag": '"v1"', "Last-Modified": "Fri, 01 Mar 2024 08:00:00 GMT"})

    srv.route("/", page)
    (first,) = crawl(source_for(srv), fast_settings())
    assert first.outcome == "ok" and first.etag == '"v1"' and first.content_hash
    known = {first.url: PageState(first.etag, first.last_modified, first.fetched_at)}
    (second,) = crawl(source_for(srv), fast_settings(), known=known)
    assert second.outcome == "not_modified" and second.status == 304 and second.content == b""
    assert second.etag == '"v1"' and second.last_modified == "Fri, 01 Mar 2024 08:00:00 GMT"
    sent = srv.hits("/")[-1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Fri, 01 Mar 2024 08:00:00 GMT"


def test_known_page_no_longer_linked_is_revalidated_and_gone(srv):
    srv.route("/", Reply(body=html("start")))
    old = srv.url("/borttagen")
    results = by_url(crawl(source_for(srv), fast_settings(), known={old: PageState(fetched_at=datetime.now(timezone.utc))}))
    assert results[old].outcome == "gone" and results[old].status == 404


def test_resume_from_queue_and_seen_does_not_refetch(srv):
    srv.route("/", Reply(body=html('<a href="/a">a</a><a href="/b">b</a>')))
    srv.route("/a", Reply(body=html('<a href="/c">c</a>')))
    srv.route("/b", Reply(body=html("b")))
    srv.route("/c", Reply(body=html("c")))
    results = list(crawl(source_for(srv), fast_settings(), queue=[(srv.url("/b"), 1), (srv.url("/c"), 2)],
                         seen={srv.url("/"), srv.url("/a")}))
    assert sorted(r.url for r in results) == [srv.url("/b"), srv.url("/c")]
    assert srv.hits("/") == [] and srv.hits("/a") == []


@pytest.mark.parametrize(("per_host", "overlap"), [(1, False), (3, True)])
def test_per_host_concurrency(srv, per_host, overlap):
    srv.route("/", Reply(body=html("".join(f'<a href="/x{i}">{i}</a>' for i in range(3)))))
    for i in range(3):
        srv.route(f"/x{i}", Reply(body=html(str(i)), delay=0.3))
    list(crawl(source_for(srv), fast_settings(per_host_concurrency=per_host, global_concurrency=4)))
    starts = sorted(h.time for h in srv.hits() if h.path.startswith("/x"))
    closest = min(b - a for a, b in zip(starts, starts[1:]))
    assert (closest < 0.15) is overlap, starts


def test_feed_and_sitemap_reached_through_ordinary_links(srv):
    srv.route("/", Reply(body=html('<a href="/rss.xml">RSS</a> <a href="/karta.xml">Webbplatskarta</a>')))
    srv.route("/rss.xml", Reply(content_type="application/rss+xml; charset=utf-8", body=(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f'<atom:link href="{srv.url("/rss.xml")}" rel="self"/><item><link>/nyheter/a</link></item></channel></rss>').encode()))
    srv.route("/karta.xml", Reply(content_type="text/xml", body=(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>/om-oss</loc></url></urlset>").encode()))
    srv.route("/nyheter/a", Reply(body=html("a")))
    srv.route("/om-oss", Reply(body=html("om")))
    results = by_url(crawl(source_for(srv, page_limit=3), fast_settings()))
    assert {u: r.outcome for u, r in results.items()} == {
        srv.url("/"): "ok", srv.url("/nyheter/a"): "ok", srv.url("/om-oss"): "ok"}
    assert results[srv.url("/nyheter/a")].depth == 2  # / (0) -> rss.xml (1) -> item (2)


def test_feed_links_are_reported_for_the_frontier(srv):
    srv.route("/", Reply(body=html("start", '<link rel="alternate" type="application/rss+xml" href="/rss.xml">')))
    srv.route("/rss.xml", Reply(content_type="application/rss+xml", body=b"<rss><channel></channel></rss>"))
    (start,) = crawl(source_for(srv), fast_settings())
    assert start.links == [srv.url("/rss.xml")]


@pytest.mark.parametrize(("global_limit", "overlap"), [(1, False), (2, True)])
def test_global_concurrency_across_hosts(srv, global_limit, overlap):
    # 127.0.0.1 and localhost are two hosts to the crawler (one politeness slot each), one server here.
    for i in range(3):
        srv.route(f"/x{i}", Reply(body=html(str(i)), delay=0.3))
    source = source_for(srv, allowed_hosts=("127.0.0.1", "localhost"))
    source = type(source)(**{**source.__dict__, "start_urls": (srv.url("/x0"), f"http://localhost:{srv.port}/x1")})
    results = list(crawl(source, fast_settings(global_concurrency=global_limit, per_host_concurrency=1)))
    assert [r.outcome for r in results] == ["ok", "ok"]
    starts = sorted(h.time for h in srv.hits() if h.path.startswith("/x"))
    assert (starts[1] - starts[0] < 0.15) is overlap, starts


def test_closing_the_iterator_stops_the_crawl(srv):
    import time

    srv.route("/", Reply(body=html("".join(f'<a href="/n{i}">{i}</a>' for i in range(50)))))
    crawler = crawl(source_for(srv), fast_settings(delay=0.2))
    first = next(crawler)
    started = time.monotonic()
    crawler.close()
    assert first.ok and time.monotonic() - started < 1.0
    assert len([h for h in srv.hits() if h.path.startswith("/n")]) <= 2


def test_progress_reports_done_and_queued_per_host(srv):
    srv.route("/", Reply(body=html('<a href="/a">a</a><a href="/b">b</a>')))
    reports = []
    list(crawl(source_for(srv), fast_settings(), progress=reports.append))
    assert reports[-1] == {"127.0.0.1": {"done": 3, "queued": 0}}
    assert {"done": 1, "queued": 2} in [r["127.0.0.1"] for r in reports]


def test_interrupted_crawl_resumes_from_saved_frontier(srv):
    """What the store does: persist each result's URL as seen and its links as frontier, resume from both."""
    site = {"/": ["/a", "/b", "/c"], "/a": ["/d", "/e"], "/b": ["/f"], "/c": [], "/d": [], "/e": [], "/f": ["/g/"], "/g/": []}
    for path, links in site.items():
        srv.route(path, Reply(body=html("".join(f'<a href="{link}">{link}</a>' for link in links))))
    everything = {srv.url(p.rstrip("/") or "/") for p in site}
    crawler = crawl(source_for(srv), fast_settings())
    first = [next(crawler) for _ in range(3)]
    crawler.close()  # the "kill"
    seen = {r.url for r in first}
    frontier = {(link, r.depth + 1) for r in first for link in r.links} - {(u, d) for u in seen for d in range(9)}
    before = len(srv.hits())
    resumed = list(crawl(source_for(srv), fast_settings(), queue=sorted(frontier), seen=seen))
    resumed_paths = [h.path for h in srv.hits()[before:]]
    assert seen | {r.url for r in resumed} == everything
    assert not seen & {r.url for r in resumed}
    assert not any(srv.url(p) in seen for p in resumed_paths if p not in ("/robots.txt", "/sitemap.xml"))
    assert all(r.ok for r in resumed)
