"""common.private_dir: the user's runtime folder for locks, private and ownership-checked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common.private_dir import UnsafeDir, check_private, runtime_base, runtime_dir


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_runtime_dir_under_xdg_runtime_dir(tmp_path):
    base = tmp_path / "run"
    base.mkdir(mode=0o700)
    d = runtime_dir("nonce-locks", env={"XDG_RUNTIME_DIR": str(base)})
    assert d == base / "knowledge-miner" / "nonce-locks"
    assert d.is_dir() and _mode(d) == 0o700 and _mode(d.parent) == 0o700
    assert os.lstat(d).st_uid == os.getuid()
    # a second call reuses it
    assert runtime_dir("nonce-locks", env={"XDG_RUNTIME_DIR": str(base)}) == d


def test_open_xdg_runtime_dir_is_not_used(tmp_path, monkeypatch):
    """An XDG_RUNTIME_DIR open to everyone is skipped; without /run/user/UID the fallback is a
    private kminer-UID folder in the temporary directory."""
    import common.private_dir as pd

    base = tmp_path / "run"
    base.mkdir()
    os.chmod(base, 0o777)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(pd.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    real = pd._usable_base
    monkeypatch.setattr(pd, "_usable_base", lambda p: None if p and p.startswith("/run/user/") else real(p))
    got = runtime_base({"XDG_RUNTIME_DIR": str(base)})
    assert got == tmp_path / "tmp" / f"kminer-{os.getuid()}"
    assert _mode(got) == 0o700


def test_own_folder_with_open_mode_is_tightened(tmp_path):
    d = tmp_path / "locks"
    d.mkdir()
    os.chmod(d, 0o777)
    check_private(d)
    assert _mode(d) == 0o700
    os.chmod(d, 0o755)
    with pytest.raises(UnsafeDir, match="open to other users"):
        check_private(d, fix_mode=False)


def test_link_or_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UnsafeDir, match="not a plain folder"):
        check_private(link)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UnsafeDir, match="not a plain folder"):
        check_private(f)


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_folder_of_another_user_is_refused(tmp_path):
    d = tmp_path / "planted"
    d.mkdir(mode=0o700)
    os.chown(d, 12345, 12345)
    with pytest.raises(UnsafeDir, match="belongs to user id 12345"):
        check_private(d)


def test_bad_names_are_refused(tmp_path):
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            runtime_dir(bad, env={"XDG_RUNTIME_DIR": str(tmp_path)})


def test_chain_nonce_locks_live_in_the_runtime_dir(tmp_path, monkeypatch):
    """The wallet's default nonce-lock folder is the runtime one, not /tmp/kminer-nonce-locks-UID."""
    from wallet.chain import Chain

    base = tmp_path / "run"
    base.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))

    class _Eth:
        chain_id = 1337

    class _W3:
        eth = _Eth()

    c = Chain(_W3(), embedded=True, label="t")
    assert c._lock_dir == base / "knowledge-miner" / "nonce-locks"
    assert _mode(c._lock_dir) == 0o700
