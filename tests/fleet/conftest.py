"""Fleet fixtures: a rig of stand-in GPUs with real DeviceService states, and a webhook server
on 127.0.0.1 that records what is POSTed to it (stopped by the test)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.context import AppContext
from app.devices import DeviceService
from app.fleet import Readiness, states_snapshot
from tests.gpu.nvml_standin import make_standin, standin_rig


class Webhook:
    """POSTs received: a list of decoded JSON bodies; `status` is what it answers."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        self.got = threading.Event()
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                hook.got.set()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    w = Webhook()
    yield w
    w.stop()


class StandinRig:
    """n stand-in GPUs (and the CPU) in mining mode; `snapshot()` of their real states."""

    def __init__(self, n: int = 8, name: str = "rig-01", number: int = 0):
        self.nv = make_standin(gpus=standin_rig(n, number))
        self.devices = DeviceService(AppContext.open(), nvml_module=self.nv, idle=lambda: None)
        self.devices.set_all_modes("mining")
        self.name = name

    def snapshot(self, readiness: Readiness = Readiness(True, "ready", "Ready for jobs"), **kw):
        return states_snapshot(self.devices.poll(), readiness, watchdog=self.devices.watchdog, rig=self.name, **kw)

    def close(self):
        self.devices.close()


@pytest.fixture
def standin_rig8():
    r = StandinRig(8)
    yield r
    r.close()
