"""A real HTTP server on 127.0.0.1 for the price and network feeds, stopped by each test."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class FeedServer:
    """Serves `routes[path] = (status, body bytes, delay_s)`; `set_json`/`set_raw` change them live.
    `stop()` shuts it down (the port then refuses connections: a server that is down)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.hits: dict[str, int] = {}
        routes, hits = self.routes, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                hits[self.path] = hits.get(self.path, 0) + 1
                status, body, delay = routes.get(self.path, (404, b"not found", 0.0))
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set_json(self, path: str, obj: Any, status: int = 200, delay_s: float = 0.0) -> str:
        self.routes[path] = (status, json.dumps(obj).encode(), delay_s)
        return self.url(path)

    def set_raw(self, path: str, body: bytes, status: int = 200, delay_s: float = 0.0) -> str:
        self.routes[path] = (status, body, delay_s)
        return self.url(path)

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


@pytest.fixture
def feed():
    server = FeedServer()
    yield server
    server.stop()
