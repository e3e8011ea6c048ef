"""Background work with callbacks on the GUI thread (Anki's QueryOp habit).

Threading rule: the callable runs on this runner's own thread and must never touch a
widget; `on_done` / `on_error` run on the GUI thread. One runner per thing touched (one for
device polling, one for the wallet...), so slow work of one kind never queues behind another.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from ui.qt import QObject, Signal

log = logging.getLogger(__name__)


class _Bridge(QObject):
    finished = Signal(object, object, object)  # callback, result, error


class Background:
    def __init__(self, name: str):
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._bridge = _Bridge()
        self._bridge.finished.connect(self._deliver)
        self._closed = False

    def submit(self, fn: Callable[[], Any], *, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> Future | None:
        if self._closed:
            return None
        fut = self._executor.submit(fn)

        def done(f: Future) -> None:
            if self._closed:
                return
            err = f.exception()
            if err is not None:
                if isinstance(err, ValueError):  # bad input (field errors): the view shows it; one log line
                    log.info("%s: %s: %s", self.name, type(err).__name__, err)
                else:
                    log.error("%s: background call failed", self.name, exc_info=err)
                if on_error is not None:
                    self._bridge.finished.emit(on_error, err, None)
            elif on_done is not None:
                self._bridge.finished.emit(on_done, f.result(), None)

        fut.add_done_callback(done)
        return fut

    @staticmethod
    def _deliver(callback, value, _unused) -> None:
        callback(value)

    def shutdown(self, wait: bool = True) -> None:
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)
