"""The Linux signing hook (packaging/linux/sign.sh): skipped without a key, real GPG with one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SIGN = Path(__file__).resolve().parents[2] / "packaging" / "linux" / "sign.sh"


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMINER_GPG")}
    env.update(kw)
    return env


def test_without_a_key_it_says_so_and_signs_nothing(tmp_path):
    (tmp_path / "SHA256SUMS").write_text("00  x\n")
    p = subprocess.run(["bash", str(SIGN), str(tmp_path)], capture_output=True, text=True, env=_env())
    assert p.returncode == 0
    assert "unsigned" in p.stdout
    assert not (tmp_path / "SHA256SUMS.asc").exists()


def test_no_checksums_is_an_error(tmp_path):
    p = subprocess.run(["bash", str(SIGN), str(tmp_path)], capture_output=True, text=True, env=_env())
    assert p.returncode == 1 and "SHA256SUMS" in p.stderr


@pytest.fixture
def gnupg(tmp_path):
    if not shutil.which("gpg"):
        pytest.skip("needs gpg")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = _env(GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Package Test <pt@kminer.invalid>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True, timeout=60)
    yield env
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)


def test_with_a_key_the_signature_verifies_and_catches_tampering(tmp_path, gnupg):
    dist = tmp_path / "dist"
    dist.mkdir()
    sums = dist / "SHA256SUMS"
    sums.write_text("ab" * 32 + "  kminer.deb\n")
    p = subprocess.run(["bash", str(SIGN), str(dist)], capture_output=True, text=True,
                       env=dict(gnupg, KMINER_GPG_KEY="pt@kminer.invalid"), timeout=60)
    assert p.returncode == 0, p.stderr
    asc = dist / "SHA256SUMS.asc"
    assert asc.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    ok = subprocess.run(["gpg", "--batch", "--verify", str(asc), str(sums)], env=gnupg, capture_output=True)
    assert ok.returncode == 0
    sums.write_text("cd" * 32 + "  kminer.deb\n")
    bad = subprocess.run(["gpg", "--batch", "--verify", str(asc), str(sums)], env=gnupg, capture_output=True)
    assert bad.returncode != 0


def test_an_unknown_key_fails_loudly(tmp_path, gnupg):
    (tmp_path / "SHA256SUMS").write_text("00  x\n")
    p = subprocess.run(["bash", str(SIGN), str(tmp_path)], capture_output=True, text=True,
                       env=dict(gnupg, KMINER_GPG_KEY="nobody@kminer.invalid"), timeout=60)
    assert p.returncode != 0
    assert not (tmp_path / "SHA256SUMS.asc").exists()
