"""Missing and wrong charsets: Swedish pages must keep å, ä and ö (decode_html), and fetch keeps the bytes."""

import pytest
from faultserver import FaultServer, Reply, fast_settings, source_for

from pipeline.fetch import crawl, decode_html

TEXT = "Välkommen till Åre kommun! Mötet hölls på Öster­sund; närvarande: Åsa Öberg, sekreterare Märta Ek."


def page(charset_meta: str = "") -> str:
    return f"<html><head>{charset_meta}<title>Protokoll</title></head><body><p>{TEXT}</p></body></html>"


@pytest.fixture
def srv():
    with FaultServer() as server:
        yield server


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (page().encode("cp1252"), "text/html"),  # no charset anywhere
        (page().encode("cp1252"), ""),  # no Content-Type at all
        (page('<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">').encode("latin-1"), "text/html"),
        (page('<meta charset="windows-1252">').encode("cp1252"), "text/html"),
        (page().encode("cp1252"), "text/html; charset=utf-8"),  # wrong header
        (page('<meta charset="utf-8">').encode("cp1252"), "text/html"),  # wrong meta
        (page().encode("utf-8"), "text/html; charset=iso-8859-1"),  # UTF-8 labelled latin-1
        (page().encode("utf-8"), "text/html"),
        (page().encode("utf-8-sig"), "text/html; charset=iso-8859-1"),  # BOM wins
        (page().encode("utf-16"), "text/html"),
    ],
)
def test_decode_html_keeps_swedish_letters(body, content_type):
    assert TEXT in decode_html(body, content_type)


def test_decode_html_keeps_other_declared_charsets():
    russian = "<html><head><meta charset='koi8-r'></head><body><p>Добро пожаловать в коммуну</p></body></html>"
    assert "Добро пожаловать" in decode_html(russian.encode("koi8-r"), "text/html")


def test_crawled_windows_1252_page_without_charset(srv):
    srv.route("/", Reply(body=page().encode("cp1252"), content_type="text/html"))
    (result,) = crawl(source_for(srv), fast_settings())
    assert result.ok
    assert result.content == page().encode("cp1252")  # fetch keeps the bytes
    assert result.headers["content-type"] == "text/html"
    assert TEXT in decode_html(result.content, result.content_type)


def test_crawled_iso_8859_1_declared_in_meta_only(srv):
    body = page('<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">').encode("latin-1")
    srv.route("/", Reply(body=body, content_type="text/html"))
    (result,) = crawl(source_for(srv), fast_settings())
    assert result.ok and "charset" not in result.content_type
    assert TEXT in decode_html(result.content, result.content_type)


def test_charset_of_the_header_is_kept_as_sent(srv):
    srv.route("/", Reply(body=page().encode("latin-1"), content_type="text/html; charset=ISO-8859-1"))
    (result,) = crawl(source_for(srv), fast_settings())
    assert result.headers["content-type"] == "text/html; charset=ISO-8859-1"
    assert result.content_type == "text/html; charset=ISO-8859-1"
    assert TEXT in decode_html(result.content, result.content_type)
