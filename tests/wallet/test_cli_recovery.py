"""`kminer wallet create` shows the recovery phrase once, `kminer wallet restore` makes the same
wallet from it (bad words: one line, exit 1, nothing written), and `kminer wallet mining-key`
makes, shows and revokes the rig's signing key on the embedded chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kminer(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, KMINER_HOME=str(home), KMINER_PASSWORD="pw-12345678")
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180, input=stdin)


def test_create_shows_the_phrase_and_restore_makes_the_same_wallet(tmp_path):
    r = kminer(tmp_path / "a", "wallet", "create", "--json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    phrase = made["recovery_phrase"]
    assert len(phrase.split()) == 12
    words_file = tmp_path / "words.txt"
    words = phrase.split()
    words_file.write_text(" ".join(words[:-1] + ["notaword"]) + "\n")
    bad = kminer(tmp_path / "b", "wallet", "restore", "--phrase-file", str(words_file))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "word 12" in bad.stderr
    assert "notaword" not in bad.stderr and not (tmp_path / "b" / "data" / "keystore").exists()
    words_file.write_text(phrase.upper() + "\n")
    ok = kminer(tmp_path / "b", "wallet", "restore", "--phrase-file", str(words_file), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["address"] == made["address"]


def test_mining_key_create_show_revoke(tmp_path):
    home = tmp_path / "rig"
    assert kminer(home, "wallet", "create").returncode == 0
    r = kminer(home, "wallet", "mining-key", "create", "--storage", "file", "--json")
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)["key"]
    assert key["storage"] == "file" and json.loads(r.stdout)["left"] == []
    shown = json.loads(kminer(home, "wallet", "mining-key", "show", "--json").stdout)
    assert shown["active"]["address"] == key["address"] and int(shown["eth_wei"]) == 10 * 10**18
    again = kminer(home, "wallet", "mining-key", "create")
    assert again.returncode == 1 and "rotate" in again.stderr and again.stderr.count("\n") == 1
    refused = kminer(home, "wallet", "mining-key", "revoke", stdin="")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    out = kminer(home, "wallet", "mining-key", "revoke", "--yes")
    assert out.returncode == 0 and "revoked" in out.stdout, out.stderr
