"""A generated Swedish partner site of any size, served on 127.0.0.1, for crawl tests and benchmarks.

Pages link onwards to a few others and are all listed in the sitemap with ``lastmod``; each
answers conditional GETs (ETag / Last-Modified). ``change(pages)`` gives pages new text, a new
ETag and a new lastmod, as a site editor would.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SENTENCES = [
    "Socialförvaltningen har tillsammans med brukarorganisationerna tagit fram en ny rutin för samverkan.",
    "Rutinen gäller alla som får insatser enligt LSS och ska följas upp en gång om året.",
    "Försäkringskassan och Arbetsförmedlingen deltar i arbetet genom samordningsförbundet.",
    "Under hösten genomförs tre workshoppar där medarbetare och brukare möts.",
    "Resultatet redovisas för socialnämnden i början av nästa år.",
    "Brukarrådet har lämnat synpunkter på förslaget och vill att det blir lättare att få kontakt med handläggare.",
    "Projektet finansieras av samordningsförbundet och pågår till och med december.",
    "Daglig verksamhet erbjuds på sex platser i kommunen, bland annat i ett café och en trädgård.",
    "Ansökan om bostadsanpassning görs hos kommunens byggnadsnämnd.",
    "Inspektionen för vård och omsorg granskar hur kommunen följer upp beslut om boende.",
    "Region Västermark ansvarar för habilitering och hjälpmedel för barn och vuxna.",
    "Föreningen ordnar öppet hus varje torsdag för medlemmar och anhöriga.",
    "Färdtjänsten har fått nya regler för resor över kommungränsen.",
    "Kommunen erbjuder stöd till anhöriga som vårdar en närstående med funktionsnedsättning.",
    "Personlig assistans beviljas av Försäkringskassan när behovet överstiger tjugo timmar i veckan.",
    "Ett nytt boende med särskild service öppnar i centrala Ålvik under våren.",
    "Skolan och elevhälsan samarbetar med socialtjänsten för elever som behöver särskilt stöd.",
    "Medarbetarna har gått en utbildning i tillgänglig information och lätt svenska.",
    "Nästa träff äger rum i kommunhusets stora sal och är öppen för alla.",
    "Synpunkter på verksamheten lämnas via kommunens webbplats eller per telefon.",
]
NAMES = ["Eva Ek", "Karin Lund", "Johan Berg", "Maria Holm", "Ahmed Nour", "Lena Sjöberg", "Per Nilsson"]
ROLES = ["enhetschef", "samordnare", "handläggare", "verksamhetschef", "strateg"]
ORGS = ["Socialförvaltningen", "Försäkringskassan", "Arbetsförmedlingen", "Funktionsrätt Ålvik"]
BASE_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)


class GeneratedSite:
    """Serve ``n_pages`` generated pages on 127.0.0.1 (use as a context manager).

    Args:
        n_pages: how many article pages.
        delay: seconds each page response is held back (to make crawls take time).
        paragraphs: paragraphs per page.
    """

    def __init__(self, n_pages: int, delay: float = 0.0, paragraphs: int = 3):
        self.n_pages = n_pages
        self.delay = delay
        self.paragraphs = paragraphs
        self.versions = [0] * n_pages
        self.modified = [BASE_DATE] * n_pages
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "GeneratedSite":
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                site._handle(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, i: int) -> str:
        return f"{self.base_url}/sida/{i}/"

    def change(self, pages) -> None:
        """Give these pages new text, ETag and lastmod."""
        now = datetime.now(timezone.utc)
        with self._lock:
            for i in pages:
                self.versions[i] += 1
                self.modified[i] = now

    def page_html(self, i: int) -> str:
        rng = random.Random(f"{i}-{self.versions[i]}")
        name, role, org = rng.choice(NAMES), rng.choice(ROLES), rng.choice(ORGS)
        paras = [f"{name}, {role} på {org}, berättar om arbetet med sida {i} (version {self.versions[i]})."]
        paras += [" ".join(rng.sample(SENTENCES, 3)) for _ in range(self.paragraphs - 1)]
        links = "".join(f'<li><a href="/sida/{j}/">Sida {j}</a></li>' for j in range(i + 1, min(i + 4, self.n_pages)))
        body = "".join(f"<p>{p}</p>" for p in paras)
        published = self.modified[i].date().isoformat()
        return (f'<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>Sida {i}</title>'
                f'<meta property="article:published_time" content="{published}"></head><body>'
                f'<nav><a href="/">Start</a> <a href="/om/">Om oss</a></nav><main><article><h1>Sida {i}</h1>{body}'
                f"</article></main><aside><ul>{links}</ul></aside><footer>Ålviks kommun</footer></body></html>")

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?")[0]
        with self._lock:
            self.requests.append(path)
        if path == "/robots.txt":
            return self._send(req, 200, "text/plain", f"User-agent: *\nAllow: /\nSitemap: {self.base_url}/sitemap.xml\n")
        if path == "/sitemap.xml":
            items = "".join(f"<url><loc>{self.url(i)}</loc><lastmod>{self.modified[i].isoformat()}</lastmod></url>"
                            for i in range(self.n_pages))
            xml = f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>'
            return self._send(req, 200, "application/xml", xml)
        if path == "/":
            links = "".join(f'<li><a href="/sida/{i}/">Sida {i}</a></li>' for i in range(min(10, self.n_pages)))
            return self._send(req, 200, "text/html; charset=utf-8", f"<html><body><h1>Start</h1><ul>{links}</ul></body></html>")
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "sida" and parts[1].isdigit() and int(parts[1]) < self.n_pages:
            i = int(parts[1])
            if self.delay:
                time.sleep(self.delay)
            etag = '"' + hashlib.sha1(f"{i}-{self.versions[i]}".encode()).hexdigest()[:12] + '"'
            if req.headers.get("If-None-Match") == etag:
                return self._send(req, 304, None, "", etag=etag)
            return self._send(req, 200, "text/html; charset=utf-8", self.page_html(i), etag=etag,
                              last_modified=format_datetime(self.modified[i], usegmt=True))
        return self._send(req, 404, "text/plain", "finns inte")

    @staticmethod
    def _send(req, status: int, content_type: str | None, body: str, etag: str | None = None, last_modified: str | None = None) -> None:
        data = body.encode("utf-8")
        req.send_response(status)
        if content_type:
            req.send_header("Content-Type", content_type)
        if etag:
            req.send_header("ETag", etag)
        if last_modified:
            req.send_header("Last-Modified", last_modified)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if status != 304:
            req.wfile.write(data)
