"""Reading the worker's report pipe with a timeout, on POSIX and Windows.

The pipe is untrusted (the job can write to it); the runner caps line and stream sizes.
This only moves bytes: a selector on POSIX; on Windows (no select on pipes) a thread doing
blocking reads into a small bounded queue. Used by the job's own runner thread.
"""

from __future__ import annotations

import os
import selectors
import threading


class PipeReader:
    """Chunks from the report pipe with a timeout: a selector on POSIX; on Windows (no
    select on pipes) a thread doing blocking reads into a small bounded queue."""

    def __init__(self, rfd: int):
        self._fd = rfd
        if os.name == "nt":
            import queue

            self._q: "queue.Queue[bytes]" = queue.Queue(maxsize=64)
            threading.Thread(target=self._pump, name="report-pipe", daemon=True).start()
            self._sel = None
        else:
            self._sel = selectors.DefaultSelector()
            self._sel.register(rfd, selectors.EVENT_READ)

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            self._q.put(chunk)
            if not chunk:
                return

    def read(self, timeout: float) -> list[bytes]:
        """Available chunks (b"" means end of stream); waits up to `timeout` for the first."""
        if self._sel is None:
            import queue

            try:
                chunks = [self._q.get(timeout=timeout)]
            except queue.Empty:
                return []
            while chunks[-1] and len(chunks) < 16:
                try:
                    chunks.append(self._q.get_nowait())
                except queue.Empty:
                    break
            return chunks
        if not self._sel.select(timeout=timeout):
            return []
        chunks = []
        for _ in range(16):            # bounded per tick, so the watchdogs still run under a flood
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            chunks.append(chunk)
            if not chunk or len(chunk) < 65536:
                break
        return chunks
