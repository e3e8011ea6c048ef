"""Connection limits for the small TCP servers strangers reach (the order desk, key services,
relays' control ports): at most `max_connections` served at once, and optionally at most
`max_per_source` from one client address (`source_of(ip)` groups addresses, e.g. an IPv6 /64),
so one address cannot take every place; more are sent `busy` and closed. Servers strangers
reach use `source_of` (one IPv4 address, one IPv6 /64) and `MAX_PER_SOURCE` at most. A connection still
open `deadline_s` after it was accepted is cut however slowly it trickles bytes (slowloris),
so a stranger cannot tie up the server's threads.

    class Server(GuardedServerMixin, socketserver.ThreadingTCPServer): ...
    srv = Server(addr, Handler); srv.guard = ConnectionGuard(128, 20.0, busy=b"...")
    ...; srv.guard.close()  # after shutdown(): cuts what is still open

Threads: one reaper per guard.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable

MAX_PER_SOURCE = 8
"""Connections one client address (`source_of`) may hold at once on a server strangers reach."""


class ConnectionGuard:
    def __init__(self, max_connections: int, deadline_s: float, *, busy: bytes = b"",
                 max_per_source: int | None = None, source_of: Callable[[str], str] = str):
        self.max_connections, self.deadline_s, self.busy = max_connections, deadline_s, busy
        self.max_per_source, self.source_of = max_per_source, source_of
        self._open: dict[socket.socket, tuple[float, str]] = {}  # connection -> (monotonic deadline, source)
        self._per_source: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._reaper = threading.Thread(target=self._reap, args=(min(0.5, deadline_s / 4),), name="conn-reaper",
                                        daemon=True)
        self._reaper.start()

    def admit(self, conn: socket.socket, client: str = "") -> bool:
        """Take `conn` (from address `client`) if there is room for it."""
        src = self.source_of(client) if self.max_per_source is not None else ""
        with self._lock:
            if len(self._open) >= self.max_connections:
                return False
            if self.max_per_source is not None and self._per_source.get(src, 0) >= self.max_per_source:
                return False
            self._open[conn] = (time.monotonic() + self.deadline_s, src)
            self._per_source[src] = self._per_source.get(src, 0) + 1
            return True

    def release(self, conn: socket.socket) -> None:
        with self._lock:
            got = self._open.pop(conn, None)
            if got is not None:
                n = self._per_source[got[1]] - 1
                if n:
                    self._per_source[got[1]] = n
                else:
                    del self._per_source[got[1]]

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def _reap(self, every_s: float) -> None:
        """Cut connections past their deadline (a blocked read in their thread then returns)."""
        while not self._closing.wait(every_s):
            now = time.monotonic()
            with self._lock:
                late = [s for s, (deadline, _src) in self._open.items() if deadline <= now]
            for s in late:
                cut(s)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            still = list(self._open)
        for s in still:
            cut(s)


class GuardedServerMixin:
    """For a threading socketserver: admits each connection through `self.guard`."""

    guard: ConnectionGuard

    def process_request(self, request, client_address) -> None:
        client = client_address[0] if isinstance(client_address, tuple) and client_address else ""
        if not self.guard.admit(request, str(client)):
            try:
                request.settimeout(0.5)
                if self.guard.busy:
                    request.sendall(self.guard.busy)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:  # no thread to be had: forget the connection
            self.guard.release(request)
            self.shutdown_request(request)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.guard.release(request)


def cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def source_of(client: str) -> str:
    """The address a client's limits are counted by: an IPv4 address (also when mapped into
    IPv6), or the /64 an IPv6 address is in (one host commonly holds a whole /64)."""
    ip = _ip(client)
    if ip is None:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def network_of(client: str) -> str:
    """The coarser group shares are taken in turn by (one holder commonly has a whole block):
    an IPv4 /24 (also when mapped into IPv6), an IPv6 /48."""
    ip = _ip(client)
    if ip is None:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 48), strict=False))
    return str(ipaddress.IPv4Network((ip, 24), strict=False))


def _ip(client: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
