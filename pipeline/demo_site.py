"""A local HTTP server for the bundled demo partner site (``data/demo_site``), standard library only.

It behaves like a small static web host, so the crawler can be tried end to end offline:
directory URLs serve ``index.html`` (``/nyheter`` redirects to ``/nyheter/``), responses carry a
Content-Type with charset, ``Last-Modified`` and a content-hash ``ETag``, conditional requests get
``304 Not Modified``, and unknown paths get 404. ``{{BASE_URL}}`` in ``.xml`` and ``.txt`` files
(robots.txt, sitemap.xml, rss.xml) is replaced by the server's own address, because the port is
chosen at run time. Only published file types are served: sources (``_src/``), dot-files and
scripts stay private. The server binds to 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

HOST = "127.0.0.1"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "data" / "demo_site"
PLACEHOLDER = b"{{BASE_URL}}"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".pdf": "application/pdf",
}
SPECIAL_TYPES = {"rss.xml": "application/rss+xml; charset=utf-8"}
SUBSTITUTED = {".xml", ".txt"}


class DemoSiteServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its site root and its public base URL."""

    daemon_threads = True
    block_on_close = False  # a client's idle keep-alive connection must not delay shutdown

    def __init__(self, port: int, root: Path) -> None:
        super().__init__((HOST, port), DemoSiteHandler)
        self.root = Path(root).resolve()
        self.base_url = f"http://{HOST}:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        """Log a failed request instead of printing a traceback to stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address[0], exc)
        else:
            log.exception("error while serving %s", client_address[0])


class DemoSiteHandler(BaseHTTPRequestHandler):
    """GET and HEAD for the static demo site."""

    server: DemoSiteServer
    protocol_version = "HTTP/1.1"
    server_version = "SamverkanDemo/1.0"
    timeout = 30  # seconds an idle keep-alive connection may hold a thread
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._respond(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        url_path = unquote(urlsplit(self.path).path)
        file = self._resolve(url_path)
        if file is None:
            self._send_plain(HTTPStatus.NOT_FOUND, "404 Sidan finns inte\n", with_body)
            return
        if file.is_dir():  # "/nyheter" → "/nyheter/", as web servers do
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", url_path + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = file.read_bytes()
        if file.suffix in SUBSTITUTED:
            body = body.replace(PLACEHOLDER, self.server.base_url.encode("ascii"))
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        mtime = int(file.stat().st_mtime)
        status = HTTPStatus.NOT_MODIFIED if self._not_modified(etag, mtime) else HTTPStatus.OK
        self.send_response(status)
        self.send_header("Content-Type", SPECIAL_TYPES.get(file.name) or CONTENT_TYPES[file.suffix])
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        self.send_header("Cache-Control", "no-cache")
        if status == HTTPStatus.NOT_MODIFIED:
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _resolve(self, url_path: str) -> Path | None:
        """The file (or directory needing a slash) a URL path names, or None for 404."""
        root = self.server.root
        parts = [p for p in url_path.split("/") if p]
        if any(p.startswith((".", "_")) or "\\" in p or "\x00" in p for p in parts):
            return None
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root):
            return None
        if target.is_dir():
            if not url_path.endswith("/"):
                return target if (target / "index.html").is_file() else None
            target = target / "index.html"
        if not target.is_file() or target.suffix not in CONTENT_TYPES:
            return None
        return target

    def _not_modified(self, etag: str, mtime: int) -> bool:
        """RFC 9110: If-None-Match decides when present, else If-Modified-Since."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return "*" in tags or etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                return mtime <= int(parsedate_to_datetime(if_modified_since).timestamp())
            except (TypeError, ValueError, IndexError):
                return False
        return False

    def _send_plain(self, status: HTTPStatus, text: str, with_body: bool) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server signature)
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        log.info("%s %s", self.address_string(), format % args)


def serve(port: int = 8765, root: Path = DEFAULT_ROOT) -> None:
    """Serve the demo site on 127.0.0.1:``port`` until interrupted (blocking).

    Args:
        port: TCP port; 0 picks a free one.
        root: directory holding the site.
    """
    with DemoSiteServer(port, root) as server:
        log.info("demo site %s served at %s/", server.root, server.base_url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            log.info("demo site stopped")


@contextmanager
def running(port: int = 0, root: Path = DEFAULT_ROOT) -> Iterator[str]:
    """Run the demo site in a background thread for the duration of a ``with`` block.

    Args:
        port: TCP port; 0 (the default) picks a free one.
        root: directory holding the site.

    Yields:
        The base URL without a trailing slash, e.g. ``"http://127.0.0.1:54321"``.
    """
    server = DemoSiteServer(port, root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="demo-site", daemon=True)
    thread.start()
    log.debug("demo site running at %s", server.base_url)
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
