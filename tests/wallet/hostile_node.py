"""A misbehaving JSON-RPC node on 127.0.0.1 for tests: one thread, one way of misbehaving.

Modes: `ok` (answers every call with `result`), `silent` (accepts, reads the request, never
answers), `huge` (a 200 OK of `size` NUL bytes), `garbage` (an HTML page), `error` (a JSON-RPC
error object), `http500`, `drip` (headers, then one byte every `drip_s`), `deep` (a list nested
200,000 deep), `nan` (a result of NaN). Stopped (and every connection closed) by `close()`.
"""

from __future__ import annotations

import json
import socket
import threading


class HostileNode:
    def __init__(self, mode: str, *, result: object = "0x539", size: int = 20_000_000, drip_s: float = 0.2):
        self.mode, self.result, self.size, self.drip_s = mode, result, size, drip_s
        self.requests = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._stop.set()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        for c in self._conns:
            c.close()
        self._sock.close()

    def __enter__(self) -> "HostileNode":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _read_request(self, conn: socket.socket) -> dict | None:
        conn.settimeout(2)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        self.requests += 1
        return json.loads(body)

    def _send(self, conn: socket.socket, body: bytes, status: str = "200 OK", ctype: str = "application/json") -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    def _handle(self, conn: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                req = self._read_request(conn)
                if req is None:
                    return
                rid = req.get("id", 1)
                if self.mode == "ok":
                    self._send(conn, json.dumps({"jsonrpc": "2.0", "id": rid, "result": self.result}).encode())
                elif self.mode == "silent":
                    self._stop.wait()
                elif self.mode == "huge":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")  # no length: read to close
                    block = b"\0" * (1 << 20)
                    for _ in range(self.size // len(block)):
                        conn.sendall(block)
                    return
                elif self.mode == "garbage":
                    self._send(conn, b"<html><body>502 Bad Gateway\0\0</body></html>", ctype="text/html")
                elif self.mode == "error":
                    err = {"code": -32000, "message": "header not found " + "x" * 5000}
                    self._send(conn, json.dumps({"jsonrpc": "2.0", "id": rid, "error": err}).encode())
                elif self.mode == "http500":
                    self._send(conn, b"oops", status="500 Internal Server Error", ctype="text/plain")
                elif self.mode == "drip":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                    while not self._stop.wait(self.drip_s):
                        conn.sendall(b" ")
                    return
                elif self.mode == "deep":
                    body = b'{"jsonrpc":"2.0","id":%d,"result":' % rid + b"[" * 200_000 + b"]" * 200_000 + b"}"
                    self._send(conn, body)
                elif self.mode == "nan":
                    self._send(conn, b'{"jsonrpc":"2.0","id":%d,"result":NaN}' % rid)
        except OSError:
            return
