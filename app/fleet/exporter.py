"""The metrics endpoint of `kminer agent`: GET /metrics on a local port, the Prometheus text
format of the rig's latest snapshot (app.fleet.metrics).

Off by default (Settings.fleet.metrics_port 0); it listens on 127.0.0.1 unless the
owner chose another address. Serving never touches the miner: the stepping thread hands a
snapshot in with `update()`, the server's threads only render the latest one. Anything but
GET /metrics (and / and /healthz) is 404; requests are read with a time limit.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.fleet.metrics import CONTENT_TYPE, render_metrics
from app.fleet.snapshot import RigSnapshot

log = logging.getLogger(__name__)

__all__ = ["MetricsServer"]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    timeout = 10
    server_version = "kminer-metrics"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = self.server.owner.text().encode("utf-8")
            self._send(200, body, CONTENT_TYPE)
        elif path in ("/", "/healthz"):
            self._send(200, b"kminer agent: metrics at /metrics\n", "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args) -> None:
        log.debug("metrics: " + fmt, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, owner: "MetricsServer"):
        self.owner = owner
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)


class MetricsServer:
    """Serves the latest snapshot on `host:port` (port 0: a free one; `port` says which after
    `start()`). OSError from start() when the port is taken: say it in one line."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._snapshot: RigSnapshot | None = None
        self._text = "# no snapshot yet\n"
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def update(self, snapshot: RigSnapshot) -> None:
        """The rig's new figures (from the stepping thread); rendered once, served until the next."""
        text = render_metrics(snapshot)
        with self._lock:
            self._snapshot, self._text = snapshot, text

    def text(self) -> str:
        with self._lock:
            return self._text

    def start(self) -> "MetricsServer":
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="metrics-server", daemon=True)
        self._thread.start()
        log.info("metrics on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
