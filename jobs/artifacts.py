"""Content-addressed artifact store: files and folders named by their sha256.

- Local store: `<root>/<aa>/<sha256>` (aa = first two hex digits). A folder is stored as
  a deterministic tar (sorted names, mtime 0, uid/gid 0, modes 0644/0755, no links or
  devices), so the same tree always has the same hash on every machine.
- Remote: any fsspec URL (`file:///srv/share`, `s3://bucket/prefix`...) holding the same
  `<sha256>` names flat; `put` uploads, `get` downloads.
- Every get verifies the hash. Downloads go to a temp file beside the target and are
  renamed only once verified, so a partial or corrupt download never becomes visible.
- A URI a stranger wrote (a market spec's inputs) is fetched only under a `UrlPolicy`
  (jobs/url_policy.py: schemes, public addresses, caps); the store's own remote is trusted.
- Folders are read without following anything (jobs/safe_fs.py): links, devices, FIFOs
  and sockets are refused by name, and a job's outputs may be capped in files and bytes.

Thread-safe for concurrent puts/gets of the same hash (renames are atomic; a duplicate
write just replaces identical bytes).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from jobs import safe_fs
from jobs.url_fetch import FetchError, fetch_url
from jobs.url_policy import UrlPolicy, UrlRefused, local_path_problem

_HEX = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class ArtifactError(Exception):
    """An artifact that is missing, corrupt, or unsafe to unpack; one-line message."""


def _check_hash(sha: str) -> str:
    if not _HEX.match(sha):
        raise ArtifactError(f"not a sha256: {sha!r}")
    return sha


class ArtifactRefused(ArtifactError):
    """A source no retry can mend: refused by the URL policy, over its size cap, not a regular
    file, or bytes that do not match the hash. Callers skip or reject at once, never retry."""


class OutputTooLarge(ArtifactError):
    """A folder past its file-count or archive-size limit; nothing was stored."""


def write_tree_tar(src: Path | str, fileobj: BinaryIO, *, max_files: int | None = None, max_bytes: int | None = None,
                   allow_hardlinks: bool = True, dir_fd: int | None = None) -> None:
    """Write `src` (relative to the open folder `dir_fd` when given) as a deterministic tar
    to `fileobj`. Links, devices, FIFOs and sockets are refused (nothing is followed: see
    jobs.safe_fs); so are more than `max_files` entries (files and folders) and an archive
    growing past `max_bytes` (headers included)."""
    try:
        entries = safe_fs.tree_entries(src, dir_fd=dir_fd, max_entries=max_files, allow_hardlinks=allow_hardlinks)
    except safe_fs.TreeTooLarge as e:
        raise OutputTooLarge(str(e)) from None
    except safe_fs.UnsafeEntry as e:
        raise ArtifactError(str(e)) from None
    if max_bytes is not None:
        least = sum(_TAR_BLOCK + -(-e.size // _TAR_BLOCK) * _TAR_BLOCK for e in entries)
        if least > max_bytes:
            raise OutputTooLarge(f"the archive would take over {least} bytes (limit {max_bytes})")
    out = fileobj if max_bytes is None else _CappedWriter(fileobj, max_bytes)
    root_fd = safe_fs.open_dir(src, dir_fd=dir_fd) if safe_fs.HAVE_DIR_FD else None
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
            for e in entries:
                info = tarfile.TarInfo(e.rel)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if e.is_dir:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                try:
                    fd = safe_fs.open_regular(src, e.rel, root_fd=root_fd)
                except safe_fs.UnsafeEntry as err:
                    raise ArtifactError(str(err)) from None
                with os.fdopen(fd, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    if size != e.size:
                        raise ArtifactError(f"{e.rel}: changed while being stored")
                    info.size, info.mode = size, 0o755 if e.mode & 0o111 else 0o644
                    tar.addfile(info, f)
    finally:
        if root_fd is not None:
            os.close(root_fd)


_TAR_BLOCK = 512


class _CappedWriter(io.RawIOBase):
    """Passes writes through until `cap` bytes, then raises `OutputTooLarge`."""

    def __init__(self, out: BinaryIO, cap: int):
        self._out, self._cap, self._n = out, cap, 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._n

    def write(self, b) -> int:  # type: ignore[override]
        self._n += len(b)
        if self._n > self._cap:
            raise OutputTooLarge(f"the archive grew past {self._cap} bytes")
        self._out.write(b)
        return len(b)


def tree_sha256(src: Path) -> str:
    """The hash a folder gets in the store (sha256 of its deterministic tar)."""
    h = _HashWriter()
    write_tree_tar(src, h)  # type: ignore[arg-type]
    return h.hexdigest()


class _HashWriter(io.RawIOBase):
    def __init__(self, out: BinaryIO | None = None):
        self._h = hashlib.sha256()
        self._out = out
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self._h.update(b)
        self._pos += len(b)
        if self._out is not None:
            self._out.write(b)
        return len(b)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def extract_tree_tar(archive: Path, dest: Path) -> None:
    """Unpack a stored folder into `dest` (must not exist); refuses links, devices and `..`."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for m in tar:
                parts = Path(m.name).parts
                if m.name.startswith("/") or ".." in parts or not (m.isdir() or m.isreg()):
                    raise ArtifactError(f"unsafe entry in folder archive: {m.name!r}")
                target = tmp.joinpath(*parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    assert src is not None
                    with open(target, "wb") as f:
                        shutil.copyfileobj(src, f, _CHUNK)
                    os.chmod(target, 0o755 if m.mode & 0o111 else 0o644)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class ArtifactStore:
    """A local content-addressed folder, optionally backed by a remote fsspec URL."""

    def __init__(self, root: Path, remote: str | None = None):
        self.root = Path(root)
        self.remote = remote.rstrip("/") if remote else None

    def path(self, sha: str) -> Path:
        _check_hash(sha)
        return self.root / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    # ---- put -------------------------------------------------------------------------
    def put_file(self, src: Path) -> str:
        """Store a file; returns its sha256 (and uploads it when a remote is set)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put.", dir=self.root)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(tmp, h.hexdigest())
        except BaseException:
            _unlink(tmp)
            raise

    def put_bytes(self, data: bytes) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put.", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(tmp, hashlib.sha256(data).hexdigest())
        except BaseException:
            _unlink(tmp)
            raise

    def put_dir(self, src: Path | str, *, max_files: int | None = None, max_bytes: int | None = None,
                allow_hardlinks: bool = True, dir_fd: int | None = None) -> str:
        """Store a folder as its deterministic tar; returns the tar's sha256. With limits
        (a job's outputs) a folder past them raises `OutputTooLarge` and nothing is kept."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put.", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                hw = _HashWriter(out)
                write_tree_tar(src, hw, max_files=max_files, max_bytes=max_bytes,  # type: ignore[arg-type]
                               allow_hardlinks=allow_hardlinks, dir_fd=dir_fd)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(tmp, hw.hexdigest())
        except BaseException:
            _unlink(tmp)
            raise

    def _commit(self, tmp: str, sha: str) -> str:
        dest = self.path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        if self.remote:
            self._upload(dest, sha)
        return sha

    def _upload(self, local: Path, sha: str) -> None:
        import fsspec

        url = f"{self.remote}/{sha}"
        fs, path = fsspec.core.url_to_fs(url)
        if fs.exists(path):
            return
        tmp_path = f"{path}.part-{os.getpid()}"
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)  # a new shared folder (object stores: a no-op)
        fs.put_file(str(local), tmp_path)
        try:
            fs.mv(tmp_path, path)
        except Exception:
            fs.rm(tmp_path)
            raise

    # ---- get -------------------------------------------------------------------------
    def fetch(self, sha: str, uri: str | None = None, *, base_dir: Path | None = None,
              policy: UrlPolicy | None = None) -> Path:
        """Make sure `sha` is in the local store, downloading from `uri` (or the remote) if
        needed; returns its local path. Raises `ArtifactError` if it cannot be had intact.

        `policy`: what `uri` may name when a stranger wrote it (jobs.url_policy); None
        trusts it (a spec the user wrote). The store's own remote is always trusted."""
        dest = self.path(sha)
        if dest.is_file():
            return dest
        sources: list[str] = []
        if uri:
            sources.append(uri)
        if self.remote:
            sources.append(f"{self.remote}/{sha}")
        if not sources:
            raise ArtifactError(f"artifact {sha[:12]}… is not in the store and has no URI")
        errors, refused = [], 0
        for src in sources:
            try:
                return self._download(src, sha, base_dir, policy if src == uri else None)
            except ArtifactError as e:
                errors.append(str(e))
                refused += isinstance(e, ArtifactRefused)
            except Exception as e:  # fsspec raises many kinds (FileNotFoundError, botocore, aiohttp...)
                errors.append(f"{src}: {type(e).__name__}: {e}")
        raise (ArtifactRefused if refused == len(sources) else ArtifactError)("; ".join(errors))

    def _download(self, src: str, sha: str, base_dir: Path | None, policy: UrlPolicy | None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".get.", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out:
                hw = _HashWriter(out)
                if policy is not None and src.split("://", 1)[0].lower() in ("http", "https"):
                    try:
                        fetch_url(src, hw, policy)  # type: ignore[arg-type]
                    except UrlRefused as e:
                        raise ArtifactRefused(str(e)) from None
                    except FetchError as e:  # over the size cap is final; a node that is away is not
                        raise (ArtifactRefused if "byte limit" in str(e) else ArtifactError)(str(e)) from None
                else:
                    with _open_source(src, base_dir, policy) as f:
                        while chunk := f.read(_CHUNK):
                            hw.write(chunk)
                            if policy is not None and hw.tell() > policy.max_bytes:
                                raise ArtifactRefused(f"{src}: over the {policy.max_bytes} byte limit")
                out.flush()
                os.fsync(out.fileno())
            got = hw.hexdigest()
            if got != sha:
                # never quote what was read: a spec naming a local file would learn its hash
                raise ArtifactRefused(f"{src}: hash mismatch (expected {sha[:12]}…)")
            dest = self.path(sha)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
            return dest
        except BaseException:
            _unlink(tmp)
            raise

    def materialize(self, sha: str, dest: Path, *, kind: str = "file", uri: str | None = None,
                    base_dir: Path | None = None, policy: UrlPolicy | None = None) -> Path:
        """Place a verified copy of `sha` at `dest` (a file, or an unpacked folder)."""
        local = self.fetch(sha, uri, base_dir=base_dir, policy=policy)
        if _sha_of(local) != sha:   # the store itself may have been tampered with or rotted
            _unlink(str(local))
            raise ArtifactError(f"stored artifact {sha[:12]}… is corrupt (removed); fetch it again")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            extract_tree_tar(local, dest)
        else:
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        return dest


def _sha_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _open_source(src: str, base_dir: Path | None, policy: UrlPolicy | None = None):
    """Open a URI for reading: a plain path (relative to `base_dir`), a file:// URL, or any
    fsspec URL; with a `policy`, only what it allows (jobs.url_policy.local_path_problem for
    local files, listed fsspec schemes), and a local file only if it is a regular file."""
    scheme = src.split("://", 1)[0].lower() if "://" in src else ""
    if scheme in ("", "file"):
        if scheme == "file":
            from urllib.parse import urlsplit
            from urllib.request import url2pathname

            p = Path(url2pathname(urlsplit(src).path))
        else:
            p = Path(src)
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
        if policy is not None:
            why = local_path_problem(p, policy)
            if why:
                raise ArtifactRefused(f"{src}: {why}")
            try:   # never a FIFO that blocks or a device that never ends
                return os.fdopen(safe_fs.open_regular(p.parent, p.name), "rb")
            except safe_fs.UnsafeEntry as e:
                raise ArtifactRefused(f"{src}: {e}") from None
            except OSError as e:
                raise ArtifactError(f"{src}: {e.strerror or e}") from None
        return _open_local_file(p, src)
    elif policy is not None and scheme not in policy.fsspec_schemes:
        raise ArtifactRefused(f"{src}: scheme {scheme!r} not allowed for this job's inputs")
    import fsspec

    return fsspec.open(src, "rb").open()


def _open_local_file(p: Path, src: str):
    """A local file the user named (their own spec, the store's own folder remote): links are
    followed, but only a regular file is read (never a FIFO that blocks or a device such as
    /dev/zero that never ends)."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise ArtifactError(f"{src}: {e.strerror or e}") from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise ArtifactRefused(f"{src}: not a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return f


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
