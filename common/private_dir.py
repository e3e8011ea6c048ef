"""A per-user folder for short-lived runtime files (locks), with safe permissions.

`runtime_dir("nonce-locks")` is `$XDG_RUNTIME_DIR/knowledge-miner/nonce-locks`: the user's
runtime folder (systemd makes it `/run/user/UID`, mode 0700, and empties it at logout). It
is shared by every process of the user, whatever its app home, which is what locks that
guard one account's nonces need. Without a usable runtime folder (no session manager, e.g.
a rig started from cron or a container) it falls back to `/run/user/UID`, then to a
`kminer-UID` folder in the temporary directory, made 0700.

Every folder on the way is checked with lstat: a real folder (not a link), owned by this
user, not writable by group or others (a folder we own is tightened to 0700; one another
user owns is refused with `UnsafeDir`, so no one can plant a lock folder for us).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Mapping

APP_DIR = "knowledge-miner"


class UnsafeDir(RuntimeError):
    """A runtime folder exists but is not safely ours (another owner, a link, open permissions)."""


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def check_private(path: Path, *, create: bool = True, fix_mode: bool = True) -> Path:
    """`path` as a folder only this user can enter: made 0700 when missing; raises
    `UnsafeDir` when it is a link, not a folder, or owned by someone else."""
    uid = _uid()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeDir(f"{path} is not a plain folder (a link or a file); remove it and start again")
    if uid is None:
        return path
    if st.st_uid != uid:
        raise UnsafeDir(f"{path} belongs to user id {st.st_uid}, not to you ({uid}); remove it or set XDG_RUNTIME_DIR")
    if st.st_mode & 0o077:
        if not fix_mode:
            raise UnsafeDir(f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o})")
        os.chmod(path, 0o700)
    return path


def _usable_base(p: str | None) -> Path | None:
    """A runtime base that exists, is absolute, ours and private (as systemd makes it)."""
    if not p or not os.path.isabs(p):
        return None
    try:
        st = os.lstat(p)
    except OSError:
        return None
    uid = _uid()
    if not stat.S_ISDIR(st.st_mode) or (uid is not None and st.st_uid != uid) or st.st_mode & 0o077:
        return None
    if not os.access(p, os.W_OK | os.X_OK):
        return None
    return Path(p)


def runtime_base(env: Mapping[str, str] | None = None) -> Path:
    """The user's runtime folder for this app (created): see the module docstring."""
    env = os.environ if env is None else env
    uid = _uid()
    for cand in (env.get("XDG_RUNTIME_DIR"), f"/run/user/{uid}" if uid is not None else None):
        base = _usable_base(cand)
        if base is not None:
            return check_private(base / APP_DIR)
    if uid is None:  # Windows: the temporary folder is already per user
        d = Path(tempfile.gettempdir()) / APP_DIR
        d.mkdir(exist_ok=True)
        return d
    return check_private(Path(tempfile.gettempdir()) / f"kminer-{uid}")


def runtime_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    """`runtime_base()/name`, created 0700 and checked like its parent."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"runtime folder name must be one plain name, got {name!r}")
    return check_private(runtime_base(env) / name)
