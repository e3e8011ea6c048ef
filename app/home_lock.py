"""One process at a time on a role's state in a home (the data folder).

The embedded chain already admits one process (its `chain.lock`), but on a JSON-RPC network
the app and `kminer agent` / `kminer order ...` of the same home could otherwise work the
same miner DB or order book at once: two buyers could both post an order left half-posted
(the NTK escrowed twice), two miners both run a claimed job. So:

- `miner.lock`: held by a MinerService for its whole life (one miner per home);
- `orders-<chain_id>.lock`: held by a BuyerService for each pass and each posting.

Locks are per process, not per thread or per object: every holder in this process shares one
OS lock and its count (tests and the GUI open services more than once in one process), so
only another process is kept out. The OS drops a dead process's lock, so a kill -9 never
leaves a home locked.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout


class HomeBusy(RuntimeError):
    """Another process holds the lock; the message says what to do, in one line."""


class HomeLock:
    """acquire(timeout_s) / release() in pairs (they nest); release_all() when closing."""

    def __init__(self, path: Path, busy_text: str):
        self.path = Path(path)
        self.busy_text = busy_text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one instance per path in the process (is_singleton), its count shared by all threads
        self._lock = FileLock(str(self.path), thread_local=False, is_singleton=True)
        self._mine = 0

    def acquire(self, timeout_s: float = 0.0) -> None:
        """Raises HomeBusy if another process still holds it after `timeout_s` seconds."""
        try:
            self._lock.acquire(timeout=timeout_s)
        except Timeout:
            raise HomeBusy(self.busy_text) from None
        self._mine += 1

    def release(self) -> None:
        if self._mine > 0:
            self._mine -= 1
            self._lock.release()

    def release_all(self) -> None:
        while self._mine > 0:
            self.release()
