"""What the NVML and AMD SMI adapters share: the vendor library's session, started lazily once
and shut down at interpreter exit (or by `close()`), and the GPUs marked lost.

Thread-safety: start-up and the lost set are guarded by one lock; the vendor libraries are
thread-safe themselves, so snapshots may run from any thread.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["VendorLib"]


class _Session:
    """What the exit-time finalizer needs; holds no reference to the adapter."""

    def __init__(self, module: Any, shutdown: str):
        self.module = module
        self._shutdown = shutdown
        self.started = True

    def shutdown(self) -> None:
        if self.started:
            self.started = False
            try:
                getattr(self.module, self._shutdown)()
            except Exception:  # at exit nothing useful can be done with it
                log.debug("%s failed", self._shutdown, exc_info=True)


class VendorLib:
    """Base of gpu.nvml.Nvml and gpu.amd.AmdSmi. `module`: the binding or a stand-in (None: the
    subclass imports the real one in `_start`, which calls `_begin` once the library runs)."""

    SHUTDOWN = ""
    """The binding's shutdown function."""

    def __init__(self, module: Any = None):
        self._module = module
        self._lock = threading.Lock()
        self._tried = False
        self._session: _Session | None = None
        self._lost: set[int] = set()
        self.error: str | None = None
        """Why the library cannot be used (one line), None while it can (or untried)."""

    def available(self) -> bool:
        """Start the library if not yet tried; True when it runs. Never raises."""
        with self._lock:
            if not self._tried:
                self._tried = True
                self._start()
            return self._session is not None and self._session.started

    def _start(self) -> None:
        raise NotImplementedError

    def _begin(self, module: Any) -> None:
        """The library started: keep its session, shut down at exit."""
        self._module = module
        session = _Session(module, self.SHUTDOWN)
        self._session = session
        weakref.finalize(self, session.shutdown)

    def close(self) -> None:
        """Shut the library down now (also happens at exit). Reads after this return NA."""
        with self._lock:
            if self._session is not None:
                self._session.shutdown()

    def is_lost(self, index: int) -> bool:
        with self._lock:
            return index in self._lost

    def _mark_lost(self, index: int) -> None:
        with self._lock:
            self._lost.add(index)

    def retry(self, index: int) -> None:
        """Ask a GPU marked lost again on the next snapshot (the watchdog's retry after back-off)."""
        with self._lock:
            self._lost.discard(index)
