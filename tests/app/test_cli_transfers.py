"""`kminer transfers`: what a home's transport serves and fetches, read from the status file of
a real node (app.orders.Peer over libtorrent on 127.0.0.1) running in another process's home;
and a hostile or corrupt status file never crashes it (one line, exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READER = "0x" + "ab" * 20


def kminer(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, KMINER_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "cli", "transfers", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def wait_for(what: str, fn, timeout_s: float = 30.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def homes(tmp_path):
    """Two app homes on this machine, each with its transport peer on 127.0.0.1."""
    from app.orders import Peer
    from app.paths import resolve_paths

    made = []

    def open_home(name: str, key: bytes):
        paths = resolve_paths({"KMINER_HOME": str(tmp_path / name)}).ensure()
        peer = Peer.open(paths.data_dir, host="127.0.0.1", identity_key=key)
        made.append(peer)
        assert peer.node.home == paths.transport_dir  # where `kminer transfers` looks
        return paths, peer

    yield open_home
    for p in made:
        p.close()


def test_transfers_shows_what_a_running_node_serves_and_what_another_home_fetched(homes, tmp_path):
    from jobs.transport import TransportNode

    miner_paths, miner = homes("miner", b"\x11" * 32)
    buyer_paths, buyer = homes("buyer", b"\x22" * 32)
    result = tmp_path / "shard-0"
    result.mkdir()
    for i in range(6):
        (result / f"frame_{i:03d}.bin").write_bytes(os.urandom(200_000))
    until = time.time() + 3600
    shared = miner.node.share(result, until_ts=until, reader=READER, kind="result")
    assert isinstance(miner.node, TransportNode)
    buyer.node.fetch(shared.ref, timeout_s=30)

    def served_with_upload():
        doc = json.loads(kminer(miner_paths.data_dir.parent, "--json").stdout)["nodes"][0]
        rows = doc["rows"]
        return doc if rows and rows[0]["progress"] == 1.0 and doc["running"] else None

    doc = wait_for("the miner's status", served_with_upload)
    (row,) = doc["rows"]
    assert row["role"] == "serve" and row["kind"] == "result" and row["reader"] in (READER, READER.lower())
    assert row["info_hash"] == shared.ref.info_hash and row["state"] == "serving"
    assert row["until_ts"] == pytest.approx(until) and row["size_bytes"] > 1_200_000
    assert doc["listen_port"] == miner.node.engine.listen_port() and doc["quota_bytes"] == 20 << 30

    text = kminer(miner_paths.data_dir.parent).stdout
    assert "transport running" in text and "Serving:" in text and "[####################] 100.0% serving" in text
    assert f"for {READER}" in text and "serve until 20" in text

    fetched = json.loads(kminer(buyer_paths.data_dir.parent, "--json").stdout)["nodes"][0]
    (frow,) = fetched["rows"]
    assert frow["role"] == "fetch" and frow["state"] == "done" and frow["progress"] == 1.0
    assert "Fetching:" in kminer(buyer_paths.data_dir.parent).stdout

    watch = kminer(miner_paths.data_dir.parent, "--watch", "--json", "--count", "2", "--interval", "0.2")
    lines = watch.stdout.strip().splitlines()
    assert watch.returncode == 0 and len(lines) == 2 and all(json.loads(x)["nodes"][0]["rows"] for x in lines)


def test_a_home_without_a_transport_says_so_and_succeeds(tmp_path):
    r = kminer(tmp_path / "home")
    assert r.returncode == 0 and "has not run in this home yet" in r.stdout


@pytest.mark.parametrize("content", [
    b"{" * 200_000,                                           # deep nesting
    b"not json at all",
    b'{"transfers": "nope"}',
    b'{"transfers": [], "listen_port": "x"}',
    b"\x00\xff" * 1000,
    json.dumps({"updated_ts": 1e300, "listen_port": 6881, "transfers": [1, "x", None]}).encode(),
], ids=["deep", "junk", "no-list", "bad-port", "binary", "junk-rows"])
def test_a_corrupt_status_file_is_one_line_never_a_crash(tmp_path, content):
    home = tmp_path / "home"
    d = home / "data" / "transport"
    d.mkdir(parents=True)
    (d / "status.json").write_bytes(content)
    r = kminer(home)
    assert "Traceback" not in r.stderr
    if r.returncode:
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    else:
        assert "left out" in r.stdout  # rows that are not transfers are skipped and counted


def test_hostile_status_files_are_bounded_and_escapes_never_reach_the_terminal(tmp_path):
    from app.transfers import read_transfers

    d = tmp_path / "transport"
    d.mkdir()
    row = {"entry": {"info_hash": "ab" * 32, "name": "\x1b]0;pwned\x07evil\x1b[2J" + "x" * 1_000, "role": "serve",
                     "size_bytes": 10**30, "until_ts": -5, "reader": "\x1b[31m", "kind": "result"},
           "state": {"progress": 7.5, "peers": [{"addr": "1.2.3.4:5"}] * 100, "up_bytes_s": -1, "total_bytes": 1}}
    small = {"entry": {"info_hash": "cd" * 32, "name": "n", "role": "fetch", "size_bytes": 1}, "state": None}
    (d / "status.json").write_text(json.dumps({"updated_ts": time.time(), "listen_port": 1, "used_bytes": 0,
                                               "quota_bytes": 1, "transfers": [row] + [small] * 5999}))
    v = read_transfers(d)
    assert not v.problem and len(v.rows) == 5000 and v.skipped == 1000
    r = v.rows[0]
    assert "\x1b" not in r.name and "\x07" not in r.name and len(r.name) <= 300 and "\x1b" not in r.reader
    assert r.progress == 1.0 and r.peers == 64 and r.up_bytes_s == 0 and r.size_bytes <= 1 << 62 and r.until_ts == 0
    (d / "status.json").unlink()
    (d / "status.json").symlink_to("/etc/passwd")
    assert "cannot open" in read_transfers(d).problem
    (d / "status.json").unlink()
    os.mkfifo(d / "status.json")  # a reader that blocked on a FIFO would hang the command
    assert "not a regular file" in read_transfers(d).problem
    (d / "status.json").unlink()
    with open(d / "status.json", "wb") as f:
        f.truncate(64 << 20)  # sparse, 64 MiB
    assert "more than a status file may be" in read_transfers(d).problem
