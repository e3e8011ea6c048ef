"""Reading a file a stranger may have placed or replaced: no symlinks, regular files only,
never more than a cap.

`read_bounded(path, max_bytes)` opens without following a symlink in the last component (and,
with `root`, in any component below `root`), refuses FIFOs and devices (opened non-blocking,
so a FIFO cannot hang the open) and reads at most `max_bytes + 1` bytes, so a file that grows
while it is read is still refused instead of read whole. Errors are one `BoundedReadError`
line. (Named apart from the job sandbox's own readers, which live in jobs/.)
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_CHUNK = 1 << 20


class BoundedReadError(ValueError):
    """A file that cannot be read safely: missing, a link, not a regular file, or too large."""


def _open_fd(path: Path, root: Path | None, follow_symlinks: bool) -> int:
    flags = os.O_RDONLY | _NONBLOCK | _BINARY | (0 if follow_symlinks else _NOFOLLOW)
    if root is None:
        if not follow_symlinks and not _NOFOLLOW and os.path.islink(path):  # Windows: no O_NOFOLLOW
            raise OSError(errno.ELOOP, "is a symbolic link", str(path))
        return os.open(path, flags)
    rel = Path(path).relative_to(root) if Path(path).is_absolute() else Path(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise OSError(errno.EINVAL, "leaves its folder", str(path))
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _BINARY)
    try:
        for part in rel.parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _BINARY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(rel.parts[-1], flags | _NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def read_bounded(path: str | os.PathLike[str], max_bytes: int, *, what: str = "file",
                 root: str | os.PathLike[str] | None = None, follow_symlinks: bool = False) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them.

    `root`: `path` is inside it (absolute below it, or relative to it) and no component from
    `root` down may be a symlink (POSIX only). Raises `BoundedReadError` (one line naming
    `what` and the file) when it is missing, a link, not a regular file, or over the cap."""
    p = Path(path)
    try:
        fd = _open_fd(p, Path(root) if root is not None else None, follow_symlinks)
    except FileNotFoundError:
        raise BoundedReadError(f"{what} {p}: file not found") from None
    except NotADirectoryError:
        raise BoundedReadError(f"{what} {p}: a folder on its path is a symbolic link or not a folder") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):
            raise BoundedReadError(f"{what} {p}: is a symbolic link (not followed)") from None
        raise BoundedReadError(f"{what} {p}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise BoundedReadError(f"{what} {p}: not a regular file")
        if st.st_size > max_bytes:
            raise BoundedReadError(f"{what} {p}: too large: {st.st_size:,} bytes (the limit is {max_bytes:,} bytes)")
        if _NONBLOCK and hasattr(os, "set_blocking"):
            os.set_blocking(f.fileno(), True)
        data = read_at_most(f.read, max_bytes)
    if len(data) > max_bytes:
        raise BoundedReadError(f"{what} {p}: too large: it grew past {max_bytes:,} bytes while being read")
    return data


def read_at_most(read: Callable[[int], bytes], max_bytes: int) -> bytes:
    """Call `read(n)` until it returns b"" or more than `max_bytes` bytes came (then the result
    is `max_bytes + 1` long, never longer: the caller refuses it). `read` may raise to stop."""
    chunks, total = [], 0
    while total <= max_bytes:
        chunk = read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
