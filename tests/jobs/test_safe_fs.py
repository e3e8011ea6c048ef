"""No-follow, bounded reading of what a job left behind (jobs/safe_fs.py)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from jobs import safe_fs
from jobs.artifacts import ArtifactError, ArtifactStore, OutputTooLarge, tree_sha256


def _deep(root, levels: int) -> None:
    fd = os.open(root, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)


@pytest.fixture(params=["openat", "by-path"])
def mode(request, monkeypatch):
    """Every check on both code paths: openat (Linux, macOS) and lstat/fstat (Windows)."""
    monkeypatch.setattr(safe_fs, "HAVE_DIR_FD", request.param == "openat")
    return request.param


def test_entries_are_sorted_and_the_hash_is_unchanged(tmp_path, mode):
    for name in ("b/2.txt", "a.txt", "b/1.txt"):
        (tmp_path / "t" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "t" / name).write_text(name)
    assert [e.rel for e in safe_fs.tree_entries(tmp_path / "t")] == ["a.txt", "b", "b/1.txt", "b/2.txt"]
    # the documented layout (so every stored folder's hash) is unchanged: a reference tar built here
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in ("a.txt", "b", "b/1.txt", "b/2.txt"):
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if rel == "b":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = rel.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    assert tree_sha256(tmp_path / "t") == hashlib.sha256(buf.getvalue()).hexdigest()


@pytest.mark.parametrize("what", ["symlink", "fifo", "hardlink", "root_link"])
def test_what_is_not_a_plain_file_or_folder_is_refused_with_its_name(tmp_path, mode, what):
    t = tmp_path / "t"
    t.mkdir()
    (t / "ok.txt").write_text("ok")
    root = t
    if what == "symlink":
        (t / "sub").mkdir()
        (t / "sub" / "x").symlink_to("/etc/hostname")
    elif what == "fifo":
        os.mkfifo(t / "pipe")
    elif what == "hardlink":
        os.link(t / "ok.txt", t / "twin.txt")
    else:
        root = tmp_path / "link"
        root.symlink_to(t)
    with pytest.raises(safe_fs.UnsafeEntry, match={"symlink": r"sub/x: a symbolic link", "fifo": r"pipe: a FIFO",
                                                   "hardlink": r"other hard links",
                                                   "root_link": r"link: a symbolic link"}[what]):
        safe_fs.tree_entries(root, allow_hardlinks=False)


def test_nesting_and_counts_are_bounded(tmp_path, mode):
    _deep(tmp_path, safe_fs.MAX_DEPTH + 5)
    assert safe_fs.tree_usage(tmp_path).too_deep
    with pytest.raises(safe_fs.TreeTooLarge, match="nested deeper than 128"):
        safe_fs.tree_entries(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(50):
        (flat / str(i)).touch()
    assert safe_fs.tree_usage(flat, stop_entries=10).entries == 11
    with pytest.raises(safe_fs.TreeTooLarge, match="more than 10"):
        safe_fs.tree_entries(flat, max_entries=10)


def test_archive_never_grows_past_its_limits_and_leaves_nothing(tmp_path):
    src = tmp_path / "out"
    src.mkdir()
    for i in range(300):
        (src / f"{i}").touch()
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(OutputTooLarge, match="more than 100 files"):
        store.put_dir(src, max_files=100)
    with pytest.raises(OutputTooLarge, match="the archive would take over 153600 bytes"):
        store.put_dir(src, max_bytes=100_000)                 # 300 headers of 512 bytes, no content at all
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    with pytest.raises(ArtifactError, match="a symbolic link"):
        (src / "l").symlink_to("/etc/passwd")
        store.put_dir(src)


def test_remove_tree_takes_what_a_job_made_unreadable_or_deep(tmp_path):
    job = tmp_path / "work"
    (job / "locked" / "inner").mkdir(parents=True)
    (job / "locked" / "inner" / "f").write_text("x")
    (job / "locked" / "inner").chmod(0)
    (job / "locked").chmod(0)
    _deep(job, 1000)
    (job / "escape").symlink_to(tmp_path / "keep")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious").write_text("stay")
    safe_fs.remove_tree(job)
    assert not job.exists() and (tmp_path / "keep" / "precious").read_text() == "stay"


def test_bounded_reads_refuse_links_and_devices(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"0123456789")
    assert safe_fs.read_tail(f, 4) == (b"6789", 10)
    assert safe_fs.read_bounded(f, 10) == b"0123456789"
    with pytest.raises(safe_fs.UnsafeEntry, match="over the 9 byte limit"):
        safe_fs.read_bounded(f, 9)
    (tmp_path / "z").symlink_to("/dev/zero")
    with pytest.raises(safe_fs.UnsafeEntry, match="a symbolic link"):
        safe_fs.read_tail(tmp_path / "z", 10)
