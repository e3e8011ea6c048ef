"""Reading what a job left behind without following anything it could have planted.

After (and while) a job runs, every name in its writable folders is the job's choice: a
file can be a symbolic link to the keystore, a FIFO that blocks a reader forever, a
device that never ends (/dev/zero), a hard link to a file elsewhere, or a folder nested
thousands deep. Everything here opens with O_NOFOLLOW and walks folders through directory
file descriptors (openat, at most `MAX_DEPTH` held at once), so a link is seen as a link
and never as what it points at; reads are bounded. Each function takes a path, optionally
relative to a directory fd (`dir_fd`, as in `os`), so the caller can hold the job's folder
open from before the job started and never resolve its name again.

Windows has no O_NOFOLLOW or openat: there the same functions use lstat before and fstat
after opening and refuse a mismatch (a job under Windows' basic level can reach those
files anyway). Pure functions; any thread.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
FILE_FLAGS = (os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
              | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
HAVE_DIR_FD = os.open in os.supports_dir_fd and os.scandir in os.supports_fd and _NOFOLLOW != 0
MAX_DEPTH = 128   # folders nested deeper than this are refused (each level holds an fd while walked)


class UnsafeEntry(OSError):
    """A name that is not a plain file or folder, or a tree past a limit; one line."""


class TreeTooLarge(UnsafeEntry):
    """A tree with more names than allowed, or nested deeper than `MAX_DEPTH`."""


def short(rel: str, keep: int = 80) -> str:
    """A relative path cut for a one-line reason (a job may nest names thousands deep)."""
    return rel if len(rel) <= keep else f"{rel[:keep // 2]}…{rel[-keep // 2:]}"


def kind_of(mode: int) -> str:
    """What a file mode is, in words, for refusal reasons."""
    for test, word in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return word
    return "an unknown kind of file"


@dataclass(frozen=True)
class Entry:
    """One name under a walked folder: its path relative to the root (POSIX form)."""

    rel: str
    is_dir: bool
    size: int
    mode: int


def open_dir(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> int:
    """A directory fd for `path` (relative to `dir_fd` when given), refusing a link there."""
    try:
        return os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        st = _lstat(path, dir_fd)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise UnsafeEntry(f"{Path(path).name}: {kind_of(st.st_mode)} (refused: expected a folder)") from None
        raise e


def _lstat(path, dir_fd: int | None) -> os.stat_result | None:
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None


def _check(rel: str, st: os.stat_result, *, allow_hardlinks: bool) -> None:
    if stat.S_ISDIR(st.st_mode):
        return
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeEntry(f"{short(rel)}: {kind_of(st.st_mode)} (refused: only regular files and folders can be "
                          "stored, no links or devices)")
    if not allow_hardlinks and st.st_nlink > 1:
        raise UnsafeEntry(f"{short(rel)}: a file with other hard links (refused)")


def _walk(root, dir_fd: int | None) -> Iterator[tuple[str, os.DirEntry]]:
    """(relative path, entry) for every name under `root`, depth first, unsorted; only the
    fds of the current path are open. Raises `UnsafeEntry` past `MAX_DEPTH`."""
    top = open_dir(root, dir_fd=dir_fd)
    stack = [(top, os.scandir(top), "")]
    try:
        while stack:
            fd, it, prefix = stack[-1]
            e = next(it, None)
            if e is None:
                it.close()
                os.close(fd)
                stack.pop()
                continue
            rel = prefix + e.name
            yield rel, e
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if len(stack) >= MAX_DEPTH:
                    raise TreeTooLarge(f"{short(rel)}: folders nested deeper than {MAX_DEPTH} levels")
                try:
                    child = os.open(e.name, DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                stack.append((child, os.scandir(child), rel + "/"))
    finally:
        for fd, it, _ in stack:
            it.close()
            os.close(fd)


def tree_entries(root: str | os.PathLike[str], *, dir_fd: int | None = None, max_entries: int | None = None,
                 allow_hardlinks: bool = False) -> list[Entry]:
    """Every name under `root`, sorted by relative path. Raises `UnsafeEntry` for a link,
    device, FIFO or socket anywhere (or `root` itself not being a folder), for nesting past
    `MAX_DEPTH`, or for more than `max_entries` names."""
    out: list[Entry] = []
    for rel, e in (_walk(root, dir_fd) if HAVE_DIR_FD else _walk_by_path(Path(root))):
        st = e.stat(follow_symlinks=False)
        _check(rel, st, allow_hardlinks=allow_hardlinks)
        is_dir = stat.S_ISDIR(st.st_mode)
        out.append(Entry(rel, is_dir, 0 if is_dir else st.st_size, st.st_mode))
        if max_entries is not None and len(out) > max_entries:
            raise TreeTooLarge(f"more than {max_entries} files and folders")
    out.sort(key=lambda x: x.rel)
    return out


def open_regular(root: str | os.PathLike[str], rel: str, *, root_fd: int | None = None) -> int:
    """An fd for the regular file `rel` under `root` (or under the open folder `root_fd`),
    each component opened without following links. Raises `UnsafeEntry` otherwise."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafeEntry(f"{rel}: not a plain relative path")
    if not HAVE_DIR_FD:
        p = Path(root, *parts)
        before = os.lstat(p)
        _check(rel, before, allow_hardlinks=True)
        fd = os.open(p, FILE_FLAGS)
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode) or (before.st_ino, before.st_dev) != (after.st_ino, after.st_dev):
            os.close(fd)
            raise UnsafeEntry(f"{rel}: changed while being opened (refused)")
        return fd
    cur = root_fd if root_fd is not None else open_dir(root)
    owned = [] if root_fd is not None else [cur]
    try:
        for part in parts[:-1]:
            cur = open_dir(part, dir_fd=cur)
            owned.append(cur)
        return _open_file(parts[-1], cur, rel)
    finally:
        for d in owned:
            os.close(d)


def _open_file(path, dir_fd: int | None, label: str) -> int:
    try:
        fd = os.open(path, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        st = _lstat(path, dir_fd)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafeEntry(f"{label}: {kind_of(st.st_mode)} (refused)") from None
        raise e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeEntry(f"{label}: {kind_of(st.st_mode)} (refused)")
    return fd


@dataclass(frozen=True)
class Usage:
    """What a folder holds: bytes allocated and names; `too_deep` when nesting passed MAX_DEPTH."""

    bytes: int = 0
    entries: int = 0
    too_deep: bool = False


def tree_usage(root: str | os.PathLike[str], *, dir_fd: int | None = None, stop_bytes: int | None = None,
               stop_entries: int | None = None) -> Usage:
    """Bytes and names under `root` (links not followed), stopping early once past
    `stop_bytes` or `stop_entries`. Every name counts as an entry (an empty file too); a
    file counts its size or its allocated blocks, whichever is larger (sparse files)."""
    st = _lstat(root, dir_fd)
    if st is None:
        return Usage()
    if not stat.S_ISDIR(st.st_mode):
        return Usage(_alloc(st), 1)
    total = entries = 0
    walk = _walk(root, dir_fd) if HAVE_DIR_FD else _walk_by_path(Path(root))
    try:
        for _rel, e in walk:
            entries += 1
            try:
                if not e.is_dir(follow_symlinks=False):
                    total += _alloc(e.stat(follow_symlinks=False))
            except OSError:
                continue
            if (stop_bytes is not None and total > stop_bytes) or (stop_entries is not None and entries > stop_entries):
                break
    except TreeTooLarge:
        return Usage(total, entries, too_deep=True)
    except OSError:
        pass
    finally:
        walk.close()
    return Usage(total, entries)


def _walk_by_path(root: Path) -> Iterator[tuple[str, os.DirEntry]]:
    """`_walk` where there is no openat (Windows): lstat-checked paths, links not entered."""
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeEntry(f"{root.name}: {kind_of(st.st_mode)} (refused: expected a folder)")
    stack = [(root, "")]
    while stack:
        d, prefix = stack.pop()
        if prefix.count("/") >= MAX_DEPTH:
            raise TreeTooLarge(f"{short(prefix)}: folders nested deeper than {MAX_DEPTH} levels")
        with os.scandir(d) as it:
            for e in it:
                yield prefix + e.name, e
                if e.is_dir(follow_symlinks=False):
                    stack.append((Path(e.path), f"{prefix}{e.name}/"))


def _alloc(st: os.stat_result) -> int:
    return max(st.st_size, getattr(st, "st_blocks", 0) * 512)


def remove_tree(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> None:
    """Delete `path` and everything under it without following links; folders a job made
    unreadable are opened up first (their owner may), and nesting of any depth is flattened
    by moving deep folders up, so few fds are held at once. Best effort: what cannot be
    removed stays (the owner of the job folder can remove it later)."""
    if not HAVE_DIR_FD:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    st = _lstat(path, dir_fd)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        _quiet(os.unlink, path, dir_fd=dir_fd)
        return
    top = _open_writable_dir(path, dir_fd)
    if top is None:
        return
    try:
        hoisted: list[str] = []
        _remove_contents(top, top, hoisted)
        while hoisted:
            name = hoisted.pop()
            child = _open_writable_dir(name, top)
            if child is not None:
                try:
                    _remove_contents(child, top, hoisted)
                finally:
                    os.close(child)
            _quiet(os.rmdir, name, dir_fd=top)
    finally:
        os.close(top)
    _quiet(os.rmdir, path, dir_fd=dir_fd)


def _remove_contents(start: int, top: int, hoisted: list[str]) -> None:
    """Empty the open folder `start`, depth first; a folder met `MAX_DEPTH // 2` levels down
    is moved into `top` under a fresh name and left in `hoisted` for the caller."""
    import secrets

    stack: list[tuple[int, list[str], str]] = [(start, _listdir(start), "")]
    try:
        while stack:
            fd, names, my_name = stack[-1]
            if not names:
                stack.pop()
                if stack:
                    os.close(fd)
                    _quiet(os.rmdir, my_name, dir_fd=stack[-1][0])
                continue
            name = names.pop()
            st = _lstat(name, fd)
            if st is None:
                continue
            if not stat.S_ISDIR(st.st_mode):
                _quiet(os.unlink, name, dir_fd=fd)
            elif len(stack) >= MAX_DEPTH // 2:
                new = f".kminer-deep-{secrets.token_hex(8)}"
                try:
                    os.rename(name, new, src_dir_fd=fd, dst_dir_fd=top)
                    hoisted.append(new)
                except OSError:
                    pass
            else:
                child = _open_writable_dir(name, fd)
                if child is not None:
                    stack.append((child, _listdir(child), name))
    finally:
        for fd, _, _ in stack[1:]:
            os.close(fd)


def _listdir(fd: int) -> list[str]:
    try:
        return os.listdir(fd)
    except OSError:
        return []


def _open_writable_dir(name, dir_fd: int | None) -> int | None:
    for attempt in (0, 1):
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
            try:
                os.fchmod(fd, 0o700)
            except OSError:
                pass
            return fd
        except PermissionError:
            if attempt == 0:
                st = _lstat(name, dir_fd)
                if st is None or not stat.S_ISDIR(st.st_mode):
                    return None
                _quiet(os.chmod, name, 0o700, dir_fd=dir_fd)
        except OSError:
            return None
    return None


def _quiet(fn, *args, **kw) -> None:
    try:
        fn(*args, **kw)
    except OSError:
        pass


def read_tail(path: str | os.PathLike[str], max_bytes: int, *, dir_fd: int | None = None) -> tuple[bytes, int]:
    """The last `max_bytes` of the regular file `path` and its size then. Raises
    `UnsafeEntry` for a link, FIFO or device; `FileNotFoundError` when missing."""
    fd = _open_file(path, dir_fd, Path(path).name)
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - max_bytes)
        os.lseek(fd, start, os.SEEK_SET)
        return _read_upto(fd, min(max_bytes, size - start)), size
    finally:
        os.close(fd)


def read_bounded(path: str | os.PathLike[str], max_bytes: int, *, dir_fd: int | None = None) -> bytes:
    """The whole regular file `path`; `UnsafeEntry` if it is not one or is over `max_bytes`."""
    fd = _open_file(path, dir_fd, Path(path).name)
    try:
        data = _read_upto(fd, max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafeEntry(f"{Path(path).name}: over the {max_bytes} byte limit")
        return data
    finally:
        os.close(fd)


def _read_upto(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            break
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)
