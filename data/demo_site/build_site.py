"""Build the demo partner site: page sources in ``_src/`` → HTML pages, ``sitemap.xml``, ``rss.xml``.

Each ``_src/*.html`` file is a YAML front-matter block between ``---`` lines followed by the
page's main-text HTML. The site chrome (cookie banner, menu, breadcrumbs, share buttons,
comment form, sidebar, footer) is added here, identically on every page. The placeholders
``{{NEWS_LIST}}``, ``{{PROJECT_LIST}}`` and ``{{MINUTES_LIST}}`` in a body become link lists.
Absolute URLs in ``sitemap.xml`` and ``rss.xml`` start with ``{{BASE_URL}}``, which
``pipeline.demo_site`` replaces with the server's address when it serves them.

The output is deterministic (dates come from the front matter, never from the clock), so the
committed files only change when a source changes. Run from the repository root:

    .venv/bin/python data/demo_site/build_site.py
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import format_datetime
from pathlib import Path

import yaml

SITE_DIR = Path(__file__).resolve().parent
SRC_DIR = SITE_DIR / "_src"
SITE_NAME = "Samordningsförbundet Ålviksbygden"
BASE = "{{BASE_URL}}"
EXTRA_SITEMAP = [("/dokument/protokoll-samverkansgruppen-2024-09-18.pdf", "2024-09-20")]
MONTHS = ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
          "september", "oktober", "november", "december"]
SECTIONS = {"news": ("Nyheter", "/nyheter/"), "project": ("Projekt", "/projekt/"),
            "minutes": ("Protokoll", "/protokoll/")}


@dataclass
class Page:
    """One page: front matter plus body HTML."""

    title: str
    path: str  # URL path, e.g. "/nyheter/x/"
    kind: str  # page | news | project | minutes
    description: str
    author: str
    body: str
    published: datetime | None = None
    modified: date | None = None
    summary: str | None = None

    @property
    def lastmod(self) -> date:
        return self.modified or (self.published.date() if self.published else date(2025, 1, 1))


def load_pages(src_dir: Path = SRC_DIR) -> list[Page]:
    """Read every ``*.html`` source file in ``src_dir``."""
    pages = []
    for file in sorted(src_dir.glob("*.html")):
        _, front, body = file.read_text(encoding="utf-8").split("---\n", 2)
        meta = yaml.safe_load(front)
        published = meta.get("published")
        pages.append(Page(
            title=meta["title"], path=meta["path"], kind=meta.get("kind", "page"),
            description=meta["description"], author=meta.get("author", SITE_NAME), body=body.strip(),
            published=datetime.fromisoformat(str(published)) if published else None,
            modified=meta.get("modified"), summary=meta.get("summary"),
        ))
    return pages


def swedish_date(d: date) -> str:
    """``date(2024, 3, 12)`` → ``"12 mars 2024"``."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def _by_date(pages: list[Page], kind: str) -> list[Page]:
    return sorted((p for p in pages if p.kind == kind), key=lambda p: p.published, reverse=True)


def _link_list(pages: list[Page], css: str) -> str:
    items = []
    for p in pages:
        when = f' <time datetime="{p.published.date().isoformat()}">{swedish_date(p.published)}</time>' if p.published else ""
        items.append(f'<li><a href="{p.path}">{html.escape(p.title)}</a>{when}<br>{html.escape(p.summary or p.description)}</li>')
    return f'<ul class="{css}">\n' + "\n".join(items) + "\n</ul>"


def render(page: Page, pages: list[Page]) -> str:
    """The complete HTML document of one page."""
    esc = html.escape
    body = (page.body
            .replace("{{NEWS_LIST}}", _link_list(_by_date(pages, "news"), "news-list"))
            .replace("{{PROJECT_LIST}}", _link_list(_by_date(pages, "project"), "project-list"))
            .replace("{{MINUTES_LIST}}", _link_list(_by_date(pages, "minutes"), "minutes-list")))
    article_meta = entry_meta = ""
    if page.published:
        iso = page.published.isoformat()
        article_meta = (f'\n<meta property="article:published_time" content="{iso}">'
                        f'\n<meta property="article:modified_time" content="{page.lastmod.isoformat()}">')
        entry_meta = (f'\n<div class="entry-meta">Publicerad <time class="entry-date published" datetime="{iso}">'
                      f'{swedish_date(page.published)}</time> av <span class="author vcard">{esc(page.author)}</span></div>')
    crumbs = ['<a href="/">Start</a>']
    if page.kind in SECTIONS:
        name, href = SECTIONS[page.kind]
        crumbs.append(f'<a href="{href}">{name}</a>')
    if page.path != "/":
        crumbs.append(f'<span aria-current="page">{esc(page.title)}</span>')
    latest = "\n".join(f'<li><a href="{p.path}">{esc(p.title)}</a> <span class="post-date">{swedish_date(p.published)}</span></li>'
                       for p in _by_date(pages, "news")[:5])
    return TEMPLATE.format(
        title=esc(page.title), site=SITE_NAME, description=esc(page.description, quote=True),
        author=esc(page.author, quote=True), article_meta=article_meta,
        og_type="article" if page.published else "website", kind=page.kind,
        crumbs=" › ".join(crumbs), entry_meta=entry_meta, body=body, latest=latest,
    )


def sitemap(pages: list[Page]) -> str:
    """``sitemap.xml`` listing every page and the PDF, with ``<lastmod>``."""
    entries = sorted([(p.path, p.lastmod.isoformat()) for p in pages] + EXTRA_SITEMAP)
    urls = "\n".join(f"  <url>\n    <loc>{BASE}{path}</loc>\n    <lastmod>{mod}</lastmod>\n  </url>" for path, mod in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + urls + "\n</urlset>\n")


def rss(pages: list[Page]) -> str:
    """RSS 2.0 feed of the news posts, newest first."""
    news = _by_date(pages, "news")
    items = "\n".join(
        "    <item>\n"
        f"      <title>{html.escape(p.title)}</title>\n"
        f"      <link>{BASE}{p.path}</link>\n"
        f'      <guid isPermaLink="true">{BASE}{p.path}</guid>\n'
        f"      <pubDate>{format_datetime(p.published)}</pubDate>\n"
        f"      <dc:creator>{html.escape(p.author)}</dc:creator>\n"
        f"      <description>{html.escape(p.summary or p.description)}</description>\n"
        "    </item>"
        for p in news
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
            "  <channel>\n"
            f"    <title>Nyheter – {SITE_NAME}</title>\n"
            f"    <link>{BASE}/nyheter/</link>\n"
            f'    <atom:link href="{BASE}/rss.xml" rel="self" type="application/rss+xml"/>\n'
            "    <description>Nyheter om samverkan kring funktionshinderfrågor i Ålvik och Norrsund</description>\n"
            "    <language>sv-SE</language>\n"
            f"    <lastBuildDate>{format_datetime(news[0].published)}</lastBuildDate>\n"
            f"{items}\n  </channel>\n</rss>\n")


def build(site_dir: Path = SITE_DIR) -> list[Path]:
    """Write all pages, ``sitemap.xml`` and ``rss.xml``; return the written paths."""
    pages = load_pages(site_dir / "_src")
    written = []
    for page in pages:
        out = site_dir / page.path.strip("/") / "index.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(page, pages), encoding="utf-8")
        written.append(out)
    for name, text in (("sitemap.xml", sitemap(pages)), ("rss.xml", rss(pages))):
        (site_dir / name).write_text(text, encoding="utf-8")
        written.append(site_dir / name)
    return written


TEMPLATE = """<!DOCTYPE html>
<html lang="sv">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {site}</title>
<meta name="description" content="{description}">
<meta name="author" content="{author}">{article_meta}
<meta property="og:site_name" content="{site}">
<meta property="og:title" content="{title}">
<meta property="og:type" content="{og_type}">
<meta property="og:locale" content="sv_SE">
<link rel="stylesheet" href="/assets/style.css">
<link rel="alternate" type="application/rss+xml" title="Nyheter från {site}" href="/rss.xml">
</head>
<body id="top" class="{kind}">
<a class="skip-link" href="#innehall">Hoppa till innehållet</a>
<div id="cookie-notice" class="cookie-banner" role="region" aria-label="Information om kakor">
<p>Vi använder kakor (cookies) för att webbplatsen ska fungera och för att få anonym statistik över hur den används. Du väljer själv om du godkänner statistikkakorna. <a href="/om-oss/#kakor">Läs mer om kakor</a></p>
<div class="cookie-buttons"><button type="button" class="cookie-accept">Godkänn alla kakor</button> <button type="button" class="cookie-necessary">Endast nödvändiga kakor</button></div>
</div>
<header class="site-header">
<div class="site-branding"><a href="/" rel="home" class="site-title">{site}</a>
<p class="site-description">Samverkan för delaktighet och arbete i Ålvik och Norrsund</p></div>
<form class="search-form" role="search" action="/" method="get"><label for="s">Sök på webbplatsen</label> <input type="search" id="s" name="s"> <button type="submit">Sök</button></form>
<nav class="main-navigation" aria-label="Huvudmeny">
<ul class="menu">
<li><a href="/">Start</a></li>
<li><a href="/nyheter/">Nyheter</a></li>
<li><a href="/projekt/">Projekt</a></li>
<li><a href="/protokoll/">Protokoll</a></li>
<li><a href="/dokument/">Dokument</a></li>
<li><a href="/om-oss/">Om oss</a></li>
<li><a href="/kontakt/">Kontakt</a></li>
</ul>
</nav>
</header>
<nav class="breadcrumbs" aria-label="Brödsmulor"><span class="breadcrumbs-label">Du är här:</span> {crumbs}</nav>
<div class="site-content">
<main id="innehall" class="content-area">
<article class="entry {kind}">
<header class="entry-header">
<h1 class="entry-title">{title}</h1>{entry_meta}
</header>
<div class="entry-content">
{body}
</div>
<footer class="entry-footer">
<div class="share-buttons"><span class="share-label">Dela sidan:</span>
<a class="share share-facebook" href="https://www.facebook.com/sharer/sharer.php">Dela på Facebook</a>
<a class="share share-linkedin" href="https://www.linkedin.com/sharing/share-offsite/">Dela på LinkedIn</a>
<a class="share share-email" href="mailto:?subject=Tips%20fr%C3%A5n%20Samordningsf%C3%B6rbundet%20%C3%85lviksbygden">Dela via e-post</a></div>
</footer>
</article>
<section id="comments" class="comments-area">
<div id="respond" class="comment-respond">
<h2 id="reply-title" class="comment-reply-title">Lämna ett svar</h2>
<form action="/kommentarer/" method="post" id="commentform" class="comment-form">
<p class="comment-notes">E-postadressen publiceras inte. Obligatoriska fält är märkta <span class="required">*</span></p>
<p class="comment-form-comment"><label for="comment">Kommentar <span class="required">*</span></label> <textarea id="comment" name="comment" rows="6" required></textarea></p>
<p class="comment-form-author"><label for="author">Namn <span class="required">*</span></label> <input id="author" name="author" type="text" required></p>
<p class="comment-form-email"><label for="email">E-postadress <span class="required">*</span></label> <input id="email" name="email" type="email" required></p>
<p class="comment-form-cookies-consent"><input id="consent" name="consent" type="checkbox"> <label for="consent">Spara mitt namn och min e-postadress i denna webbläsare till nästa gång jag skriver en kommentar.</label></p>
<p class="form-submit"><input type="submit" id="submit" class="submit" value="Publicera kommentar"></p>
</form>
</div>
</section>
</main>
<aside id="secondary" class="sidebar widget-area" aria-label="Sidofält">
<section class="widget widget_recent_entries">
<h2 class="widget-title">Senaste nyheterna</h2>
<ul>
{latest}
</ul>
</section>
<section class="widget widget_text">
<h2 class="widget-title">Prenumerera</h2>
<p>Få våra nyheter direkt via <a href="/rss.xml">RSS-flödet</a>.</p>
</section>
</aside>
</div>
<footer class="site-footer">
<div class="footer-contact">
<h2>{site}</h2>
<p>Medborgarhuset, Storgatan 14, 452 30 Ålvik<br>Telefon: 031-390 06 40 (mån–tor kl. 9–11)<br>E-post: <a href="mailto:kansliet@alviksbygden.example">kansliet@alviksbygden.example</a><br>Organisationsnummer: 222000-1741</p>
</div>
<ul class="footer-links">
<li><a href="/tillganglighetsredogorelse/">Tillgänglighetsredogörelse</a></li>
<li><a href="/om-oss/#kakor">Om kakor</a></li>
<li><a href="/kontakt/">Kontakta oss</a></li>
<li><a href="/admin/">Logga in</a></li>
</ul>
<p class="copyright">© 2025 {site}</p>
<a href="#top" class="to-top">Till toppen</a>
</footer>
</body>
</html>
"""


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(SITE_DIR))
