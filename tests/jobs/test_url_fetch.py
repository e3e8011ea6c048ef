"""The input URL policy and the guarded fetcher, against real servers on 127.0.0.x only."""

from __future__ import annotations

import io
import ipaddress
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.url_fetch import FetchError, fetch_url
from jobs.url_policy import UrlPolicy, UrlRefused, address_problem, check_addresses


@pytest.mark.parametrize("addr, why", [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"), ("100.64.0.1", "not globally routable"), ("224.0.0.251", "multicast"),
    ("0.0.0.0", "unspecified"), ("192.0.2.7", "private"), ("255.255.255.255", "private"),
    ("::1", "loopback"), ("fe80::1", "link-local"), ("fc00::1", "private"), ("ff02::1", "multicast"),
    ("::ffff:10.0.0.1", "private (inside ::ffff:a00:1)"), ("64:ff9b::a00:1", "private (inside 64:ff9b::a00:1)"),
    ("2002:a00:1::", "private (inside 2002:a00:1::)"),
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("64:ff9b::808:808", None),
])
def test_only_public_unicast_addresses_pass(addr, why):
    assert address_problem(ipaddress.ip_address(addr)) == why


def test_every_resolved_address_must_pass_unless_the_host_is_allowed():
    with pytest.raises(UrlRefused, match="address 10.0.0.5 is private"):
        check_addresses("mixed.example", ["93.184.216.34", "10.0.0.5"], UrlPolicy())
    assert str(check_addresses("nas.lan", ["10.0.0.5"], UrlPolicy(allow_hosts=frozenset({"NAS.lan."})))) == "10.0.0.5"


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append((self.headers.get("Host"), self.path))
        status, headers, body, delay = self.routes.get(self.path, (404, {}, b"", 0))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        for i in range(len(body)):
            self.wfile.write(body[i:i + 1] if delay else body[i:])
            if not delay:
                break
            self.wfile.flush()
            time.sleep(delay)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    _Handler.routes, _Handler.hits = {}, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], _Handler
    srv.shutdown()
    srv.server_close()


def test_a_name_is_resolved_once_per_hop_and_the_checked_address_is_used(server):
    """DNS rebinding: a second lookup could answer differently; there is none."""
    port, h = server
    h.routes["/a"] = (200, {"Content-Length": "5"}, b"hello", 0)
    calls = []

    def rebinding(host, port_, **kw):   # first 127.0.0.1, then an address nothing listens on
        calls.append(host)
        addr = "127.0.0.1" if len(calls) == 1 else "127.0.0.3"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port_))]

    out = io.BytesIO()
    n = fetch_url(f"http://rebind.test:{port}/a", out, UrlPolicy(allow_hosts=frozenset({"rebind.test"})),
                  resolver=rebinding)
    assert (n, out.getvalue(), calls) == (5, b"hello", ["rebind.test"])
    assert h.hits == [(f"rebind.test:{port}", "/a")]          # the name travels in Host:, the address was pinned


def test_caps_on_size_redirects_and_time(server):
    port, h = server
    base = f"http://127.0.0.1:{port}"
    allow = UrlPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=100, timeout_s=1.0, max_redirects=2)
    h.routes["/big"] = (200, {"Content-Length": "1000"}, b"x" * 1000, 0)
    h.routes["/big-unsized"] = (200, {}, b"x" * 1000, 0)
    h.routes["/loop"] = (302, {"Location": "/loop", "Content-Length": "0"}, b"", 0)
    h.routes["/slow"] = (200, {"Content-Length": "50"}, b"y" * 50, 0.1)
    with pytest.raises(FetchError, match="1000 bytes, over the 100 byte limit"):
        fetch_url(f"{base}/big", io.BytesIO(), allow)
    with pytest.raises(FetchError, match="over the 100 byte limit"):
        fetch_url(f"{base}/big-unsized", io.BytesIO(), allow)
    with pytest.raises(FetchError, match="more than 2 redirects"):
        fetch_url(f"{base}/loop", io.BytesIO(), allow)
    t0 = time.monotonic()
    with pytest.raises(FetchError, match="time limit reached|timed out"):
        fetch_url(f"{base}/slow", io.BytesIO(), allow)
    assert time.monotonic() - t0 < 2.5
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(f"{base}/missing", io.BytesIO(), allow)


def test_local_files_only_inside_the_shared_folders_and_only_regular(tmp_path):
    import hashlib

    from jobs.artifacts import ArtifactError, ArtifactStore

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.bin").write_bytes(b"shared bytes")
    (tmp_path / "private.bin").write_bytes(b"private bytes")
    (shared / "escape.bin").symlink_to(tmp_path / "private.bin")
    os.mkfifo(shared / "pipe")
    store = ArtifactStore(tmp_path / "store")
    policy = UrlPolicy(local_roots=frozenset({str(shared)}))
    sha = hashlib.sha256(b"shared bytes").hexdigest()
    assert store.fetch(sha, (shared / "in.bin").as_uri(), policy=policy).read_bytes() == b"shared bytes"
    private = hashlib.sha256(b"private bytes").hexdigest()
    for uri in ((tmp_path / "private.bin").as_uri(), str(shared / "escape.bin")):
        with pytest.raises(ArtifactError, match="outside the shared folders"):
            store.fetch(private, uri, policy=policy)
    with pytest.raises(ArtifactError, match="a FIFO"):
        store.fetch("0" * 64, str(shared / "pipe"), policy=policy)
    with pytest.raises(ArtifactError, match="local files not allowed"):
        store.fetch(private, (tmp_path / "private.bin").as_uri(), policy=UrlPolicy())
