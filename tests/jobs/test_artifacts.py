"""Artifact store: content addressing, deterministic folders, verified gets, remotes."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time

import pytest

from jobs.artifacts import ArtifactError, ArtifactStore, extract_tree_tar, tree_sha256


def _tree(root, order):
    for name in order:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"content of {name}")


def test_put_and_get_file_round_trip(tmp_path):
    s = ArtifactStore(tmp_path / "store")
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello" * 1000)
    sha = s.put_file(f)
    assert sha == hashlib.sha256(f.read_bytes()).hexdigest()
    assert s.path(sha).read_bytes() == f.read_bytes()
    dest = s.materialize(sha, tmp_path / "out" / "a.bin")
    assert dest.read_bytes() == f.read_bytes()


def test_folder_hash_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a, ["x/1.txt", "y.txt", "x/z/2.txt"])
    _tree(b, ["x/z/2.txt", "y.txt", "x/1.txt"])
    os.utime(b / "y.txt", (1, 1))
    (b / "x" / "1.txt").chmod(0o600)
    assert tree_sha256(a) == tree_sha256(b)
    s = ArtifactStore(tmp_path / "store")
    sha = s.put_dir(a)
    assert sha == tree_sha256(a)
    out = s.materialize(sha, tmp_path / "copy", kind="dir")
    assert (out / "x" / "z" / "2.txt").read_text() == "content of x/z/2.txt"
    (b / "y.txt").write_text("changed")
    assert tree_sha256(b) != tree_sha256(a)


def test_links_are_refused_in_folders(tmp_path):
    a = tmp_path / "a"
    _tree(a, ["f.txt"])
    (a / "link").symlink_to("/etc/hostname")
    with pytest.raises(ArtifactError, match="no links"):
        tree_sha256(a)


def test_unsafe_archive_is_refused_and_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as t:
        data = b"x"
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(data))
    with pytest.raises(ArtifactError, match="unsafe entry"):
        extract_tree_tar(bad, tmp_path / "dest")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "dest").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.tar"]


def test_get_from_uri_verifies_hash_and_hides_partial_downloads(tmp_path):
    s = ArtifactStore(tmp_path / "store")
    good = tmp_path / "src.bin"
    good.write_bytes(b"real data")
    sha = hashlib.sha256(b"real data").hexdigest()
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(b"tampered data")
    with pytest.raises(ArtifactError, match="hash mismatch"):
        s.fetch(sha, "wrong.bin", base_dir=tmp_path)
    assert not s.has(sha)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []   # no partial file anywhere
    with pytest.raises(ArtifactError, match="No such file"):
        s.fetch(sha, "missing.bin", base_dir=tmp_path)
    assert s.fetch(sha, f"file://{good}").read_bytes() == b"real data"


def test_a_mismatch_never_quotes_the_hash_of_what_was_read(tmp_path):
    """A spec naming a local file must not learn anything of it from the error (issue 16)."""
    s = ArtifactStore(tmp_path / "store")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"the miner's private notes")
    with pytest.raises(ArtifactError) as e:
        s.fetch("0" * 64, str(secret))
    assert "hash mismatch" in str(e.value)
    assert hashlib.sha256(secret.read_bytes()).hexdigest()[:6] not in str(e.value)


def test_a_local_source_that_is_not_a_regular_file_is_refused_at_once(tmp_path):
    """/dev/zero never ends and a FIFO blocks its reader: neither is read, policy or not."""
    s = ArtifactStore(tmp_path / "store")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    for src in ("/dev/zero", str(fifo), fifo.as_uri()):
        with pytest.raises(ArtifactError, match="not a regular file"):
            s.fetch("0" * 64, src)
    assert time.monotonic() - t0 < 5
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_corrupted_store_entry_is_detected(tmp_path):
    s = ArtifactStore(tmp_path / "store")
    sha = s.put_bytes(b"original")
    s.path(sha).write_bytes(b"bit rot")
    with pytest.raises(ArtifactError, match="corrupt"):
        s.materialize(sha, tmp_path / "x")
    assert not s.has(sha) and not (tmp_path / "x").exists()


@pytest.mark.parametrize("remote", ["file", "memory"])
def test_remote_put_then_get_on_another_machine(tmp_path, remote):
    url = f"file://{tmp_path / 'share'}" if remote == "file" else f"memory://kminer-test-{time.time_ns()}"
    if remote == "file":
        (tmp_path / "share").mkdir()
    rig1 = ArtifactStore(tmp_path / "rig1", remote=url)
    d = tmp_path / "result"
    _tree(d, ["a.txt", "b/c.txt"])
    sha = rig1.put_dir(d)
    rig2 = ArtifactStore(tmp_path / "rig2", remote=url)
    assert not rig2.has(sha)
    out = rig2.materialize(sha, tmp_path / "fetched", kind="dir")
    assert (out / "b" / "c.txt").read_text() == "content of b/c.txt"
    assert rig2.has(sha)


def test_bad_hash_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="not a sha256"):
        ArtifactStore(tmp_path).path("../../etc/passwd")
