"""URL canonicalisation, same-site checks and sitemap lastmod parsing."""

from datetime import datetime, timezone

import pytest

from pipeline.discovery import parse_lastmod, same_site
from pipeline.fetch import canonicalize

CASES = [
    # (url, base, canonical)
    ("HTTP://Example.COM:80/a/b/../c/./d.html#frag", None, "http://example.com/a/c/d.html"),
    ("https://example.com:443/", None, "https://example.com/"),
    ("https://example.com", None, "https://example.com/"),
    ("http://example.com:8080/x", None, "http://example.com:8080/x"),
    ("http://example.com/nyheter/", None, "http://example.com/nyheter"),
    ("http://example.com/nyheter//", None, "http://example.com/nyheter"),
    ("http://example.com/?utm_source=x&b=2&a=1&fbclid=y", None, "http://example.com/?a=1&b=2"),
    ("http://example.com/p?gclid=1&mc_cid=2&mc_eid=3&UTM_Campaign=v", None, "http://example.com/p"),
    ("http://example.com/s?q=b&q=a", None, "http://example.com/s?q=a&q=b"),
    ("http://example.com/a?b&a=", None, "http://example.com/a?a=&b"),
    ("http://example.com/%7euser/%c3%a5", None, "http://example.com/~user/%C3%A5"),
    ("http://example.com/möte protokoll.pdf", None, "http://example.com/m%C3%B6te%20protokoll.pdf"),
    ("http://example.com/sok?q=%e5r", None, "http://example.com/sok?q=%E5r"),  # latin-1 escape kept
    ("http://example.com/100%", None, "http://example.com/100%25"),
    ("http://example.com/a;jsessionid=ABC123?x=1&PHPSESSID=9", None, "http://example.com/a?x=1"),
    ("http://user:secret@example.com/", None, "http://example.com/"),
    ("http://Åre.se/", None, "http://xn--re-xia.se/"),
    ("http://example.com./x", None, "http://example.com/x"),
    ("  http://example.com/\n", None, "http://example.com/"),
    ("../b?utm_medium=x#top", "http://example.com/a/c/", "http://example.com/a/b"),
    ("item.html", "http://example.com/nyheter/", "http://example.com/nyheter/item.html"),
    ("item.html", "http://example.com/nyheter", "http://example.com/item.html"),
    ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
    ("?page=2", "http://example.com/lista?page=1", "http://example.com/lista?page=2"),
    ("#kontakt", "http://example.com/om", "http://example.com/om"),
    ("mailto:info@example.com", None, "mailto:info@example.com"),
]


@pytest.mark.parametrize(("url", "base", "expected"), CASES)
def test_canonicalize(url, base, expected):
    assert canonicalize(url, base) == expected


@pytest.mark.parametrize(("url", "base", "expected"), CASES)
def test_canonicalize_is_idempotent(url, base, expected):
    assert canonicalize(canonicalize(url, base)) == canonicalize(url, base)


def test_canonicalize_rejects_hostless_and_bad_port():
    with pytest.raises(ValueError):
        canonicalize("http:///path")
    with pytest.raises(ValueError):
        canonicalize("http://example.com:99999/")


@pytest.mark.parametrize(
    ("url", "allowed", "expected"),
    [
        ("https://www.kommun.se/a", ("kommun.se",), True),
        ("https://kommun.se/a", ("www.kommun.se",), True),
        ("https://evil-kommun.se/a", ("kommun.se",), False),
        ("https://sub.kommun.se/a", ("kommun.se",), False),
        ("http://127.0.0.1:8765/", ("127.0.0.1",), True),
        ("http://127.0.0.1:8765/", ("127.0.0.1:8765",), True),
        ("http://127.0.0.1:9999/", ("127.0.0.1:8765",), False),
        ("ftp://kommun.se/", ("kommun.se",), False),
    ],
)
def test_same_site(url, allowed, expected):
    assert same_site(url, allowed) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00+02:00", datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)),
        ("2024-05-01T08:00:00Z", datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)),
        ("2024-05-01", datetime(2024, 5, 2, tzinfo=timezone.utc)),  # a date means the end of that day
        ("2024-12", datetime(2025, 1, 1, tzinfo=timezone.utc)),
        ("2024", datetime(2025, 1, 1, tzinfo=timezone.utc)),
        ("igår", None),
        ("", None),
    ],
)
def test_parse_lastmod(text, expected):
    assert parse_lastmod(text) == expected
