"""Logging set-up: a rotating file the user can attach to a report, quiet stderr."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"
_configured: Path | None = None


def setup_logging(log_file: Path, *, level: int = logging.INFO, stderr_level: int | None = None) -> None:
    """Send log records to `log_file` (5 files of 5 MB); optionally also to stderr."""
    global _configured
    root = logging.getLogger()
    if _configured == log_file:
        return
    for h in list(root.handlers):
        if getattr(h, "_kminer", False):
            root.removeHandler(h)
            h.close()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fh = logging.handlers.RotatingFileHandler(log_file, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
    fh.setFormatter(logging.Formatter(_FORMAT))
    fh._kminer = True  # type: ignore[attr-defined]
    root.addHandler(fh)
    if stderr_level is not None:
        sh = logging.StreamHandler()
        sh.setLevel(stderr_level)
        sh.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        sh._kminer = True  # type: ignore[attr-defined]
        root.addHandler(sh)
    root.setLevel(level)
    _configured = log_file
