"""Benchmark behind the engine choice (docs/transport.md): libtorrent 2.1 against iroh 1.2.

    .venv/bin/python bench/bench_transport_engines.py [--mb 200] [--idle-s 10] [--json]

Two network namespaces on one veth (tests/netlab.py; needs root). For each engine, the
serving side runs in namespace 'a', the fetching side in 'b':
- libtorrent: a v2 torrent seeded in 'a', fetched in 'b' from a magnet with the seeder as a
  peer hint (no tracker, no DHT);
- iroh: an endpoint (minimal preset: no relay, no discovery) in 'a' writes the file down one
  QUIC stream to an endpoint in 'b' dialled by id + direct address. iroh 1.2's Python
  bindings have no blob store, so this is the raw ceiling: chunk hashing, resume and
  verification would still have to be written on top.
It prints MB/s, the serving process's RSS, and CPU seconds each engine burns while idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
ALPN = b"km-bench/0"
LT_TCP = {"enable_outgoing_utp": os.environ.get("LT_UTP") == "1", "enable_incoming_utp": os.environ.get("LT_UTP") == "1"}


# ---- roles, each run inside a namespace by the driver ---------------------------------------
def lt_seed(path: str, port: int) -> None:
    import libtorrent as lt

    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, 0, lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(Path(path).parent))
    ti = lt.torrent_info(ct.generate())
    ses = lt.session({"listen_interfaces": f"0.0.0.0:{port}", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False, "alert_mask": 0, **LT_TCP})
    ses.add_torrent({"ti": ti, "save_path": str(Path(path).parent), "flags": lt.torrent_flags.seed_mode})
    print(lt.make_magnet_uri(ti), flush=True)
    sys.stdin.read()  # serve until the driver closes stdin


def lt_get(magnet: str, peer: str, out: str) -> None:
    import libtorrent as lt

    ses = lt.session({"listen_interfaces": "0.0.0.0:0", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False, **LT_TCP})
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = out
    h = ses.add_torrent(atp)
    host, port = peer.rsplit(":", 1)
    t0 = time.monotonic()
    h.connect_peer((host, int(port)))
    while not h.status().is_seeding:
        time.sleep(0.05)
    print(json.dumps({"s": time.monotonic() - t0}), flush=True)


def iroh_serve(path: str, port: int) -> None:
    async def main():
        import iroh

        ep = await iroh.Endpoint.bind(iroh.EndpointOptions(preset=iroh.preset_minimal(), alpns=[ALPN],
                                                           bind_addr=f"0.0.0.0:{port}"))
        print(str(ep.id()), flush=True)
        while True:
            inc = await ep.accept_next()
            if inc is None:
                return
            conn = await (await inc.accept()).connect()
            bi = await conn.accept_bi()
            await bi.recv().read_exact(1)
            send = bi.send()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    await send.write_all(chunk)
            await send.finish()
            await conn.closed()

    asyncio.run(main())


def iroh_get(node_id: str, addr: str, size: int) -> None:
    async def main():
        import iroh

        ep = await iroh.Endpoint.bind(iroh.EndpointOptions(preset=iroh.preset_minimal(), alpns=[ALPN]))
        t0 = time.monotonic()
        conn = await ep.connect(iroh.EndpointAddr(iroh.EndpointId.from_string(node_id), None, [addr]), ALPN)
        bi = await conn.open_bi()
        await bi.send().write_all(b"g")
        recv, got, reads = bi.recv(), 0, 0
        while got < size:
            got += len(await recv.read(1 << 20))
            reads += 1
        print("reads", reads, file=sys.stderr)
        dt = time.monotonic() - t0
        conn.close(0, b"done")
        print(json.dumps({"s": dt}), flush=True)

    asyncio.run(main())


def idle(engine: str, seconds: float) -> None:
    """CPU seconds one engine instance burns in `seconds` of doing nothing."""
    import resource

    if engine == "libtorrent":
        import libtorrent as lt

        ses = lt.session({"listen_interfaces": "0.0.0.0:0", "enable_dht": True, "enable_lsd": True,
                          "enable_upnp": True, "enable_natpmp": True})
        time.sleep(1)
        t = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(seconds)
        del ses
    else:
        async def main():
            import iroh

            ep = await iroh.Endpoint.bind(iroh.EndpointOptions(preset=iroh.preset_minimal(), alpns=[ALPN]))
            await asyncio.sleep(1)
            t = resource.getrusage(resource.RUSAGE_SELF)
            await asyncio.sleep(seconds)
            await ep.close()
            return t
        t = asyncio.run(main())
    u = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu_s": (u.ru_utime - t.ru_utime) + (u.ru_stime - t.ru_stime)}), flush=True)


# ---- driver ----------------------------------------------------------------------------------
def _rss_mb(pid: int) -> float:
    import psutil

    p = psutil.Process(pid)
    return sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20


def run(mb: int, idle_s: float) -> dict:
    from tests.netlab import pair, why_no_netlab

    reason = why_no_netlab()
    if reason:
        raise SystemExit(f"bench_transport_engines: {reason}")
    lab, a_ip, _ = pair()
    me = str(Path(__file__).resolve())
    out: dict = {"mb": mb}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp, "a", "data.bin")
            src.parent.mkdir()
            with open(src, "wb") as f:
                for _ in range(mb):
                    f.write(os.urandom(1 << 20))
            size = src.stat().st_size
            # libtorrent
            seed = lab.popen("a", [PY, me, "--role", "lt-seed", str(src), "6881"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
            magnet = seed.stdout.readline().strip()
            get = subprocess.run(lab.cmd("b", PY, me, "--role", "lt-get", magnet, f"{a_ip}:6881",
                                         str(Path(tmp, "b"))), capture_output=True, text=True, timeout=600)
            out["libtorrent_mb_s"] = mb / json.loads(get.stdout.splitlines()[-1])["s"]
            out["libtorrent_serving_rss_mb"] = _rss_mb(seed.pid)
            seed.stdin.close()
            seed.wait(10)
            # iroh
            srv = lab.popen("a", [PY, me, "--role", "iroh-serve", str(src), "7000"], stdout=subprocess.PIPE, text=True)
            node = srv.stdout.readline().strip()
            get = subprocess.run(lab.cmd("b", PY, me, "--role", "iroh-get", node, f"{a_ip}:7000", str(size)),
                                 capture_output=True, text=True, timeout=600)
            if get.returncode != 0:
                out["iroh_error"] = get.stderr.strip().splitlines()[-1:]
            else:
                out["iroh_mb_s"] = mb / json.loads(get.stdout.splitlines()[-1])["s"]
            out["iroh_serving_rss_mb"] = _rss_mb(srv.pid)
            srv.kill()
            srv.wait(10)
            for eng in ("libtorrent", "iroh"):
                r = subprocess.run(lab.cmd("a", PY, me, "--role", "idle", eng, str(idle_s)),
                                   capture_output=True, text=True, timeout=idle_s + 60)
                out[f"{eng}_idle_cpu_pct"] = 100 * json.loads(r.stdout.splitlines()[-1])["cpu_s"] / idle_s
    finally:
        lab.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", nargs="+")
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--idle-s", type=float, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.role:
        r, *args = a.role
        {"lt-seed": lambda: lt_seed(args[0], int(args[1])), "lt-get": lambda: lt_get(*args),
         "iroh-serve": lambda: iroh_serve(args[0], int(args[1])),
         "iroh-get": lambda: iroh_get(args[0], args[1], int(args[2])),
         "idle": lambda: idle(args[0], float(args[1]))}[r]()
        return
    res = run(a.mb, a.idle_s)
    print(json.dumps(res, indent=2) if a.json else "\n".join(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}"
                                                            for k, v in res.items()))


if __name__ == "__main__":
    main()
