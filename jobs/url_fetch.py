"""Fetching one input URL under a `UrlPolicy` (see jobs/url_policy.py).

Each hop resolves the host once, checks every address, then connects to exactly the
checked address (the Host header and TLS certificate check still use the name), so a DNS
answer that changes between the check and the connection gains nothing. Redirects are
followed by hand, each one checked like the first. Bytes and seconds are capped for the
whole fetch; no proxy from the environment is used (it would connect elsewhere).

Blocking; call from a worker thread. `resolver` is `socket.getaddrinfo`-shaped; tests pass
one only to show that a name is looked up once per hop (no DNS server is reachable there).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import BinaryIO, Callable
from urllib.parse import urljoin

from jobs.url_policy import UrlPolicy, UrlRefused, check_addresses, parse_http_url

Resolver = Callable[..., list]
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 1 << 16


class FetchError(OSError):
    """A fetch that failed (refused, too big, too slow, HTTP error); one line."""


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with SNI and the certificate checked against `server_name`."""

    def __init__(self, address: str, port: int, server_name: str, timeout: float, context: ssl.SSLContext):
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_name)


def fetch_url(url: str, out: BinaryIO, policy: UrlPolicy, *, resolver: Resolver = socket.getaddrinfo) -> int:
    """Write the body of `url` to `out`; returns its size in bytes. Raises `UrlRefused` for
    what the policy forbids and `FetchError` for everything else that goes wrong."""
    deadline = time.monotonic() + policy.timeout_s
    for _hop in range(policy.max_redirects + 1):
        target = parse_http_url(url, policy)
        left = _left(deadline, url)
        try:
            infos = resolver(target.host, target.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise FetchError(f"{target.host}: cannot resolve ({e})") from None
        ip = check_addresses(target.host, [i[4][0] for i in infos], policy)
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPS(str(ip), target.port, target.host, left,
                                                             ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(str(ip), target.port, timeout=left)
        try:
            host_header = target.host if ":" not in target.host else f"[{target.host}]"
            default = 443 if target.scheme == "https" else 80
            conn.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host_header if target.port == default else f"{host_header}:{target.port}")
            conn.putheader("User-Agent", "knowledge-miner-input-fetch")
            conn.putheader("Accept-Encoding", "identity")
            conn.endheaders()
            resp = conn.getresponse()
            if resp.status in _REDIRECTS:
                loc = resp.getheader("Location")
                if not loc:
                    raise FetchError(f"{url}: redirect {resp.status} without a Location")
                url = urljoin(url, loc)
                continue
            if resp.status != 200:
                raise FetchError(f"{url}: HTTP {resp.status} {resp.reason}")
            return _copy(resp, conn.sock, out, policy.max_bytes, deadline, url)
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, (FetchError, UrlRefused)):
                raise
            raise FetchError(f"{url}: {type(e).__name__}: {e}") from None
        finally:
            conn.close()
    raise FetchError(f"{url}: more than {policy.max_redirects} redirects")


def _left(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"{url}: time limit reached")
    return left


def _copy(resp: http.client.HTTPResponse, sock: socket.socket | None, out: BinaryIO, max_bytes: int, deadline: float,
          url: str) -> int:
    length = resp.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise FetchError(f"{url}: {int(length)} bytes, over the {max_bytes} byte limit")
    n = 0
    while True:
        if sock is not None:   # each read waits at most what is left of the whole fetch
            sock.settimeout(_left(deadline, url))
        chunk = resp.read1(_CHUNK)
        if not chunk:
            return n
        n += len(chunk)
        if n > max_bytes:
            raise FetchError(f"{url}: over the {max_bytes} byte limit")
        out.write(chunk)
        _left(deadline, url)
