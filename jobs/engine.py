"""The engine interface: what a job engine receives inside the worker and how it is found.

An engine is a plain function `run(ctx: JobContext) -> dict` living in a module the worker
imports lazily by its `kind` (see `ENGINES`). It runs inside the sandboxed worker process,
single-threaded as far as this interface is concerned: `ctx.progress` and `ctx.log` write
JSON lines to the worker's report pipe and may be called from any thread (a lock guards
the pipe). The dict it returns must be JSON-serialisable: it becomes the job's result
summary. A clean failure (bad parameters, unusable inputs) is `raise EngineError("reason")`;
any other exception also fails the job, with its type and message as the reason.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# kind -> "module:function"; imported only in the worker that runs that kind.
# Other engines register here with a one-line edit.
ENGINES: dict[str, str] = {
    "python": "jobs.engines.python_engine:run",
    "sleep": "jobs.engines.builtin:sleep",
    "train": "jobs.train.engines:train",
    "infer": "jobs.train.engines:infer",
    "verify-train": "jobs.train.engines:verify",
    "render": "jobs.render.engine:run",
    "verify-render": "jobs.render.verify:run",
}


class EngineError(Exception):
    """A job failed for a reason the engine can state in one line (shown to the buyer)."""


Emit = Callable[[dict[str, Any]], None]


def _no_emit(_msg: dict[str, Any]) -> None:
    return None


@dataclass
class JobContext:
    """What an engine gets inside the worker.

    `inputs` maps each input name to a local path (file or folder) whose hash was already
    verified. `out_dir` is the only place outputs go; `work_dir` is scratch space in the
    job folder (discarded). `device` is "cpu" or "cuda:0" (the sandbox already pinned the
    real GPU with CUDA_VISIBLE_DEVICES, so it is always index 0). `seed` seeds every RNG
    the engine uses, so a verifier can repeat the work.
    """

    job_id: str
    kind: str
    params: dict[str, Any]
    inputs: dict[str, Path]
    out_dir: Path
    work_dir: Path
    device: str
    seed: int
    _emit: Emit = field(default=_no_emit, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _last_fraction: float = field(default=0.0, repr=False)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress in [0, 1] (clamped; never goes backwards) with an optional note."""
        f = min(1.0, max(0.0, float(fraction)))
        f = max(f, self._last_fraction)
        self._last_fraction = f
        msg: dict[str, Any] = {"type": "progress", "fraction": f}
        if message is not None:
            msg["message"] = str(message)[:500]
        self._emit(msg)

    def log(self, message: str, level: str = "info") -> None:
        """A log line for the job's log (level: debug, info, warning, error)."""
        if level not in ("debug", "info", "warning", "error"):
            level = "info"
        self._emit({"type": "log", "level": level, "message": str(message)[:2000]})

    def cancelled(self) -> bool:
        """True once the runtime asked the job to stop (SIGTERM before the hard kill).

        Engines with long loops may check it to write a checkpoint and return early; those
        that never check are simply killed after the grace period.
        """
        return self._cancel.is_set()


def resolve_engine(kind: str) -> Callable[[JobContext], dict[str, Any]]:
    """Import and return the engine function registered for `kind` (KeyError if none)."""
    target = ENGINES[kind]
    module_name, _, func_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, func_name)
