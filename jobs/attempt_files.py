"""The folder of one job attempt: who owns each file, and how the app reads them back.

    attempt-N/
      spec.json      app   (the job reads it: bound read-only at /job/spec.json)
      in/            app   (verified inputs: bound read-only at /job/in)
      out/           job   (bound read-write at /job/out: the outputs)
      work/          job   (bound read-write at /job/work: scratch, the job's cwd)
      tmp/           job   (bound read-write at /tmp and /dev/shm)
      worker.log     app   (the worker's stdout/stderr, written through an fd the app opened)
      outcome.json   app   (how the attempt ended)

Under `strict` the job sees only its four mounts; it cannot rename or replace them (each is
a mount point; /job itself is read-only), and never sees the app's files. Under `basic` it
could reach all of it, so everything the app reads back after a run, at either level, goes
through jobs.safe_fs (no link followed, bounded) and is written by atomic replace (a link
planted at the name is replaced, never written through).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.textsafe import safe_text
from jobs.safe_fs import UnsafeEntry, read_bounded, read_tail

LOG_TAIL_BYTES = 256 * 1024
OUTCOME_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class AttemptLayout:
    """Paths of one attempt folder (see the module docstring for who owns what)."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    @property
    def outcome(self) -> Path:
        return self.root / "outcome.json"

    def job_writable(self) -> tuple[Path, ...]:
        """The folders the job may write (each its own mount under strict)."""
        return self.out, self.work, self.tmp

    def make_job_dirs(self) -> None:
        for d in self.job_writable():
            d.mkdir(mode=0o700, parents=True, exist_ok=True)

    def open_log(self) -> int:
        """An fd appending to worker.log, refusing a link planted at its name."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.log, flags, 0o600)



def write_outcome_at(root: Path, dir_fd: int | None, doc: dict[str, Any]) -> None:
    """outcome.json in the attempt folder (through `dir_fd` when given), by atomic replace:
    written to a new file opened O_EXCL|O_NOFOLLOW, then renamed over the name, so a link a
    job planted there is replaced, never written through."""
    import secrets

    data = (json.dumps(doc, default=str, indent=2) + "\n").encode()
    if dir_fd is None:
        from common.fsutil import atomic_write_bytes

        atomic_write_bytes(root / "outcome.json", data)
        return
    tmp = f".outcome.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, "outcome.json", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def log_tail(path: str | os.PathLike[str], max_bytes: int = LOG_TAIL_BYTES) -> str:
    """The last `max_bytes` of a worker log as text safe to show (control characters
    escaped, see common.textsafe), "" if there is none. A log that is not a regular file (a
    link, a FIFO, a device such as /dev/zero) is never opened for reading: one line says so.
    A note leads when the start was left out. For the Jobs page and `kminer job show`."""
    try:
        data, size = read_tail(path, max_bytes)
    except FileNotFoundError:
        return ""
    except UnsafeEntry as e:
        return f"(log not shown: {e})\n"
    except OSError as e:
        return f"(log not readable: {e.strerror or e})\n"
    text = safe_text(data.decode("utf-8", errors="replace"))
    if size > max_bytes:
        text = f"(first {size - max_bytes} bytes left out)\n" + text.split("\n", 1)[-1]
    return text if text.endswith("\n") or not text else text + "\n"


def read_outcome(layout: AttemptLayout) -> dict[str, Any] | None:
    """The attempt's outcome.json, or None when missing or unusable (bounded, no links)."""
    try:
        doc = json.loads(read_bounded(layout.outcome, OUTCOME_MAX_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None
