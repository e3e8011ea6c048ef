"""Benchmark: the transport between two network namespaces (needs root).

    .venv/bin/python bench/bench_transport.py [--mb 500] [--results 20] [--idle-s 20] [--json]

- throughput of one `--mb` file served in namespace 'a' and fetched in 'b' by
  `python -m jobs.transport` (verified, written to disk), against `cp` on this disk and a
  plain TCP copy (Python sendfile, what `nc` does) over the same veth: MB/s and ratio;
- memory (RSS) of a node serving `--results` sealed results of 1 MiB each;
- what an idle node costs: CPU % and bytes on its veth over `--idle-s` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
TCP_SEND = "import socket,os,sys;s=socket.socket();s.bind(('0.0.0.0',7000));s.listen();c,_=s.accept();f=open(sys.argv[1],'rb');n=os.fstat(f.fileno()).st_size;o=0\nwhile o<n: o+=os.sendfile(c.fileno(),f.fileno(),o,n-o)\nc.close()"
TCP_RECV = "import socket,sys;c=socket.create_connection((sys.argv[1],7000));f=open(sys.argv[2],'wb')\nwhile d:=c.recv(1<<20): f.write(d)\nf.flush();import os;os.fsync(f.fileno())"


def _t(argv: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT, timeout=900)
    return time.monotonic() - t0


def _rss_mb(pid: int) -> float:
    import psutil

    p = psutil.Process(pid)
    return sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20


def _veth_bytes(lab, role: str) -> int:
    out = lab.sh(role, "cat", "/proc/net/dev")
    return sum(int(l.split()[1]) + int(l.split()[9]) for l in out.splitlines()[2:] if not l.strip().startswith("lo:"))


def run(mb: int, results: int, idle_s: float) -> dict:
    from tests.netlab import pair, why_no_netlab

    if (reason := why_no_netlab()):
        raise SystemExit(f"bench_transport: {reason}")
    lab, a_ip, _ = pair()
    out: dict = {"mb": mb}
    tmp = Path(tempfile.mkdtemp(prefix="bench-transport-"))
    try:
        src = tmp / "src" / "data.bin"
        src.parent.mkdir()
        with open(src, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        out["cp_mb_s"] = mb / _t(["cp", str(src), str(tmp / "cp.bin")])
        os.unlink(tmp / "cp.bin")
        srv = lab.popen("a", [PY, "-c", TCP_SEND, str(src)])
        time.sleep(0.5)
        out["tcp_mb_s"] = mb / _t(lab.cmd("b", PY, "-c", TCP_RECV, a_ip, str(tmp / "tcp.bin")))
        srv.wait(30)
        os.unlink(tmp / "tcp.bin")
        t0 = time.monotonic()
        seed = lab.popen("a", [PY, "-m", "jobs.transport", "serve", str(src), "--home", str(tmp / "miner"), "--listen",
                               "0.0.0.0:6881", "--advertise", f"{a_ip}:6881"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        uri = seed.stdout.readline().strip()
        out["publish_s"] = time.monotonic() - t0  # hashing the file into a v2 torrent
        r = subprocess.run(lab.cmd("b", PY, "-m", "jobs.transport", "fetch", uri, "--home", str(tmp / "buyer"), "--out",
                                   str(tmp / "got.bin"), "--json"), cwd=ROOT, capture_output=True, text=True, timeout=900)
        out["transport_mb_s"] = mb / json.loads(r.stdout)["seconds"]
        out["transport_vs_tcp"] = out["transport_mb_s"] / out["tcp_mb_s"]
        seed.terminate()
        seed.wait(30)
        shutil.rmtree(tmp / "miner")
        shutil.rmtree(tmp / "buyer")
        # 20 sealed results, then idle
        for i in range(results):
            d = tmp / "results" / f"r{i:02d}"
            d.mkdir(parents=True)
            (d / "frame.png").write_bytes(os.urandom(1 << 20))
        node = lab.popen("a", [PY, "-m", "jobs.transport", "serve", *map(str, sorted((tmp / "results").iterdir())), "--home",
                               str(tmp / "serve20"), "--listen", "0.0.0.0:6881", "--sealed", "--reader", "0x" + "11" * 20],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(results):
            node.stdout.readline()
        time.sleep(2)
        out[f"rss_serving_{results}_mb"] = _rss_mb(node.pid)
        import psutil

        procs = [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
        cpu0, net0 = sum(sum(p.cpu_times()[:2]) for p in procs), _veth_bytes(lab, "a")
        time.sleep(idle_s)
        out["idle_cpu_pct"] = 100 * (sum(sum(p.cpu_times()[:2]) for p in procs) - cpu0) / idle_s
        out["idle_net_bytes_s"] = (_veth_bytes(lab, "a") - net0) / idle_s
        node.terminate()
        node.wait(30)
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--results", type=int, default=20)
    ap.add_argument("--idle-s", type=float, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run(a.mb, a.results, a.idle_s)
    print(json.dumps(res, indent=2) if a.json else "\n".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}"
                                                            for k, v in res.items()))


if __name__ == "__main__":
    main()
