"""A fault-injecting HTTP server for the fetch tests (stdlib only, bound to 127.0.0.1).

Routes map a request path (with or without its query) to a ``Reply``, a list of replies served
in turn (the last one repeats), or a function of the request returning a reply::

    with FaultServer() as srv:
        srv.route("/robots.txt", Reply(body=b"User-agent: *\\nDisallow: /hemligt\\n", content_type="text/plain"))
        srv.route("/flaky", [Reply(500), Reply(500), Reply(body=b"<p>ok</p>")])
        srv.url("/flaky")          # http://127.0.0.1:PORT/flaky
        srv.hits("/flaky")         # requests seen: time, headers

Unknown paths get 404. ``blackhole()`` gives a port whose connections never complete (connect timeouts).
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    """One canned response and the fault to inject while sending it."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line is sent (read timeout)
    content_length: int | None = None  # announce this length instead of the real one (truncated body)
    chunks: Callable[[], Iterable[bytes]] | None = None  # stream these instead of ``body`` (no Content-Length)
    gzip: bool = False  # gzip ``body`` and send Content-Encoding: gzip


@dataclass
class Hit:
    """One request the server received."""

    time: float
    path: str
    headers: dict[str, str]


Route = Reply | list[Reply] | Callable[[Hit], Reply]


class FaultServer:
    """Threaded HTTP/1.1 server on 127.0.0.1 with a route table and a request log."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Hit] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, reply: Route) -> None:
        """Serve ``reply`` for ``path`` (exact path+query first, then the path alone)."""
        self.routes[path] = list(reply) if isinstance(reply, list) else reply

    def hits(self, path: str | None = None) -> list[Hit]:
        """Requests received, optionally only those for ``path``."""
        with self._lock:
            return [h for h in self.log if path is None or h.path == path or urlsplit(h.path).path == path]

    def _reply_for(self, hit: Hit) -> Reply:
        with self._lock:
            self.log.append(hit)
            route = self.routes.get(hit.path) or self.routes.get(urlsplit(hit.path).path)
            if isinstance(route, list):
                route = route.pop(0) if len(route) > 1 else route[0]
        if route is None:
            return Reply(404, b"<h1>404</h1>")
        return route(hit) if callable(route) else route

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                hit = Hit(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()})
                reply = server._reply_for(hit)
                if reply.delay and server._closing.wait(reply.delay):
                    return
                body = gzip.compress(reply.body) if reply.gzip else reply.body
                try:
                    self.send_response(reply.status)
                    if reply.content_type:
                        self.send_header("Content-Type", reply.content_type)
                    if reply.gzip:
                        self.send_header("Content-Encoding", "gzip")
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if reply.chunks is None:
                        length = reply.content_length if reply.content_length is not None else len(body)
                        self.send_header("Content-Length", str(length))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if reply.chunks is None:
                        self.wfile.write(body)
                    else:
                        for chunk in reply.chunks():
                            self.wfile.write(chunk)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client cut us off (size limits)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def blackhole() -> Iterator[int]:
    """A port on 127.0.0.1 that never completes a TCP handshake (its accept queue is full)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


# -- helpers shared by the fetch tests ----------------------------------------------------------


def fast_settings(**overrides):
    """FetchSettings for tests: no politeness delay, tiny backoff, short timeouts, loopback allowed."""
    from pipeline.fetch import FetchSettings

    values = dict(delay=0.0, backoff_base=0.01, backoff_jitter=0.0, connect_timeout=0.5, read_timeout=0.5,
                  retries=2, allow_private=True, global_concurrency=2)
    values.update(overrides)
    return FetchSettings(**values)


def source_for(server: FaultServer, *paths: str, **overrides):
    """A Source whose start URLs are ``paths`` on ``server`` (default ``/``)."""
    from pipeline.records import Source

    values = dict(name="test", start_urls=tuple(server.url(p) for p in (paths or ("/",))),
                  allowed_hosts=("127.0.0.1",), allow_private=True, delay=0.0)
    values.update(overrides)
    return Source(**values)


def html(body: str, head: str = "") -> bytes:
    """A small UTF-8 HTML page."""
    return f"<!doctype html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>".encode()
